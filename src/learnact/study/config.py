"""Study configuration: one dataclass, preset files for defaults, flags on top.

A preset is a JSON file in ``learnact/study/presets`` with ``name``,
``description`` and ``settings``; unknown keys are errors. The resolved
configuration is stored with every run in the results database.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from ..data.loader import AUGMENTS, DATASETS, is_dataset_name
from ..errors import ConfigError
from ..models import MODELS, load_factory, swap_class
from ..registry import list_activations
from ..train.lr_find import SUGGESTIONS

__all__ = ["StudyConfig", "config_toml", "list_presets", "load_config", "load_preset",
           "parse_setting", "resolve_activations"]


@dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a study. Every field can be set by a preset or a flag."""

    name: str = "custom"                 # preset name, stored with each run
    description: str = ""
    dataset: str = "fashion-mnist"       # a name in DATASETS, a .npz path or an image folder
    model: str = "lenet5"                # a name in MODELS, or package.module:factory
    swap: str = "ReLU"                   # package.module:factory models: the module class
                                         # replaced by the activation when act is unused
    activations: tuple[str, ...] = ("relu",)  # names, patterns or ("all",)
    seeds: int = 1                       # runs per activation: seeds 0..seeds-1
    epochs: int = 1
    lr: float | str = "find"             # a rate, "find" (checked LR finder; tuned when its
                                         # curve is useless) or "tune" (always tune)
    lr_method: str = "edge"              # LR-finder rule: edge, minimum3, valley, steep, minimum
    batch_size: int = 128
    weight_decay: float = 0.01           # decoupled; activation parameters get none
    div_factor: float = 25.0             # one-cycle start lr = lr / div_factor
    final_div: float = 1e5               # one-cycle final lr = lr / final_div
    pct_start: float = 0.25              # warm-up share of the one-cycle schedule
    mixup_alpha: float = 0.0             # 0 disables mixup
    augment: str = "none"                # none, flip_crop or rrc_flip (random-resized crop + flip)
    label_smoothing: float = 0.0         # cross-entropy label smoothing, in [0, 1)
    image_size: int | None = None        # image folders only: training/eval size (default 128)
    precision: str = "auto"              # auto (fp16 on CUDA, fp32 on CPU), fp32, bf16, fp16
    channels_last: bool = False
    train_limit: int | None = None       # use only the first N training images
    snapshot_every_epoch: bool | None = None  # activation parameters after each epoch too;
                                         # None: when cheap (<= 4,096 values a snapshot)
    keep_models: bool = False            # keep final weights in DB.models/ (not in a run's id)
    activation_stats: bool = True        # per-site output statistics each epoch (not in the id)
    device: str = "auto"                 # auto, cpu or cuda (not part of a run's identity)
    tags: tuple[str, ...] = field(default=())

    def validate(self) -> StudyConfig:
        """Return self if every field is valid, else raise ``ValueError``."""
        for name in ("seeds", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name.replace('_', '-')} must be a positive integer, "
                                 f"got {value!r}")
        if self.train_limit is not None and (not isinstance(self.train_limit, int)
                                             or self.train_limit < 1):
            raise ConfigError(f"train-limit must be a positive integer, got {self.train_limit!r}")
        if ":" in self.model:
            load_factory(self.model)  # ConfigError naming what cannot be imported
            swap_class(self.swap)
        elif self.model not in MODELS:
            raise ConfigError(f"unknown model {self.model!r}; choose one of "
                              f"{', '.join(MODELS)}, or package.module:factory")
        if not is_dataset_name(self.dataset):
            raise ConfigError(f"unknown dataset {self.dataset!r}; choose one of "
                             f"{', '.join(DATASETS)}, a path to a .npz file or an image "
                             "folder (with train/ and val/)")
        if self.image_size is not None and (isinstance(self.image_size, bool)
                                            or not isinstance(self.image_size, int)
                                            or self.image_size < 8):
            raise ConfigError(f"image-size must be an integer >= 8, got {self.image_size!r}")
        if not (isinstance(self.label_smoothing, (int, float))
                and 0 <= self.label_smoothing < 1):
            raise ConfigError(f"label-smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if isinstance(self.lr, str):
            if self.lr not in ("find", "tune"):
                raise ConfigError(f"lr must be a positive number, 'find' or 'tune', "
                                  f"got {self.lr!r}")
        elif not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"lr must be a positive finite number, 'find' or 'tune', "
                              f"got {self.lr!r}")
        if self.lr_method not in SUGGESTIONS:
            raise ConfigError(f"unknown lr-method {self.lr_method!r}; choose one of "
                             f"{', '.join(SUGGESTIONS)}")
        if self.augment not in AUGMENTS:
            raise ConfigError(f"augment must be one of {', '.join(AUGMENTS)}, "
                              f"got {self.augment!r}")
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ConfigError(f"precision must be auto, fp32, bf16 or fp16, got {self.precision!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"device must be auto, cpu or cuda, got {self.device!r}")
        for name in ("weight_decay", "mixup_alpha"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0")
        if not 0 < self.pct_start < 1:
            raise ConfigError(f"pct_start must be in (0, 1), got {self.pct_start}")
        resolve_activations(self.activations)
        return self

    def with_overrides(self, **overrides: Any) -> StudyConfig:
        """A copy with the non-``None`` overrides applied (flags over preset)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-ready data."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def resolve_activations(items: tuple[str, ...] | list[str]) -> list[str]:
    """Expand names, aliases, fnmatch patterns, ``all`` and entries with arguments
    (``prelu(init=0.1)``, ``learnable(gelu)``; see :mod:`learnact.study.entries`) to
    canonical labels, in order.

    ``all`` and patterns cover the activations that keep the channel count; a
    shape-changing one (CReLU, Maxout) named explicitly is a ``ConfigError``.
    """
    from ..registry import get_spec, refuse_shape_changing
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
        raise ConfigError("no activations given")
    return out


def _presets_dir():
    return resources.files("learnact.study") / "presets"


def list_presets() -> dict[str, str]:
    """Preset name -> description."""
    out = {}
    for entry in sorted(_presets_dir().iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".json"):
            data = json.loads(entry.read_text())
            out[data["name"]] = data.get("description", "")
    return out


def _from_data(data: dict[str, Any], where: str, default_name: str) -> StudyConfig:
    """A config from a preset's layout (``name``, ``description``, ``settings``) or from
    the fields at the top level; unknown keys are errors naming them."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a table of settings")
    top = {k: v for k, v in data.items() if k != "settings"}
    settings = dict(data.get("settings", {}))
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: 'settings' must be a table")
    name = top.pop("name", default_name)
    description = top.pop("description", "")
    both = sorted(set(top) & set(settings))
    if both:
        raise ConfigError(f"{where}: {', '.join(both)} given twice (top level and settings)")
    settings.update(top)
    for key in ("activations", "tags"):
        if isinstance(settings.get(key), list):
            settings[key] = tuple(settings[key])
    known = {f.name for f in fields(StudyConfig)} - {"name", "description"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"{where} has unknown setting(s) {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(known))}")
    try:
        cfg = StudyConfig(name=str(name), description=str(description), **settings)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return cfg.validate()


def load_config(path: str | Path) -> StudyConfig:
    """A :class:`StudyConfig` from a ``.toml`` or ``.json`` file, in the presets' layout
    (``name``, ``description`` and a ``settings`` table) or with the settings at the
    top level. TOML is read with the standard library's ``tomllib``.

    Raises:
        ConfigError: a missing or unreadable file, unknown keys or bad values.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError and JSONDecodeError are ValueErrors
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'JSON'} "
                          f"({exc})") from None
    return _from_data(data, str(path), path.stem)


def load_preset(name: str) -> StudyConfig:
    """The :class:`StudyConfig` of preset ``name``, or of a config file when ``name`` is a
    path ending in ``.toml`` or ``.json`` (:func:`load_config`).

    Raises:
        ValueError: unknown preset (the message lists them) or a preset with
            unknown keys.
    """
    if name.lower().endswith((".toml", ".json")):
        return load_config(name)
    presets = list_presets()
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(presets)}, or "
                          "give a .toml or .json config file")
    data = json.loads((_presets_dir() / f"{name}.json").read_text())
    return _from_data({**data, "name": name}, f"preset {name!r}", name)


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
    the same configuration (settings at their ``None`` default are left out)."""
    lines = [f"name = {_toml_value(cfg.name)}", f"description = {_toml_value(cfg.description)}",
             "", "[settings]"]
    for f in fields(cfg):
        if f.name in ("name", "description"):
            continue
        value = getattr(cfg, f.name)
        if value is not None:
            lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def parse_setting(key: str, raw: str) -> Any:
    """The value of ``--set key=raw`` for field ``key``: booleans, ``none``, numbers and
    words as written; a comma-separated list for ``activations`` and ``tags``."""
    from .entries import split_entries

    known = {f.name for f in fields(StudyConfig)}
    if key not in known:
        import difflib

        close = difflib.get_close_matches(key, sorted(known), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"--set: unknown setting {key!r}{hint}")
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
