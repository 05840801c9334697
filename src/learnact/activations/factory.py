"""Building activations by name: :func:`create_activation`, with the paper's recipe on request.

It lives beside :class:`~learnact.activations.learnable.Learnable` (the recipe it
can apply) and reads the registry, which imports no activation, so the imports
run one way: registry <- learnable <- factory.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .learnable import Learnable
from .registry import get_spec

__all__ = ["RECIPE_KWARGS", "create_activation"]

# Keywords that configure the recipe (learnable=True) rather than the base.
RECIPE_KWARGS = ("mean_shift", "pos_slope_init", "mean_shift_init")


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
            them, to the base too. ``inplace`` (timm's convention) is
            accepted for every name: passed to a class that takes it, ignored
            otherwise and always ignored with ``learnable=True``.

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
    # the recipe reads the unmodified input after G, so G never runs in place
    kwargs.pop("inplace", None)
    recipe = {k: kwargs.pop(k) for k in RECIPE_KWARGS if k in kwargs}
    accepted = spec.accepted_kwargs
    for shared in ("num_parameters", "device", "dtype"):
        if shared in kwargs:
            recipe[shared] = kwargs[shared] if shared in accepted else kwargs.pop(shared)
    return Learnable(spec.build(**kwargs), **recipe)


