"""The registry entry describing one activation function."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from torch import nn

__all__ = ["ActivationSpec"]


@dataclass(frozen=True)
class ActivationSpec:
    """Everything the registry, the CLI, the tests and the README know about one activation.

    Attributes:
        name: canonical snake_case name, e.g. ``"dual_line"``.
        cls: the module class that implements it.
        formula: a short plain-text formula with the default constants.
        citation: where the function comes from.
        learnable: whether a default instance has learnable parameters.
        family: ``"torch"`` (``torch.nn``), ``"community"`` or ``"paper"``.
        aliases: other names that resolve to this entry.
        defaults: keyword arguments always passed to ``cls`` (user kwargs win).
        shape_changing: the output has a different channel count from the
            input (CReLU, Maxout): it cannot replace an activation in place, so
            ``swap_activations`` and the study refuse it and
            ``list_activations`` leaves it out unless asked.
        defaults_source: where the default constants come from, where
            libraries disagree (the citation's paper or code, or learnact's
            own choice and why).
    """

    name: str
    cls: type[nn.Module]
    formula: str
    citation: str
    learnable: bool
    family: str
    aliases: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    shape_changing: bool = False
    defaults_source: str = ""

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"activation names are snake_case identifiers, got {self.name!r}")
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))

    @property
    def accepted_kwargs(self) -> tuple[str, ...]:
        """The keyword arguments ``cls`` accepts, in signature order."""
        params = inspect.signature(self.cls).parameters.values()
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return tuple(p.name for p in params if p.kind in kinds)

    def build(self, **kwargs: Any) -> nn.Module:
        """Instantiate the activation; unknown keywords raise ``TypeError``.

        ``inplace`` is accepted for every entry, so ``spec.build`` works as
        timm's ``act_layer(inplace=True)``: it is passed on to a class that
        takes it (``nn.ReLU`` then works in place; learnact's classes ignore
        it) and dropped for one that does not (``nn.GELU``).
        """
        accepted = self.accepted_kwargs
        if "inplace" in kwargs and "inplace" not in accepted:
            kwargs = {k: v for k, v in kwargs.items() if k != "inplace"}
        unknown = sorted(set(kwargs) - set(accepted))
        if unknown:
            # inplace (timm's convention, taken by every entry) would only pad the list
            listing = ", ".join(a for a in accepted if a != "inplace") or "none"
            raise TypeError(
                f"activation {self.name!r} got unexpected keyword argument(s) "
                f"{', '.join(unknown)}; it accepts: {listing}"
            )
        return self.cls(**{**self.defaults, **kwargs})
