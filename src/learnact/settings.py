"""Typed settings: how a configuration field declares its key, check, help and identity.

Every section of a study's configuration (:class:`learnact.train.TrainSettings`
and the sections in :mod:`learnact.study.config`) is a frozen dataclass whose
fields are declared with :func:`setting`. The metadata a field carries is all
that the rest of the project needs to know about it:

* ``key``: its name in config files, ``--set``, ``--print-config``, the stored
  study and a run's identity (the field's own name unless given);
* ``check``: a function of the value that returns an error, or ``None``;
  :func:`check_fields` runs it when a section is created, so no invalid section
  exists;
* ``identity``: ``"always"`` (part of every run's id), ``"changed"`` (part of the
  id only when it differs from the study's default, for a setting added after
  runs were recorded: their ids stay the same) or ``None`` (does not change
  results, e.g. the device);
* ``help``: one line for documentation.

Adding a knob is one field with this metadata; the config files, ``--set``,
``--print-config``, validation and run ids follow from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import MISSING, Field, field, fields
from typing import Any

from .errors import ConfigError

__all__ = ["IDENTITY_KINDS", "Check", "at_least", "boolean", "check_fields", "choice", "key_of",
           "nonnegative", "optional", "positive_int", "positive_number", "setting", "unit_interval"]

Check = Callable[[Any], "str | None"]
IDENTITY_KINDS = ("always", "changed", None)


def setting(default: Any = MISSING, *, help: str, check: Check | None = None,
            identity: str | None = "always", key: str | None = None,
            in_config: bool = True,
            default_factory: Callable[[], Any] | Any = MISSING) -> Any:
    """A dataclass field with the settings metadata described in the module docstring.

    ``in_config=False`` marks a field of a section that a study sets itself (the
    learning rate of :class:`~learnact.train.TrainSettings` comes from the study's
    LR choice): it has no key in config files.
    """
    if identity not in IDENTITY_KINDS:
        raise ValueError(f"identity must be one of {IDENTITY_KINDS}, got {identity!r}")
    meta = {"help": help, "check": check, "identity": identity, "key": key,
            "in_config": in_config}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    return field(default=default, metadata=meta)


def key_of(f: Field) -> str:
    """A field's key: its name in files, flags and run identities."""
    return f.metadata.get("key") or f.name


def check_fields(obj: Any) -> None:
    """Run every field's check on ``obj`` (a frozen dataclass, from its
    ``__post_init__``); the first failure is a :class:`ConfigError` that names the
    key (as a flag: ``batch-size``) and the value.

    An integer given to a ``float`` field becomes a float first, so ``0`` and
    ``0.0`` are one setting (and one run id) however they were written.
    """
    for f in fields(obj):
        value = getattr(obj, f.name)
        if (isinstance(value, int) and not isinstance(value, bool)
                and "float" in str(f.type)):
            value = float(value)
            object.__setattr__(obj, f.name, value)
        check = f.metadata.get("check")
        if check is None:
            continue
        problem = check(value)
        if problem:
            raise ConfigError(f"{key_of(f).replace('_', '-')} {problem}, got {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def positive_int(value: Any) -> str | None:
    """Check: an integer >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return "must be a positive integer"
    return None


def positive_number(value: Any) -> str | None:
    """Check: a finite number > 0."""
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        return "must be a positive finite number"
    return None


def at_least(low: float, *, integer: bool = False) -> Check:
    """Check: a finite number (an integer if ``integer``) >= ``low``."""
    def check(value: Any) -> str | None:
        kind = isinstance(value, int) if integer else _is_number(value)
        if isinstance(value, bool) or not kind or not math.isfinite(value) or value < low:
            return f"must be {'an integer' if integer else 'a number'} >= {low:g}"
        return None
    return check


def nonnegative(value: Any) -> str | None:
    """Check: a finite number >= 0."""
    return at_least(0.0)(value)


def unit_interval(*, closed_low: bool, closed_high: bool) -> Check:
    """Check: a number in the interval between 0 and 1 with the given closed ends."""
    low, high = "[" if closed_low else "(", "]" if closed_high else ")"

    def check(value: Any) -> str | None:
        ok = _is_number(value) and math.isfinite(value) and (
            (0 <= value if closed_low else 0 < value)
            and (value <= 1 if closed_high else value < 1))
        return None if ok else f"must be in {low}0, 1{high}"
    return check


def choice(*options: Any) -> Check:
    """Check: one of ``options``; the error lists them."""
    def check(value: Any) -> str | None:
        if not isinstance(value, bool) and value in options:
            return None
        return f"must be one of {', '.join(str(o) for o in options)}"
    return check


def boolean(value: Any) -> str | None:
    """Check: ``True`` or ``False``."""
    return None if isinstance(value, bool) else "must be true or false"


def optional(check: Check) -> Check:
    """Check: ``None``, or a value that passes ``check``."""
    def wrapped(value: Any) -> str | None:
        if value is None:
            return None
        problem = check(value)
        return f"{problem} (or none)" if problem else None
    return wrapped
