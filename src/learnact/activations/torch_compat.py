"""Thin fixes over ``torch.nn`` activations so they honour learnact's contract."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["Hardsigmoid", "PReLU"]


class PReLU(nn.PReLU):
    r""":class:`torch.nn.PReLU` that keeps low-precision inputs low precision.

    .. math::
        \mathrm{PReLU}(x) = \max(0, x) + a \min(0, x)

    ``torch.nn.PReLU`` raises on a bfloat16/float16 input with a float32
    weight (``prelu: Type promoting not supported``); this subclass casts the
    weight to the input dtype first, as every learnact activation does. It is
    still an ``nn.PReLU``, with the same arguments and ``state_dict`` keys.
    """

    def forward(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight.to(input.dtype))


class Hardsigmoid(nn.Hardsigmoid):
    r""":class:`torch.nn.Hardsigmoid` with a double backward.

    .. math::
        \mathrm{Hardsigmoid}(x) = \min(\max(x/6 + 1/2,\ 0),\ 1)

    ``aten::hardsigmoid_backward`` has no derivative, so gradient penalties
    and ``gradgradcheck`` fail through the native op (and through the recipe
    wrapped around it). The same function written with ``clamp`` has one.
    """

    def forward(self, input: Tensor) -> Tensor:
        return (input * (1.0 / 6.0) + 0.5).clamp(0.0, 1.0)
