"""The activation registry: look up, list and build activations by name.

The registry is filled once, at import, from the explicit catalog in
:mod:`learnact.activations.catalog`; :func:`register_activation` lets users add
their own entries. Duplicate names or aliases are errors.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable, Iterator
from typing import Any

from torch import nn

from .activations.catalog import BUILTIN_SPECS
from .activations.learnable import Learnable
from .activations.spec import ActivationSpec
from .errors import ConfigError

__all__ = [
    "ActivationSpec",
    "create_activation",
    "get_spec",
    "is_activation",
    "list_activations",
    "register_activation",
]

# Keywords that configure the recipe (learnable=True) rather than the base.
RECIPE_KWARGS = ("mean_shift", "pos_slope_init", "mean_shift_init")


class _Registry:
    """Name -> spec table with alias resolution and duplicate checks."""

    def __init__(self) -> None:
        self._specs: dict[str, ActivationSpec] = {}
        self._lookup: dict[str, str] = {}
        self.classes: tuple[type[nn.Module], ...] = (Learnable,)

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
for _spec in BUILTIN_SPECS:
    _REGISTRY.add(_spec)


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
    pattern: str | Iterable[str] | None = None, *, learnable: bool | None = None
) -> list[str]:
    """Sorted canonical names of registered activations.

    Args:
        pattern: an fnmatch pattern (``"*relu*"``) or several; a name is kept if
            it or one of its aliases matches any of them. ``None`` keeps all.
        learnable: ``True`` for only those with learnable parameters,
            ``False`` for only fixed ones, ``None`` for both.

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
    if learnable not in (None, True, False):
        raise TypeError(f"learnable must be None, True or False, got {learnable!r}")
    names = []
    for spec in _REGISTRY:
        if learnable is not None and spec.learnable != learnable:
            continue
        if patterns is not None and not any(
            fnmatch.fnmatchcase(key, p.lower()) for key in (spec.name, *spec.aliases)
            for p in patterns
        ):
            continue
        names.append(spec.name)
    return sorted(names)


def create_activation(name: str, *, learnable: bool = False, **kwargs: Any) -> nn.Module:
    """Build a new activation module by registry name.

    Every call returns a fresh instance with its own parameters.

    Args:
        name: canonical name or alias (see :func:`list_activations`).
        learnable: apply the paper's general recipe (:class:`learnact.Learnable`):
            a learnable positive slope and, unless ``mean_shift=False``, a
            learnable mean shift.
        **kwargs: the activation's own constructor arguments. With
            ``learnable=True`` these are also accepted: ``mean_shift``,
            ``pos_slope_init``, ``mean_shift_init`` (these go to the recipe,
            also for ``dp_relu``/``dual_line``, whose own inits then keep
            their defaults); ``num_parameters``,
            ``device`` and ``dtype`` go to the recipe and, where it takes
            them, to the base too.

    Raises:
        ValueError: unknown name (the message lists the closest names).
        TypeError: a keyword the activation does not take (the message lists
            the accepted ones).

    Example::

        >>> learnact.create_activation("gelu", learnable=True, mean_shift=False)
        Learnable(
          mean_shift=False, num_parameters=1, pos_slope_init=1.0
          (base): GELU(approximate='none')
        )
    """
    spec = get_spec(name)
    if not isinstance(learnable, bool):
        raise TypeError(f"learnable must be a bool, got {learnable!r}")
    if not learnable:
        misplaced = sorted((set(kwargs) & set(RECIPE_KWARGS)) - set(spec.accepted_kwargs))
        if misplaced:
            raise TypeError(
                f"{', '.join(misplaced)} only applies with learnable=True "
                f"(activation {spec.name!r} accepts: {', '.join(spec.accepted_kwargs) or 'none'})"
            )
        return spec.build(**kwargs)
    recipe = {k: kwargs.pop(k) for k in RECIPE_KWARGS if k in kwargs}
    accepted = spec.accepted_kwargs
    for shared in ("num_parameters", "device", "dtype"):
        if shared in kwargs:
            recipe[shared] = kwargs[shared] if shared in accepted else kwargs.pop(shared)
    return Learnable(spec.build(**kwargs), **recipe)


def is_activation(module: nn.Module) -> bool:
    """Whether ``module`` is an instance of a registered activation class or of the recipe."""
    return isinstance(module, _REGISTRY.classes)
