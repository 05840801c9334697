"""A study's configuration: one typed, frozen :class:`StudyConfig`.

It is composed of sections, each a frozen dataclass whose fields carry their
own key, check, help and part in a run's identity (:mod:`learnact.settings`):

* :class:`DataConfig` (``data``): the dataset, its image size and size limit;
* :class:`ModelConfig` (``model``): the network and the module class it swaps;
* :class:`~learnact.train.TrainSettings` (``training``): what the training loop
  does, from epochs to precision;
* :class:`LRConfig` (``lr_choice``): how each run's learning rate is chosen;

plus the study's own fields (name, activations, seeds, what to record, device).

Config files, presets, ``--set`` and ``--print-config`` use flat keys, one per
field (``epochs``, ``lr_method``, ``model``); every key is unique across the
sections. A preset is a file in ``learnact/study/presets`` with ``name``,
``description`` and a ``settings`` table; config files have the same layout,
in TOML or JSON. Every section checks its fields when it is made, so an
invalid configuration never exists; unknown keys are errors that name the
closest known ones. The configuration is stored with every run.
"""

from __future__ import annotations

import difflib
import functools
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

from ..activations.registry import list_activations
from ..data.loader import DATASETS, is_dataset_name
from ..errors import ConfigError
from ..models import MODELS, load_factory, swap_class
from ..settings import (
    at_least,
    boolean,
    check_fields,
    choice,
    key_of,
    optional,
    positive_int,
    positive_number,
    setting,
)
from ..train.loop import TrainSettings
from ..train.lr_find import SUGGESTIONS

__all__ = ["DataConfig", "LRConfig", "ModelConfig", "StudyConfig", "config_toml",
           "list_presets", "load_config", "load_preset", "parse_setting",
           "resolve_activations"]


def _dataset(value: Any) -> str | None:
    if isinstance(value, str) and is_dataset_name(value):
        return None
    return (f"must be one of {', '.join(DATASETS)}, a path to a .npz file or an image "
            "folder (with train/ and val/)")


def _model(value: Any) -> str | None:
    if isinstance(value, str) and (value in MODELS or ":" in value):
        return None
    return f"must be one of {', '.join(MODELS)}, or package.module:factory"


def _lr(value: Any) -> str | None:
    if value in ("find", "tune") or (not isinstance(value, (str, bool))
                                     and positive_number(value) is None):
        return None
    return "must be a positive finite number, 'find' or 'tune'"


def _words(value: Any) -> str | None:
    if isinstance(value, tuple) and all(isinstance(v, str) for v in value):
        return None
    return "must be a list of strings"


def _tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@dataclass(frozen=True)
class DataConfig:
    """What a study trains on."""

    dataset: str = setting("fashion-mnist", check=_dataset,
                           help="a name in DATASETS, a .npz path or an image folder")
    image_size: int | None = setting(None, check=optional(at_least(8, integer=True)),
                                     identity="changed",
                                     help="image folders only: the training and evaluation "
                                          "size (default 128)")
    train_limit: int | None = setting(None, check=optional(positive_int),
                                      help="use only the first N training images")

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class ModelConfig:
    """The network a study trains, and where its activations go."""

    name: str = setting("lenet5", key="model", check=_model,
                        help="a name in MODELS, or package.module:factory (your own model)")
    swap: str = setting("ReLU", identity="changed",
                        check=lambda v: None if isinstance(v, str) else "must be a class name",
                        help="your own model: the module class the activation replaces when "
                             "the factory does not use act")

    def __post_init__(self) -> None:
        check_fields(self)
        if ":" in self.name:
            load_factory(self.name)  # ConfigError naming what cannot be imported
            swap_class(self.swap)


@dataclass(frozen=True)
class LRConfig:
    """How each run's learning rate is chosen (:func:`learnact.train.lr_choice.choose_lr`)."""

    lr: float | str = setting("find", check=_lr,
                              help="a rate, find (the checked LR finder; tuned when its "
                                   "curve is useless) or tune (always tune)")
    method: str = setting("edge", key="lr_method", check=choice(*SUGGESTIONS),
                          help="the LR finder's rule: " + ", ".join(SUGGESTIONS))
    tune_scope: str = setting(
        "run", identity="changed", check=choice("run", "study"),
        help="a tuned run's split and model: run (its own seed's) or study (seed 0's, "
             "tuned once per activation and shared by every seed)")

    def __post_init__(self) -> None:
        check_fields(self)


_SECTION = {"section": True}  # a StudyConfig field holding a section of its own keys


def _default_training() -> TrainSettings:
    return TrainSettings(precision="auto")


@dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a study: its own fields and four typed sections.

    Make one from flat keys with :meth:`from_settings`, a file with
    :func:`load_config` or a preset with :func:`load_preset`; read a key with
    :meth:`get`; change keys with :meth:`with_overrides`. Construction checks
    every field: a bad value is a one-line :class:`~learnact.errors.ConfigError`.
    """

    name: str = setting("custom", identity=None,
                        help="the study's name, in its header and stored with each run")
    description: str = setting("", identity=None, help="one line about the study")
    activations: tuple[str, ...] = setting(
        ("relu",), identity=None, check=_words,
        help="names, patterns, all, NAME(key=value) or learnable(G) entries")
    seeds: int = setting(1, identity=None, check=positive_int,
                         help="runs per activation: seeds 0..seeds-1")
    data: DataConfig = field(default_factory=DataConfig, metadata=_SECTION)
    model: ModelConfig = field(default_factory=ModelConfig, metadata=_SECTION)
    training: TrainSettings = field(default_factory=_default_training, metadata=_SECTION)
    lr_choice: LRConfig = field(default_factory=LRConfig, metadata=_SECTION)
    snapshot_every_epoch: bool | None = setting(
        None, identity=None, check=optional(boolean),
        help="activation parameters after each epoch too; none: when cheap (<= 4,096 values)")
    activation_stats: bool = setting(True, identity=None, check=boolean,
                                     help="per-site output statistics each epoch")
    keep_models: bool = setting(False, identity=None, check=boolean,
                                help="keep final weights in DB.models/")
    device: str = setting("auto", identity=None, check=choice("auto", "cpu", "cuda"),
                          help="auto, cpu or cuda")
    tags: tuple[str, ...] = setting((), identity=None, check=_words, help="free labels")

    def __post_init__(self) -> None:
        for name in ("activations", "tags"):
            object.__setattr__(self, name, _tuple(getattr(self, name)))
        check_fields(self)
        if self.training.precision == "fp16" and self.device == "cpu":
            raise ConfigError("precision fp16 needs CUDA (its gradient scaler is CUDA-only); "
                              "use bf16 or fp32 on the CPU")
        resolve_activations(self.activations)

    def with_learnable_variants(self) -> StudyConfig:
        """A copy that also studies the paper's recipe over every listed activation:
        ``learnable(NAME)`` right after each ``NAME`` that is not already learnable."""
        from .entries import Entry, parse_entry

        out: list[str] = []
        for label in resolve_activations(self.activations):
            out.append(label)
            e = parse_entry(label)
            if not e.learnable:
                out.append(parse_entry(Entry(e.name, True, e.kwargs, e.per_channel).label).label)
        return self.replace_settings({"activations": tuple(dict.fromkeys(out))})

    # -- flat keys ---------------------------------------------------------------

    @classmethod
    def fields_by_key(cls) -> dict[str, tuple[str | None, Field]]:
        """Every key -> (the section holding it, or ``None``; its field)."""
        return dict(_keys())

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], *, where: str = "settings"
                      ) -> StudyConfig:
        """A configuration from flat keys (a preset's ``settings`` plus ``name`` and
        ``description``); keys left out keep their defaults.

        Raises:
            ConfigError: an unknown key (naming the closest known ones) or a bad value.
        """
        return cls().replace_settings(settings, where=where)

    def get(self, key: str) -> Any:
        """The value of flat key ``key`` (``cfg.get("lr_method")``)."""
        section, f = _lookup(key)
        return getattr(getattr(self, section) if section else self, f.name)

    def replace_settings(self, settings: Mapping[str, Any], *, where: str = "settings"
                         ) -> StudyConfig:
        """A copy with flat keys set to the given values (``None`` included)."""
        import dataclasses

        top: dict[str, Any] = {}
        by_section: dict[str, dict[str, Any]] = {}
        for key, value in settings.items():
            section, f = _lookup(key, where)
            if section is None:
                top[f.name] = _tuple(value)
            else:
                by_section.setdefault(section, {})[f.name] = _tuple(value)
        for section, values in by_section.items():
            top[section] = dataclasses.replace(getattr(self, section), **values)
        return dataclasses.replace(self, **top)

    def with_overrides(self, **overrides: Any) -> StudyConfig:
        """A copy with the non-``None`` overrides applied (flags over a file)."""
        return self.replace_settings({k: v for k, v in overrides.items() if v is not None},
                                     where="overrides")

    def to_dict(self) -> dict[str, Any]:
        """Every key and its value, as JSON-ready data (lists for tuples)."""
        return {key: list(v) if isinstance(v, tuple) else v
                for key, v in ((key, self.get(key)) for key in _keys_only())}

    def identity(self) -> dict[str, Any]:
        """The settings that make a run's id: every ``always`` key, and each ``changed``
        key whose value differs from the default study's."""
        default = _default()
        out = {}
        for key, (_, f) in _keys():
            kind = f.metadata["identity"]
            value = self.get(key)
            if kind == "always" or (kind == "changed" and value != default.get(key)):
                out[key] = value
        return out

    def run_settings(self) -> dict[str, Any]:
        """Every key that can be part of a run's identity, with its value (stored with
        each run)."""
        return {key: self.get(key) for key, (_, f) in _keys() if f.metadata["identity"]}


@functools.lru_cache(maxsize=1)
def _key_table() -> dict[str, tuple[str | None, Field]]:
    hints = get_type_hints(StudyConfig)
    table: dict[str, tuple[str | None, Field]] = {}
    for f in fields(StudyConfig):
        pairs = ([(f.name, sf) for sf in fields(hints[f.name])
                  if sf.metadata.get("in_config", True)]
                 if f.metadata.get("section") else [(None, f)])
        for section, sf in pairs:
            if key_of(sf) in table:  # a programming error in a section's declaration
                raise AssertionError(f"StudyConfig key {key_of(sf)!r} declared twice")
            table[key_of(sf)] = (section, sf)
    return table


def _keys() -> Iterator[tuple[str, tuple[str | None, Field]]]:
    return iter(_key_table().items())


def _keys_only() -> list[str]:
    return list(_key_table())


_DEFAULT: list[StudyConfig] = []


def _default() -> StudyConfig:
    if not _DEFAULT:
        _DEFAULT.append(StudyConfig())
    return _DEFAULT[0]


def _lookup(key: str, where: str = "settings") -> tuple[str | None, Field]:
    table = _key_table()
    if key not in table:
        close = difflib.get_close_matches(key, sorted(table), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"{where}: unknown setting {key!r}{hint}")
    return table[key]


def resolve_activations(items: tuple[str, ...] | list[str]) -> list[str]:
    """Expand names, aliases, fnmatch patterns, ``all`` and entries with arguments
    (``prelu(init=0.1)``, ``learnable(gelu)``; see :mod:`learnact.study.entries`) to
    canonical labels, in order.

    ``all`` and patterns cover the activations that keep the channel count; a
    shape-changing one (CReLU, Maxout) named explicitly is a ``ConfigError``.
    """
    from ..activations.registry import get_spec, refuse_shape_changing
    from .entries import parse_entry

    out: list[str] = []
    for item in items:
        item = item.strip()
        if not item:
            continue
        if "(" in item or ")" in item:
            names = [parse_entry(item).label]
        elif item == "all":
            names = list_activations()
        elif any(c in item for c in "*?["):
            names = list_activations(item)
            if not names:
                raise ConfigError(f"no activation matches {item!r}")
        else:
            names = [get_spec(item).name]
            refuse_shape_changing(item, "the study")
        out += [n for n in names if n not in out]
    if not out:
        raise ConfigError("activations is empty; give names or patterns, e.g. "
                          "'relu,dual_line' or 'all'")
    return out


def _presets_dir():
    return resources.files("learnact.study") / "presets"


def list_presets() -> dict[str, str]:
    """Preset name -> description (the presets are config files in ``study/presets``)."""
    out = {}
    for entry in sorted(_presets_dir().iterdir(), key=lambda p: p.name):
        if entry.name.endswith((".toml", ".json")):
            data = _parse(entry.read_text(), entry.name, str(entry.name))
            out[data.get("name", entry.name.rsplit(".", 1)[0])] = data.get("description", "")
    return out


def _from_data(data: Any, where: str, default_name: str) -> StudyConfig:
    """A config from a preset's layout (``name``, ``description``, ``settings``) or from
    the keys at the top level; unknown keys are errors naming them."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table of settings")
    top = {k: v for k, v in data.items() if k != "settings"}
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: 'settings' must be a table")
    both = sorted(set(top) & set(settings))
    if both:
        raise ConfigError(f"{where}: {', '.join(both)} given twice (top level and settings)")
    merged = {"name": default_name, **settings, **top}
    for key in ("name", "description"):
        if key in merged:
            merged[key] = str(merged[key])
    return StudyConfig.from_settings(merged, where=where)


def _parse(text: str, suffix_of: str, where: str) -> Any:
    try:
        if suffix_of.lower().endswith(".toml"):
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10 only
                import tomli as tomllib
            return tomllib.loads(text)
        return json.loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError and JSONDecodeError are ValueErrors
        kind = "TOML" if suffix_of.lower().endswith(".toml") else "JSON"
        raise ConfigError(f"{where}: not valid {kind} ({exc})") from None


def load_config(path: str | Path) -> StudyConfig:
    """A :class:`StudyConfig` from a ``.toml`` or ``.json`` file, in the presets' layout
    (``name``, ``description`` and a ``settings`` table) or with the keys at the top
    level. TOML is read with the standard library's ``tomllib`` (``tomli`` on 3.10).

    Raises:
        ConfigError: a missing or unreadable file, unknown keys or bad values.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    return _from_data(_parse(text, path.name, str(path)), str(path), path.stem)


def load_preset(name: str) -> StudyConfig:
    """The :class:`StudyConfig` of preset ``name``, or of a config file when ``name`` is a
    path ending in ``.toml`` or ``.json`` (:func:`load_config`).

    Raises:
        ConfigError: unknown preset (the message lists them) or a bad file.
    """
    if name.lower().endswith((".toml", ".json")):
        return load_config(name)
    presets = list_presets()
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(presets)}, or "
                          "give a .toml or .json config file")
    for entry in _presets_dir().iterdir():
        if entry.name in (f"{name}.toml", f"{name}.json"):
            data = _parse(entry.read_text(), entry.name, f"preset {name!r}")
            return _from_data({**data, "name": name}, f"preset {name!r}", name)
    raise ConfigError(f"preset {name!r} has no file")  # pragma: no cover - listed above


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string


def config_toml(cfg: StudyConfig) -> str:
    """``cfg`` as TOML in the presets' layout, which :func:`load_config` reads back to
    the same configuration; each key is preceded by its help as a comment, and keys
    at ``None`` (TOML has no null) are left out, which reads back as their default."""
    data = cfg.to_dict()
    lines = [f"name = {_toml_value(data.pop('name'))}",
             f"description = {_toml_value(data.pop('description'))}", "", "[settings]"]
    table = StudyConfig.fields_by_key()
    for key, value in data.items():
        if value is not None:
            lines += [f"# {table[key][1].metadata['help']}", f"{key} = {_toml_value(value)}"]
    return "\n".join(lines) + "\n"


def parse_setting(key: str, raw: str) -> Any:
    """The value of ``--set key=raw``: booleans, ``none``, numbers and words as written;
    a comma-separated list for ``activations`` and ``tags``.

    Raises:
        ConfigError: an unknown key, naming the closest known ones.
    """
    from .entries import split_entries

    _lookup(key, "--set")
    if key in ("activations", "tags"):
        return tuple(split_entries(raw))
    text = raw.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
