"""The activation registry: the name -> spec table, and looking up and listing it.

A leaf module, as timm's ``create_act``: it imports no activation. The explicit
catalog (:mod:`learnact.activations.catalog`) registers the built-ins into it
at import, :func:`register_activation` lets users add their own entries, and
:func:`learnact.create_activation` (in :mod:`learnact.activations.factory`,
beside the recipe it can apply) builds modules from it. Duplicate names or
aliases are errors.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Iterator

from torch import nn

from ..errors import ConfigError
from .spec import ActivationSpec

__all__ = [
    "ActivationSpec",
    "get_spec",
    "is_activation",
    "list_activations",
    "refuse_shape_changing",
    "register_activation",
    "register_module_class",
    "shape_changing_classes",
]


class _Registry:
    """Name -> spec table with alias resolution and duplicate checks."""

    def __init__(self) -> None:
        self._specs: dict[str, ActivationSpec] = {}
        self._lookup: dict[str, str] = {}
        self.classes: tuple[type[nn.Module], ...] = ()

    def add(self, spec: ActivationSpec) -> None:
        for key in (spec.name, *spec.aliases):
            if key in self._lookup:
                raise ValueError(
                    f"activation name {key!r} is already registered "
                    f"(by {self._lookup[key]!r})"
                )
        self._specs[spec.name] = spec
        for key in (spec.name, *spec.aliases):
            self._lookup[key] = spec.name
        if spec.cls not in self.classes:
            self.classes = (*self.classes, spec.cls)

    def get(self, name: str) -> ActivationSpec:
        if not isinstance(name, str):
            raise TypeError(f"activation name must be a str, got {type(name).__name__}")
        key = name.strip().lower().replace("-", "_")
        if key in self._lookup:
            return self._specs[self._lookup[key]]
        close = difflib.get_close_matches(key, list(self._lookup), n=5, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise ConfigError(
            f"unknown activation {name!r}{hint}. "
            "See learnact.list_activations() or `learnact list`."
        )

    def __iter__(self) -> Iterator[ActivationSpec]:
        return iter(self._specs.values())


_REGISTRY = _Registry()


def register_module_class(cls: type[nn.Module]) -> None:
    """Count instances of ``cls`` as activations in :func:`is_activation` (the recipe's class)."""
    if cls not in _REGISTRY.classes:
        _REGISTRY.classes = (*_REGISTRY.classes, cls)


def register_activation(spec: ActivationSpec) -> ActivationSpec:
    """Add ``spec`` to the registry; a name or alias already taken raises ``ValueError``."""
    if not isinstance(spec, ActivationSpec):
        raise TypeError(f"expected an ActivationSpec, got {type(spec).__name__}")
    _REGISTRY.add(spec)
    return spec


def get_spec(name: str) -> ActivationSpec:
    """Return the registry entry for ``name`` (canonical name or alias).

    Names are case-insensitive and ``-`` counts as ``_``.

    Raises:
        ValueError: unknown name; the message lists the closest names.
    """
    return _REGISTRY.get(name)


def list_activations(
    pattern: str | Iterable[str] | None = None, *, learnable: bool | None = None,
    shape_changing: bool | None = False,
) -> list[str]:
    """Sorted canonical names of registered activations.

    Args:
        pattern: an fnmatch pattern (``"*relu*"``) or several; a name is kept if
            it or one of its aliases matches any of them. ``None`` keeps all.
        learnable: ``True`` for only those with learnable parameters,
            ``False`` for only fixed ones, ``None`` for both.
        shape_changing: ``False`` (the default) leaves out the activations
            that change the channel count (CReLU, Maxout), which cannot replace
            an activation in place; ``True`` lists only those, ``None`` all.

    Example::

        >>> learnact.list_activations("*line")
        ['dual_line']
    """
    if isinstance(pattern, str):
        patterns: list[str] | None = [pattern]
    elif pattern is None:
        patterns = None
    else:
        patterns = list(pattern)
        if not all(isinstance(p, str) for p in patterns):
            raise TypeError("pattern must be a str or an iterable of str")
    for flag, value in (("learnable", learnable), ("shape_changing", shape_changing)):
        if value not in (None, True, False):
            raise TypeError(f"{flag} must be None, True or False, got {value!r}")
    names = []
    for spec in _REGISTRY:
        if learnable is not None and spec.learnable != learnable:
            continue
        if shape_changing is not None and spec.shape_changing != shape_changing:
            continue
        if patterns is not None and not any(
            fnmatch.fnmatchcase(key, p.lower()) for key in (spec.name, *spec.aliases)
            for p in patterns
        ):
            continue
        names.append(spec.name)
    return sorted(names)


def is_activation(module: nn.Module) -> bool:
    """Whether ``module`` is an instance of a registered activation class or of the recipe."""
    return isinstance(module, _REGISTRY.classes)


def shape_changing_classes() -> tuple[type[nn.Module], ...]:
    """The module classes of registered activations that change the channel count."""
    return tuple(spec.cls for spec in _REGISTRY if spec.shape_changing)


def refuse_shape_changing(name: str, where: str) -> None:
    """``ConfigError`` when activation ``name`` changes the channel count (it cannot swap in)."""
    spec = get_spec(name)
    if spec.shape_changing:
        raise ConfigError(
            f"{spec.name} changes the channel count ({spec.formula}), so {where} cannot put "
            "it in place of another activation; build it into a model "
            "whose next layer expects that many channels")
