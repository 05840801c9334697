"""Shared plumbing for learnact's activation modules.

:class:`ParametricActivation` gives every learnable activation the
:class:`torch.nn.PReLU` contract: ``num_parameters`` (one value, or one per
channel on dim 1), ``device``/``dtype`` factory keywords, init values as
constructor arguments, :meth:`reset_parameters` and an ``extra_repr`` that
shows every argument. :class:`FixedActivation` does the same for the
constants of parameter-free activations.

Every learnact activation class accepts ``inplace`` and ignores it, as timm's
own layers do: timm builds activations with ``act_layer(inplace=True)``. The
output is always a new tensor (the learnable ones need the unmodified input
for their backward).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..functional import channel_view

__all__ = ["FixedActivation", "ParametricActivation", "check_num_parameters"]

InitValue = float | Sequence[float]


def check_num_parameters(num_parameters: Any) -> int:
    """Return ``num_parameters`` if it is a positive int; ``TypeError`` for a non-int (a
    bool included), ``ValueError`` below 1."""
    if isinstance(num_parameters, bool) or not isinstance(num_parameters, int):
        raise TypeError(f"num_parameters must be an int, got {type(num_parameters).__name__}")
    if num_parameters < 1:
        raise ValueError(f"num_parameters must be >= 1, got {num_parameters}")
    return num_parameters


def _check_init(name: str, value: Any, rows: bool) -> InitValue:
    is_seq = isinstance(value, Sequence) and not isinstance(value, str)
    if is_seq and not rows:
        raise TypeError(
            f"{name}_init must be one real number, got {value!r}; for one value per "
            f"channel, build with num_parameters=C and set the parameter afterwards "
            f"(with torch.no_grad(): module.{name}.copy_(values))")
    values = value if is_seq else [value]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{name}_init must be a real number, got {v!r}")
        if not math.isfinite(v):
            raise ValueError(f"{name}_init must be finite, got {v!r}")
    if values is value:
        return tuple(float(v) for v in values)
    return float(value)


class ParametricActivation(nn.Module):
    """Base class for activations with learnable ``(..., num_parameters)`` tensors.

    Subclasses call ``super().__init__(num_parameters, {"name": init, ...})``
    and read their parameters in ``forward`` through :meth:`param`, which
    reshapes them to broadcast over the input's channel dimension.

    Args:
        num_parameters: 1 for one value per instance (the paper's setting), or
            the number of channels ``C`` for one value per channel on dim 1.
        inits: parameter name -> initial value, one real number. Only the
            names a subclass lists in ``row_parameters`` (APL's hinges, SLAF's
            coefficients) take a sequence, which creates a leading axis of that
            length (one row per entry); any other sequence is a ``TypeError``.
        device: factory keyword, as in :class:`torch.nn.PReLU`.
        dtype: factory keyword, as in :class:`torch.nn.PReLU`.
    """

    # parameters with a leading axis (one row per entry of a sequence init)
    row_parameters: tuple[str, ...] = ()

    def __init__(
        self,
        num_parameters: int,
        inits: Mapping[str, InitValue],
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.num_parameters = check_num_parameters(num_parameters)
        self._inits = {name: _check_init(name, value, name in self.row_parameters)
                       for name, value in inits.items()}
        factory = {"device": device, "dtype": dtype}
        for name, value in self._inits.items():
            lead = (len(value),) if isinstance(value, tuple) else ()
            self.register_parameter(
                name, nn.Parameter(torch.empty(*lead, self.num_parameters, **factory))
            )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set every learnable parameter back to its constructor init value."""
        with torch.no_grad():
            for name, value in self._inits.items():
                param = getattr(self, name)
                if isinstance(value, tuple):
                    rows = torch.tensor(value, dtype=param.dtype, device=param.device)
                    param.copy_(rows.unsqueeze(-1).expand_as(param))
                else:
                    param.fill_(value)

    def param(self, name: str, x: Tensor) -> Tensor:
        """Parameter ``name`` shaped to broadcast over ``x`` and cast to its dtype."""
        return channel_view(getattr(self, name), x)

    def extra_repr(self) -> str:
        parts = [f"num_parameters={self.num_parameters}"]
        parts += [f"{name}_init={value}" for name, value in self._inits.items()]
        return ", ".join(parts)


class FixedActivation(nn.Module):
    """Base class for parameter-free activations defined by named constants.

    Subclasses list their constant names in ``constants``; each is stored as a
    plain float attribute and shown by ``extra_repr``. ``inplace`` is accepted
    and ignored (timm's ``act_layer(inplace=True)`` convention).
    """

    constants: tuple[str, ...] = ()

    def __init__(self, *, inplace: bool = False, **values: float) -> None:
        super().__init__()
        for name in self.constants:
            value = values[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a real number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
            setattr(self, name, float(value))

    def extra_repr(self) -> str:
        return ", ".join(f"{name}={getattr(self, name)}" for name in self.constants)
