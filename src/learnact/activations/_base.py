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
from ..kernels import dispatch

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
    an attribute of the row's name (:func:`packed_row`): its fused backward then
    feeds one gradient accumulator instead of one per name (at LeNet sizes the
    accumulators were about a quarter of a Dual Line call). A state dict or a
    pickled module with one entry per name (learnact 0.2) still loads.

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
        return dispatch.packed_rows(self._parameters["weight"], len(self._inits))

    def __setattr__(self, name: str, value: Any) -> None:
        # a packed row's name (``m.pos_slope = ...``, a Parameter included) copies the
        # values into ``weight``; nn.Module.__setattr__ would try to register a new one
        row = getattr(type(self), name, None)
        if isinstance(row, _PackedRow):
            row.__set__(self, value)
        else:
            super().__setattr__(name, value)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        # a whole module pickled by learnact 0.2 holds one parameter per name: pack them
        params = self.__dict__.get("_parameters", {})
        names = list(self.__dict__.get("_inits", ()))
        if type(self).packed and "weight" not in params and names and all(
                isinstance(params.get(n), Tensor) for n in names):
            parts = [params.pop(n) for n in names]
            self.weight = nn.Parameter(torch.cat([p.detach().reshape(-1) for p in parts]),
                                       requires_grad=parts[0].requires_grad)

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
        # a state dict from before packing (learnact 0.2) has one (C,) entry per name:
        # pack what it has into weight; rows it lacks keep their values and are
        # reported missing by name (an error unless strict=False). The dict is
        # load_state_dict's own copy.
        legacy = [prefix + name for name in getattr(self, "_inits", ())]
        if self.packed and prefix + "weight" not in state_dict and any(
                k in state_dict for k in legacy):
            C = self.num_parameters
            weight = self._parameters["weight"].detach().clone()
            rows, bad = weight.view(len(legacy), C), []
            for k, key in enumerate(legacy):
                if key not in state_dict:
                    missing_keys.append(key)
                    continue
                part = state_dict.pop(key)
                if isinstance(part, Tensor) and tuple(part.shape) == (C,):
                    rows[k].copy_(part)
                else:
                    bad.append(f"{key} {tuple(getattr(part, 'shape', ()))}")
            if bad:
                error_msgs.append(f"cannot pack {', '.join(bad)} into {prefix}weight: each "
                                  f"part must have shape ({C},), as num_parameters={C}")
                return
            state_dict[prefix + "weight"] = weight
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    def param(self, name: str, x: Tensor) -> Tensor:
        """Parameter ``name`` shaped to broadcast over ``x`` and cast to its dtype."""
        return channel_view(getattr(self, name), x)

    def extra_repr(self) -> str:
        parts = [f"num_parameters={self.num_parameters}"]
        parts += [f"{name}_init={value}" for name, value in self._inits.items()]
        return ", ".join(parts)


class _PackedRow(property):
    """A packed module's row attribute (see :func:`packed_row`)."""


def packed_row(name: str, index: int, doc: str) -> property:
    """The attribute for row ``index`` of a packed module's ``weight``.

    Reading it gives a live view: ``with torch.no_grad(): module.pos_slope.fill_(2.0)``
    changes the parameter. Assigning to it (a number, a sequence, a tensor or a
    Parameter: one value or one per channel) copies the values into ``weight``; the
    parameter stays the same object, so an optimizer holding it keeps working. The
    row's gradient is the same row of ``module.weight.grad`` (the view itself is not
    a leaf: its ``.grad`` is ``None``, and ``module.pos_slope.data = t`` changes
    nothing). One row cannot be frozen alone: mask its gradient instead (a hook on
    ``weight``).
    """
    def get(self: ParametricActivation) -> Tensor:
        return self._rows()[index]

    def set(self: ParametricActivation, value: Any) -> None:
        row = self._rows()[index]
        try:
            new = torch.as_tensor(value.detach() if isinstance(value, Tensor) else value,
                                  dtype=row.dtype, device=row.device)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{name} takes a number, a sequence or a tensor, got "
                            f"{type(value).__name__}") from None
        if new.dim() > 1 or new.numel() not in (1, row.numel()):
            raise ValueError(f"{name} takes one value or {row.numel()} (num_parameters), "
                             f"got shape {tuple(new.shape)}")
        with torch.no_grad():
            row.copy_(new.reshape(row.shape) if new.numel() == row.numel() else new.reshape(()))

    get.__name__ = set.__name__ = name
    get.__doc__ = doc
    return _PackedRow(get, set, doc=doc)


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
