"""Inputs, tolerances and a saved-tensor probe shared by the fused-kernel tests."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

# dtype -> (atol, rtol) for outputs and input grads; parameter grads are sums over
# many elements and get a looser tolerance in low precision (PTOL)
TOL = {torch.float32: (1e-6, 1e-5), torch.bfloat16: (1e-2, 2e-2), torch.float16: (2e-3, 2e-3)}
PTOL = {torch.float32: (1e-4, 1e-4), torch.bfloat16: (0.5, 0.02), torch.float16: (0.1, 0.01)}

SPECIAL = (0.0, -0.0, 1e4, -1e4, 1e-30, -1e-30, 5.0)


def make_input(shape, dtype, layout, device="cpu"):
    """``randn * 3`` with zeros, ±1e4 and ±1e-30 first, in ``layout``.

    ``layout`` is ``contiguous``, ``channels_last`` or ``noncontiguous`` (the
    last two dims transposed).
    """
    x = torch.randn(shape, device=device) * 3
    k = min(len(SPECIAL), x.numel())
    x.view(-1)[:k] = torch.tensor(SPECIAL[:k])
    x = x.to(dtype)
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    if layout == "noncontiguous":
        return x.transpose(-1, -2)
    return x


@contextlib.contextmanager
def saved_tensors() -> Iterator[list[torch.Tensor]]:
    """Collect every tensor autograd saves for backward inside the block."""
    packed: list[torch.Tensor] = []

    def pack(t):
        packed.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        yield packed


def assert_matches(fast, ref, dtype):
    """``(y, grad_x, {param: grad})`` of a fused path against the reference's.

    Outputs and input gradients keep ``dtype`` and agree within ``TOL``;
    parameter gradients (sums) within ``PTOL``.
    """
    (y_f, gx_f, gp_f), (y_r, gx_r, gp_r) = fast, ref
    atol, rtol = TOL[dtype]
    assert y_f.dtype == dtype and gx_f.dtype == dtype
    torch.testing.assert_close(y_f, y_r, atol=atol, rtol=rtol)
    torch.testing.assert_close(gx_f, gx_r, atol=atol, rtol=rtol)
    patol, prtol = PTOL[dtype]
    for name in gp_r:
        torch.testing.assert_close(gp_f[name], gp_r[name], atol=patol, rtol=prtol, msg=name)
