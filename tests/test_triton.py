"""The Triton kernel against the reference maths.

Without CUDA the kernels run in Triton's interpreter on CPU tensors
(``TRITON_INTERPRET=1`` must be set before the ``@triton.jit`` decorators run,
so it is set before the import below). With CUDA they run on the GPU, and the
tests at the end check that the dispatch sends CUDA tensors to them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types

import pytest
import torch

import learnact
from learnact.kernels import dispatch, kernel_mode
from learnact.kernels.layout import kernel_layout

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)
if not CUDA and "triton" not in sys.modules:
    # read when triton's own and our @triton.jit functions are decorated (at
    # import) and again at every launch, so it stays set for this worker; it
    # only changes how Triton kernels run (inductor's CPU backend does not use Triton)
    os.environ["TRITON_INTERPRET"] = "1"
if not CUDA and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("triton was imported before TRITON_INTERPRET=1 could be set",
                allow_module_level=True)
from kernel_cases import TOL, assert_matches, make_input, saved_tensors  # noqa: E402
from learnact.kernels import triton_kernels as T  # noqa: E402


def _module(cls, channels):
    module = cls(channels).to(DEVICE)
    with torch.no_grad():  # distinct per-channel values, off the init
        for i, (_, _, v) in enumerate(learnact.activation_values(module)):
            v.add_(0.05 * (i + 1) * torch.arange(channels, dtype=torch.float32, device=DEVICE))
    return module


def _triton_call(module, x):
    """The module's maths through the Triton autograd Function, whatever the device."""
    xk, inner = kernel_layout(x, module.pos_slope.shape[-1])
    shift = getattr(module, "mean_shift", None)
    return T.DualLineTriton.apply(xk, module.pos_slope, module.neg_slope, shift, inner)


def _grads(module, x, fn):
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    y = fn(module, x)
    grad = torch.linspace(-1, 1, y.numel(), device=DEVICE).reshape(y.shape).to(y.dtype)
    y.backward(grad)
    return y.detach(), x.grad, {n: p.grad.clone() for n, p in module.named_parameters()}


def _reference(module, x):
    with kernel_mode("reference"):
        return module(x)




def _assert_parity(module, x, dtype):
    fast, ref = _grads(module, x, _triton_call), _grads(module, x, _reference)
    assert_matches(fast, ref, dtype)
    assert set(fast[2]) == set(ref[2])


@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("cls", [learnact.DualLine, learnact.DPReLU])
@pytest.mark.parametrize("channels", [1, 7])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontiguous"])
def test_triton_matches_reference(dtype, cls, channels, layout):
    x = make_input((3, 7, 13, 11), dtype, layout, DEVICE)
    _assert_parity(_module(cls, channels), x, dtype)


@pytest.mark.parametrize("shape", [(1,), (2,), (97,), (4099,), (3, 5), (2, 5, 1, 131)],
                         ids=str)
def test_triton_odd_and_prime_sizes(shape):
    channels = 5 if len(shape) > 1 and shape[1] == 5 else 1
    _assert_parity(_module(learnact.DualLine, channels),
                   make_input(shape, torch.float32, "contiguous", DEVICE), torch.float32)


@pytest.mark.slow
def test_triton_many_channels_span_several_channel_tiles():
    # 300 channels: channels-last uses three 128-wide channel tiles, NCHW 600 rows
    module = _module(learnact.DualLine, 300)
    for layout in ("channels_last", "contiguous"):
        x = make_input((2, 300, 2, 3), torch.float32, layout, DEVICE)
        _assert_parity(module, x, torch.float32)


def test_triton_parameter_grads_are_deterministic():
    module = _module(learnact.DualLine, 1)
    x = torch.randn(20_000, device=DEVICE)
    first = _grads(module, x, _triton_call)[2]
    second = _grads(module, x, _triton_call)[2]
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_triton_empty_input():
    module = _module(learnact.DualLine, 1)
    x = torch.empty(0, device=DEVICE, requires_grad=True)
    y = _triton_call(module, x)
    y.sum().backward()
    assert y.shape == (0,) and x.grad.shape == (0,)
    assert module.weight.grad.tolist() == [0.0, 0.0, 0.0]


def test_triton_saves_only_x():
    module = _module(learnact.DualLine, 1)
    x = torch.randn(4, 3, 5, 5, device=DEVICE, requires_grad=True)
    with saved_tensors() as packed:
        _triton_call(module, x)
    assert not any(t.dtype == torch.bool for t in packed)
    assert sum(t.numel() for t in packed) == x.numel() + 2  # x and the two slopes


def _recipe_module(base, channels, mean_shift):
    module = learnact.Learnable(base, num_parameters=channels, mean_shift=mean_shift).to(DEVICE)
    with torch.no_grad():
        for i, p in enumerate(module.parameters()):
            p.add_(0.05 * (i + 1) * torch.arange(p.numel(), dtype=torch.float32, device=DEVICE))
    return module


def _triton_recipe(module, x):
    xk, inner = kernel_layout(x, module.pos_slope.shape[-1])
    gx = module.base(xk)
    gk = gx.contiguous() if xk.is_contiguous() else gx.contiguous(
        memory_format=torch.channels_last)
    return T.RecipeTriton.apply(xk, gk, module.pos_slope, module.mean_shift, inner)


@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("base", ["gelu", "prelu"])
@pytest.mark.parametrize("channels", [1, 7])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontiguous"])
@pytest.mark.parametrize("mean_shift", [True, False])
def test_triton_recipe_matches_reference(dtype, base, channels, layout, mean_shift):
    module = _recipe_module(base, channels, mean_shift)
    x = make_input((3, 7, 13, 11), dtype, layout, DEVICE)
    fast, ref = _grads(module, x, _triton_recipe), _grads(module, x, _reference)
    assert_matches(fast, ref, dtype)
    assert set(fast[2]) == set(ref[2]) and len(ref[2]) == 1 + mean_shift + (base == "prelu")


def test_triton_recipe_selects_rather_than_blends():
    module = learnact.Learnable(_Exp(), mean_shift=False).to(DEVICE)
    x = torch.tensor([-1.0, 0.0, 0.5, 200.0, 300.0], device=DEVICE)
    y = _triton_recipe(module, x)
    torch.testing.assert_close(y, torch.where(x >= 0, x, torch.exp(x)))


class _Exp(torch.nn.Module):
    def forward(self, x):
        return torch.exp(x)


def test_dispatch_reasons_for_cuda_tensors(monkeypatch):
    fake = types.SimpleNamespace(device=torch.device("cuda"), dtype=torch.float32)
    monkeypatch.setattr(dispatch, "_load_triton", lambda: None)
    assert "Triton" in dispatch.fused_unavailable_reason(fake)
    monkeypatch.setattr(dispatch, "_load_triton", lambda: T)
    assert dispatch.fused_unavailable_reason(fake) is None
    fake.dtype = torch.float64
    assert "float64" in dispatch.fused_unavailable_reason(fake)
    meta = torch.empty(3, device="meta")
    assert "meta" in dispatch.fused_unavailable_reason(meta)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_dispatch_sends_cuda_tensors_to_triton(dtype, layout):
    module = _module(learnact.DualLine, 7)
    x = make_input((8, 7, 33, 35), dtype, layout, DEVICE).requires_grad_()
    with kernel_mode("fused"):
        y = module(x)
    assert "DualLineTriton" in y.grad_fn.name()
    _assert_parity(module, x.detach(), dtype)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_dispatch_sends_cuda_recipe_to_triton():
    module = _recipe_module("gelu", 7, True)
    x = make_input((8, 7, 33, 35), torch.float32, "contiguous", DEVICE).requires_grad_()
    with kernel_mode("fused"):
        y = module(x)
    assert "RecipeTriton" in y.grad_fn.name()
