"""Thin fixes over ``torch.nn`` activations so they honour learnact's contract."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ..functional import require_floating

__all__ = ["Hardsigmoid", "PReLU", "RReLU"]


class PReLU(nn.PReLU):
    r""":class:`torch.nn.PReLU` that keeps low-precision inputs low precision.

    .. math::
        \mathrm{PReLU}(x) = \max(0, x) + a \min(0, x)

    ``torch.nn.PReLU`` raises on a bfloat16/float16 input with a float32
    weight (``prelu: Type promoting not supported``); this subclass casts the
    weight to the input dtype first, as every learnact activation does. It is
    still an ``nn.PReLU``, with the same arguments and ``state_dict`` keys,
    plus ``inplace``, accepted and ignored (timm's ``act_layer(inplace=True)``).
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, device=None, dtype=None,
                 *, inplace: bool = False) -> None:
        super().__init__(num_parameters, init, device=device, dtype=dtype)

    def forward(self, input: Tensor) -> Tensor:
        require_floating(input)  # the weight cast to an integer dtype would be truncated
        return F.prelu(input, self.weight.to(input.dtype))


class Hardsigmoid(nn.Hardsigmoid):
    r""":class:`torch.nn.Hardsigmoid` with a double backward.

    .. math::
        \mathrm{Hardsigmoid}(x) = \min(\max(x/6 + 1/2,\ 0),\ 1)

    ``aten::hardsigmoid_backward`` has no derivative, so gradient penalties
    and ``gradgradcheck`` fail through the native op (and through the recipe
    wrapped around it). The same function written with ``clamp`` has one.
    ``inplace`` is accepted and ignored: the output is always a new tensor.
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(inplace=False)

    def forward(self, input: Tensor) -> Tensor:
        return (input * (1.0 / 6.0) + 0.5).clamp(0.0, 1.0)


class RReLU(nn.RReLU):
    r""":class:`torch.nn.RReLU` whose eval mode is a plain Leaky ReLU, so ``torch.func.vmap`` works.

    .. math::
        \mathrm{RReLU}(x) = \begin{cases} x & x \ge 0 \\ a x & x < 0 \end{cases},
        \quad a \sim U(\text{lower}, \text{upper}) \text{ in training, }
        a = (\text{lower} + \text{upper}) / 2 \text{ in eval}

    In eval mode ``aten::rrelu`` computes exactly ``leaky_relu(x, (lower + upper) / 2)``,
    but it has no batching rule, so ``vmap`` over ``nn.RReLU`` fails even where
    nothing is random. This subclass calls ``leaky_relu`` in eval mode and the
    native op (random slopes) in training. Same arguments and ``state_dict``.
    """

    def forward(self, input: Tensor) -> Tensor:
        if self.training:
            return super().forward(input)
        return F.leaky_relu(input, (self.lower + self.upper) / 2, self.inplace)
