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
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..functional import channel_view

__all__ = ["FixedActivation", "ParametricActivation", "check_num_parameters", "packed_row"]

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

    A subclass that sets ``packed = True`` (DP ReLU, Dual Line) keeps all its
    values in one 1-D parameter ``weight`` of ``len(inits) * num_parameters``
    values, row after row in the order of ``inits``, and reads each row through
    a read-only attribute of the row's name (:func:`packed_row`): its fused
    backward then feeds one gradient accumulator instead of one per name, which
    at LeNet sizes costs about as much as the kernel. A state dict saved with
    one entry per name (learnact 0.3 and earlier) still loads.

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
    # all values in one 1-D parameter ``weight``, a row per name (see the class docstring)
    packed: bool = False

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
        if self.packed:
            if self.row_parameters:
                raise TypeError("a packed activation cannot have row parameters")
            size = len(self._inits) * self.num_parameters
            self.weight = nn.Parameter(torch.empty(size, **factory))
            self.reset_parameters()
            return
        for name, value in self._inits.items():
            lead = (len(value),) if isinstance(value, tuple) else ()
            self.register_parameter(
                name, nn.Parameter(torch.empty(*lead, self.num_parameters, **factory))
            )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Set every learnable parameter back to its constructor init value."""
        with torch.no_grad():
            if self.packed:
                for row, value in zip(self._rows(), self._inits.values(), strict=True):
                    row.fill_(value)
                return
            for name, value in self._inits.items():
                param = getattr(self, name)
                if isinstance(value, tuple):
                    rows = torch.tensor(value, dtype=param.dtype, device=param.device)
                    param.copy_(rows.unsqueeze(-1).expand_as(param))
                else:
                    param.fill_(value)

    def _rows(self) -> tuple[Tensor, ...]:
        return self._parameters["weight"].view(len(self._inits), -1).unbind(0)

    def named_values(self) -> Iterator[tuple[str, Tensor]]:
        """``(name, tensor)`` for each of this module's own learned values, by meaning.

        These are its parameters, except for a packed module (DP ReLU, Dual
        Line), which yields its ``weight`` row by row under the rows' names
        (``pos_slope``, ``neg_slope``, ``mean_shift``). The tensors are live
        (views of the parameter for a packed module): detach before storing.
        Nested modules' values are not included.
        """
        if self.packed:
            yield from zip(self._inits, self._rows(), strict=True)
        else:
            yield from self.named_parameters(recurse=False)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs) -> None:
        # a state dict from before packing has one (C,) entry per name: pack them
        # (the dict is load_state_dict's own copy)
        legacy = [prefix + name for name in self._inits]
        if self.packed and prefix + "weight" not in state_dict and all(
                k in state_dict for k in legacy):
            parts = [state_dict.pop(k) for k in legacy]
            if all(isinstance(t, Tensor) and t.dim() == 1 for t in parts):
                state_dict[prefix + "weight"] = torch.cat(parts)
            else:
                error_msgs.append(f"{prefix}: cannot pack {', '.join(legacy)} into weight: "
                                  f"shapes {[tuple(getattr(t, 'shape', ())) for t in parts]}")
                return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    def param(self, name: str, x: Tensor) -> Tensor:
        """Parameter ``name`` shaped to broadcast over ``x`` and cast to its dtype."""
        return channel_view(getattr(self, name), x)

    def extra_repr(self) -> str:
        parts = [f"num_parameters={self.num_parameters}"]
        parts += [f"{name}_init={value}" for name, value in self._inits.items()]
        return ", ".join(parts)


def packed_row(name: str, index: int, doc: str) -> property:
    """A read-only attribute for row ``index`` of a packed module's ``weight``.

    It returns a live view: ``with torch.no_grad(): module.pos_slope.fill_(2.0)``
    changes the parameter. The row's gradient is the same row of
    ``module.weight.grad`` (the view itself is not a leaf, so its ``.grad`` is
    ``None``).
    """
    def get(self: ParametricActivation) -> Tensor:
        return self._rows()[index]

    get.__name__ = name
    get.__doc__ = doc
    return property(get, doc=doc)


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
