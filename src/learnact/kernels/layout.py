"""Memory layouts as the kernels walk them: the ``(outer, C, inner)`` view of a tensor.

A tensor is walked in memory order with its channel index at stride ``inner``:
``C == 1`` is one flat run; NCHW has ``inner = H*W``; channels-last (NHWC) has
``inner = 1``. Gradients must arrive in ``x``'s layout (:func:`like_x`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .. import functional as LF

__all__ = ["kernel_layout", "like_x", "memory_format"]


def kernel_layout(x: Tensor, channels: int) -> tuple[Tensor, int]:
    """A kernel-ready ``x`` and the stride of the channel index (``inner``)."""
    if channels == 1:  # elementwise: any dense layout the kernel walks in memory order
        if x.is_contiguous() or (x.dim() == 4
                                 and x.is_contiguous(memory_format=torch.channels_last)):
            return x, 1
        return x.contiguous(), 1
    LF.channel_dim(channels, x)  # the reference path's shape checks and errors
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return x, 1  # NHWC in memory: the channel is the fastest index
    x = x if x.is_contiguous() else x.contiguous()
    inner = 1
    for size in x.shape[2:]:
        inner *= size
    return x, inner


def memory_format(xk: Tensor) -> torch.memory_format:
    """The layout of a kernel-ready ``xk`` (from :func:`kernel_layout`): standard or NHWC."""
    return torch.contiguous_format if xk.is_contiguous() else torch.channels_last


def like_x(t: Tensor, x: Tensor) -> Tensor:
    """``t`` in ``x``'s memory layout (standard or channels-last), as the kernels walk it."""
    return t.contiguous(memory_format=memory_format(x))
