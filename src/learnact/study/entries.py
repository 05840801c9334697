"""Study entries with arguments: ``gelu``, ``prelu(init=0.1)``, ``learnable(gelu)``.

The grammar of one entry of ``--activations`` (or a config's ``activations``)::

    entry     := NAME | NAME "(" kwargs ")" | "learnable(" NAME ["," kwargs] ")"
               | "per_channel(" entry ")"
    kwargs    := key "=" value ("," key "=" value)*
    value     := true | false | none | an int | a float | a word | 'quoted' | "quoted"

``learnable(G, ...)`` is the paper's general recipe (§4) over zoo entry ``G``:
a learnable positive slope and, unless ``mean_shift=false``, a learnable mean
shift; its other keywords go to the recipe (``pos_slope_init``,
``mean_shift_init``) or to ``G``. Every entry has one canonical label (lower-case
booleans, keywords sorted, ``", "`` between arguments), used as the run's
activation in the database, ``learnact results`` and the report, so each
spelling of one entry gives one run id; a plain name's label is its registry
name, as in every release.

``per_channel(E)`` is entry ``E`` with one parameter set per channel of each
site (``num_parameters = C``, the channel count of the site's input, found by
a forward pass of the model: :func:`learnact.models.sites.per_channel_sites`);
``E`` must have learnable parameters that take ``num_parameters``.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..activations.factory import create_activation
from ..activations.registry import get_spec, list_activations, refuse_shape_changing
from ..errors import ConfigError
from ..model_tools import activation_values

__all__ = ["Entry", "parse_entry", "split_entries"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Entry:
    """One study entry: a zoo name, whether the recipe wraps it, and keyword arguments."""

    name: str
    learnable: bool = False
    kwargs: tuple[tuple[str, Any], ...] = ()
    per_channel: bool = False

    @property
    def label(self) -> str:
        """The canonical spelling (the run's ``activation`` in the database)."""
        args = ", ".join(f"{k}={_show(v)}" for k, v in self.kwargs)
        if self.learnable:
            inner = f"learnable({self.name}{', ' + args if args else ''})"
        else:
            inner = f"{self.name}({args})" if args else self.name
        return f"per_channel({inner})" if self.per_channel else inner

    def build(self, num_parameters: int | None = None) -> nn.Module:
        """A new module for one site; ``num_parameters`` values per parameter if given."""
        kwargs = dict(self.kwargs)
        if num_parameters is not None:
            kwargs["num_parameters"] = num_parameters
        return create_activation(self.name, learnable=self.learnable, **kwargs)

    def build_model(self, model: str, *, data_sample: torch.Tensor, **kwargs: Any) -> nn.Module:
        """``model`` (a name or ``package.module:factory``) with this entry at every site:
        :func:`learnact.models.build_model`, then per-channel parameters when the
        entry asks for them (found with a forward pass of ``data_sample``)."""
        from ..models import build_model
        from ..models.sites import per_channel_sites

        net = build_model(model, self.build, **kwargs)
        if self.per_channel:
            per_channel_sites(net, self.build, data_sample)
        return net


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, str):
        return value if _NAME.fullmatch(value) and value.lower() not in (
            "true", "false", "none") else repr(value)
    return repr(value)


def split_entries(text: str) -> list[str]:
    """Split a comma-separated list at the commas outside parentheses.

    Raises:
        ConfigError: unbalanced parentheses.
    """
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ConfigError(f"activation list {text!r}: a ')' without its '('")
        elif ch == "," and depth == 0:
            out.append(text[start:i].strip())
            start = i + 1
    if depth:
        raise ConfigError(f"activation list {text!r}: a '(' is never closed")
    out.append(text[start:].strip())
    return [item for item in out if item]


def _value(raw: str, entry: str) -> Any:
    raw = raw.strip()
    if not raw:
        raise ConfigError(f"activation entry {entry!r}: a keyword has no value")
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    if _NAME.fullmatch(raw):
        return raw
    raise ConfigError(f"activation entry {entry!r}: cannot read the value {raw!r} (use true, "
                      "false, none, a number or a quoted string)")


def _known(name: str, entry: str) -> str:
    try:
        return get_spec(name).name
    except ValueError:
        close = difflib.get_close_matches(name, list_activations(), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"activation entry {entry!r}: unknown activation {name!r}{hint}"
                          ) from None


def parse_entry(text: str) -> Entry:
    """Read one entry and check it builds (bad keywords are errors here, not mid-study).

    Raises:
        ConfigError: a malformed entry, an unknown name (with the closest ones), a
            shape-changing activation, or keywords the module does not take; the
            message names the entry.
    """
    entry = text.strip()
    inner_entry = re.fullmatch(r"\s*per_channel\s*\((.*)\)\s*", entry, re.S)
    if inner_entry is not None:
        inner = parse_entry(inner_entry.group(1))
        if inner.per_channel:
            raise ConfigError(f"activation entry {entry!r}: per_channel(...) is given twice")
        result = Entry(inner.name, inner.learnable, inner.kwargs, per_channel=True)
        try:
            with torch.random.fork_rng(devices=[]):
                module = result.build(num_parameters=3)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"activation entry {entry!r}: {inner.label} cannot have one "
                              f"parameter set per channel ({exc})") from None
        if not any(v.numel() == 3 for _, _, v in activation_values(module)):
            raise ConfigError(f"activation entry {entry!r}: {inner.label} has no learnable "
                              "parameters to give each channel")
        return result
    m = re.fullmatch(r"\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*(?:\((.*)\))?\s*", entry, re.S)
    if m is None:
        raise ConfigError(f"activation entry {entry!r} is not NAME, NAME(key=value, ...), "
                          "learnable(NAME, ...) or per_channel(ENTRY)")
    head, inner = m.group(1), m.group(2)
    parts = split_entries(inner) if inner is not None and inner.strip() else []
    learnable = head.lower() == "learnable"
    if learnable:
        if not parts or "=" in parts[0]:
            raise ConfigError(f"activation entry {entry!r}: learnable(...) needs a zoo name "
                              "first, e.g. learnable(gelu) or learnable(mish, "
                              "mean_shift=false)")
        base, parts = parts[0], parts[1:]
        if "(" in base:
            raise ConfigError(f"activation entry {entry!r}: give the base's keywords to "
                              "learnable itself, e.g. learnable(prelu, init=0.1)")
    else:
        base = head
    name = _known(base, entry)
    kwargs = {}
    for part in parts:
        key, eq, raw = part.partition("=")
        key = key.strip()
        if not eq or not _NAME.fullmatch(key):
            raise ConfigError(f"activation entry {entry!r}: {part!r} is not key=value")
        if key in kwargs:
            raise ConfigError(f"activation entry {entry!r}: {key} is given twice")
        kwargs[key] = _value(raw, entry)
    refuse_shape_changing(name, "the study")
    result = Entry(name, learnable, tuple(sorted(kwargs.items())))
    try:
        with torch.random.fork_rng(devices=[]):  # a check: no draw may move the caller's stream
            result.build()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"activation entry {entry!r}: {exc}") from None
    return result
