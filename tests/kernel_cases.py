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


def nonfinite_input(dtype, shape=(40,), layout="contiguous"):
    """NaN (both signs), ±inf, ±finfo.max, ±1 and ±0 tiled over ``shape``.

    The values repeat through the whole tensor, so they land both in the kernels'
    vector bodies and in their scalar tails.
    """
    big = torch.finfo(dtype).max
    nan = torch.tensor(float("nan"))
    values = torch.stack([nan, -nan, torch.tensor(float("inf")), torch.tensor(float("-inf")),
                          torch.tensor(big), torch.tensor(-big), torch.tensor(1.0),
                          torch.tensor(-1.0), torch.tensor(0.0), torch.tensor(-0.0)])
    n = 1
    for s in shape:
        n *= s
    x = values.repeat(n // len(values) + 1)[:n].reshape(shape).to(dtype)
    if layout == "channels_last":
        return x.contiguous(memory_format=torch.channels_last)
    return x


def assert_same_nonfinite(fast, ref, dtype=torch.float32):
    """``(y, grad_x, {param: grad})`` agree, with NaN exactly where the other has NaN.

    float32 must match to rounding; bfloat16/float16 within ``TOL``/``PTOL`` (the fused
    kernels compute in float32 and round once, the reference rounds every op).
    """
    (y_f, gx_f, gp_f), (y_r, gx_r, gp_r) = fast, ref
    atol, rtol = (0.0, 1e-6) if dtype == torch.float32 else TOL[dtype]
    patol, prtol = (0.0, 1e-6) if dtype == torch.float32 else PTOL[dtype]
    for got, want, at, rt, what in [(y_f, y_r, atol, rtol, "y"), (gx_f, gx_r, atol, rtol, "grad_x"),
                                    *((gp_f[n], gp_r[n], patol, prtol, n) for n in gp_r)]:
        assert torch.equal(got.isnan(), want.isnan()), (what, got, want)
        torch.testing.assert_close(got, want, equal_nan=True, atol=at, rtol=rt, msg=what)


# DP ReLU's and Dual Line's packed ``weight``: rows in this order, C values each
_ROWS = ("pos_slope", "neg_slope", "mean_shift")


def row_grad(module, name):
    """The gradient of one named value of a module (its names as in
    ``learnact.activation_values``): a row of the packed ``weight.grad`` for DP ReLU and
    Dual Line, else the named parameter's own ``.grad``."""
    if not getattr(module, "packed", False):
        return module.get_parameter(name).grad
    weight = module.get_parameter("weight")
    if weight.grad is None:
        return None
    rows = 2 if type(module).__name__ == "DPReLU" else 3
    return weight.grad.view(rows, -1)[_ROWS.index(name)]
