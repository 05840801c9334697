"""The fused CPU kernel against the reference maths, and the dispatch that picks it."""

from __future__ import annotations

import warnings

import pytest
import torch

import learnact
from kernel_cases import TOL, assert_matches, make_input, saved_tensors
from learnact.kernels import dispatch, kernel_mode

HAVE_KERNEL = dispatch._load_cpu() is not None


def _fused(y):
    """Whether ``y`` came out of the C++ kernel's autograd node."""
    return y.grad_fn is not None and "DualLineFunction" in y.grad_fn.name()
needs_kernel = pytest.mark.skipif(not HAVE_KERNEL, reason="the C++ kernel could not be built")



def _run(module, x, mode):
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    with kernel_mode(mode):
        y = module(x)
        grad = torch.linspace(-1, 1, y.numel(), dtype=torch.float32).reshape(y.shape).to(y.dtype)
        y.backward(grad)
    return y.detach(), x.grad, {n: p.grad.clone() for n, p in module.named_parameters()}




def _assert_thread_count_independent(module, x):
    """The fused parameter gradients are bitwise equal on 1 and 2 threads."""
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        _, _, one = _run(module, x, "fused")
        torch.set_num_threads(2)
        _, _, two = _run(module, x, "fused")
    finally:
        torch.set_num_threads(old)
    for name in one:
        assert torch.equal(one[name], two[name]), name


@needs_kernel
@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("cls", [learnact.DualLine, learnact.DPReLU])
@pytest.mark.parametrize("channels", [1, 7])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontiguous"])
@pytest.mark.parametrize("shape", [(3, 7, 13, 11), (5, 7, 1, 131)], ids=["13x11", "1x131"])
def test_fused_matches_reference(dtype, cls, channels, layout, shape):
    module = cls(channels)
    with torch.no_grad():  # distinct per-channel values, off the init
        for i, p in enumerate(module.parameters()):
            p.add_(0.05 * (i + 1) * torch.arange(channels, dtype=torch.float32))
    x = make_input(shape, dtype, layout)
    assert_matches(_run(module, x, "fused"), _run(module, x, "reference"), dtype)


@needs_kernel
@pytest.mark.parametrize("n", [1, 2, 97, 65537, 200003])
def test_odd_and_prime_sizes_1d(n):
    module = learnact.DualLine()
    x = torch.randn(n)
    y_f, gx_f, gp_f = _run(module, x, "fused")
    y_r, gx_r, gp_r = _run(module, x, "reference")
    torch.testing.assert_close(y_f, y_r)
    torch.testing.assert_close(gx_f, gx_r)
    for name in gp_r:
        torch.testing.assert_close(gp_f[name], gp_r[name], atol=1e-3, rtol=1e-4)


@needs_kernel
def test_fused_is_deterministic_across_thread_counts():
    _assert_thread_count_independent(learnact.DualLine(), torch.randn(300_001))


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_auto_uses_fused_and_saves_only_x(dtype):
    module = learnact.DualLine(4)
    x = torch.randn(2, 4, 8, 8, dtype=dtype, requires_grad=True)
    with saved_tensors() as packed:
        y = module(x)
    assert _fused(y)
    assert not any(t.dtype == torch.bool for t in packed)
    big = [t for t in packed if t.numel() > 4]
    assert len(big) == 1 and big[0].data_ptr() == x.data_ptr()  # x itself, no copy
    # x plus the two (4,) float32 slopes: x's own bytes per element, and nothing else
    nbytes = sum(t.numel() * t.element_size() for t in packed)
    assert nbytes == x.numel() * x.element_size() + 2 * 4 * 4


@needs_kernel
def test_double_backward_through_the_kernel_raises_clearly():
    module = learnact.DualLine()
    x = torch.randn(10, requires_grad=True)
    y = module(x)
    with pytest.raises(RuntimeError, match="first-order only"):
        torch.autograd.grad(y.sum(), x, create_graph=True)
    with kernel_mode("reference"):  # the documented way out works
        (gx,) = torch.autograd.grad(module(x).sum(), x, create_graph=True)
    assert gx.requires_grad


@needs_kernel
def test_grad_of_a_broadcast_scalar_loss():
    # y.sum().backward() hands the kernel an expanded (stride-0) gradient
    module = learnact.DualLine(3)
    x = torch.randn(2, 3, 4, 5).contiguous(memory_format=torch.channels_last)
    xf = x.clone().requires_grad_()
    module(xf).sum().backward()
    fused = xf.grad.clone(), module.pos_slope.grad.clone()
    module.zero_grad()
    xr = x.clone().requires_grad_()
    with kernel_mode("reference"):
        module(xr).sum().backward()
    torch.testing.assert_close(fused[0], xr.grad)
    torch.testing.assert_close(fused[1], module.pos_slope.grad)


def test_reference_mode_and_float64_use_the_where_form():
    module = learnact.DualLine()
    with kernel_mode("reference"):
        assert not _fused(module(torch.randn(3, requires_grad=True)))
    assert not _fused(module(torch.randn(3, dtype=torch.float64, requires_grad=True)))


def test_fused_request_that_cannot_be_met_raises():
    with kernel_mode("fused"), pytest.raises(RuntimeError, match="float64"):
        learnact.DualLine()(torch.randn(3, dtype=torch.float64))


def test_bad_mode(monkeypatch):
    with pytest.raises(ValueError, match="kernel mode must be one of"):
        with kernel_mode("fast"):
            pass
    monkeypatch.setenv("LEARNACT_KERNELS", "turbo")
    with pytest.raises(ValueError, match="LEARNACT_KERNELS must be one of"):
        learnact.DualLine()(torch.randn(3))
    monkeypatch.setenv("LEARNACT_KERNELS", "reference")
    assert dispatch.get_mode() == "reference"


def test_unavailable_kernel_falls_back_in_auto_and_raises_in_fused(monkeypatch):
    monkeypatch.setattr(dispatch, "_load_cpu", lambda: None)
    module = learnact.DualLine()
    x = torch.randn(5, requires_grad=True)
    y = module(x)  # auto: silently the reference path
    assert y.grad_fn is not None and not _fused(y)
    with kernel_mode("fused"), pytest.raises(RuntimeError, match="could not be built"):
        module(x)


def test_build_failure_warns_once(monkeypatch):
    import torch.utils.cpp_extension as ext

    from learnact.kernels import cpu

    def broken(**kwargs):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(ext, "load", broken)
    cpu.load.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert cpu.load() is None
            assert cpu.load() is None  # cached: no second attempt, no second warning
        assert len([w for w in caught if "could not be built" in str(w.message)]) == 1
    finally:
        cpu.load.cache_clear()


def test_isa_build_failure_falls_back_to_the_baseline_build(monkeypatch):
    import torch.utils.cpp_extension as ext

    from learnact.kernels import cpu

    tried = []

    def only_baseline(**kwargs):
        tried.append(kwargs["extra_cflags"])
        if any(f.startswith("-mavx") for f in kwargs["extra_cflags"]):
            raise RuntimeError("cc1plus: error: unrecognized command-line option")
        return "baseline module"

    monkeypatch.setattr(ext, "load", only_baseline)
    monkeypatch.setattr(cpu, "candidate_flags",
                        lambda: [cpu.CFLAGS + cpu.ISA_FLAGS["AVX2"], cpu.CFLAGS + cpu.BASE_FLAGS])
    cpu.load.cache_clear()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a working fallback warns about nothing
            assert cpu.load() == "baseline module"
    finally:
        cpu.load.cache_clear()
    assert len(tried) == 2 and "-mavx2" in tried[0] and "-mavx2" not in tried[1]
    # one cache entry per instruction set
    assert cpu.build_name(tried[0]) != cpu.build_name(tried[1])


def test_candidate_flags_follow_atens_capability(monkeypatch):
    import platform

    from learnact.kernels import cpu

    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert cpu.candidate_flags() == [cpu.CFLAGS + cpu.ISA_FLAGS["AVX2"],
                                     cpu.CFLAGS + cpu.BASE_FLAGS]
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "DEFAULT")
    assert cpu.candidate_flags() == [cpu.CFLAGS + cpu.BASE_FLAGS]
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert cpu.candidate_flags() == [cpu.CFLAGS + cpu.BASE_FLAGS]


def test_import_does_not_build_the_kernel():
    import subprocess
    import sys

    code = ("import learnact, sys; "
            "print('learnact.kernels.cpu' in sys.modules or 'torch.utils.cpp_extension' in "
            "sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "False"


# ---------------------------------------------------------------- the general recipe


def _recipe_fused(y):
    """Either fused recipe path: around G's output, or with G's backward inside."""
    return y.grad_fn is not None and any(
        name in y.grad_fn.name() for name in ("RecipeFunction", "_RecipeAroundG"))


@needs_kernel
@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("base", ["gelu", "elu", "prelu", "tanh", "softplus"])
@pytest.mark.parametrize("channels", [1, 7])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontiguous"])
@pytest.mark.parametrize("mean_shift", [True, False])
def test_fused_recipe_matches_reference(dtype, base, channels, layout, mean_shift):
    module = learnact.Learnable(base, num_parameters=channels, mean_shift=mean_shift)
    with torch.no_grad():  # distinct per-channel values, off the init
        for i, p in enumerate(module.parameters()):
            p.add_(0.05 * (i + 1) * torch.arange(p.numel(), dtype=torch.float32))
    x = make_input((3, 7, 13, 11), dtype, layout)
    with kernel_mode("fused"):
        assert _recipe_fused(module(x.detach().requires_grad_()))
    fused, ref = _run(module, x, "fused"), _run(module, x, "reference")
    assert_matches(fused, ref, dtype)
    # pos_slope, mean_shift and the base's own parameters (prelu's weight)
    assert set(fused[2]) == set(ref[2]) and len(ref[2]) == 1 + mean_shift + (base == "prelu")


@needs_kernel
@pytest.mark.parametrize("n", [1, 97, 65537, 200003])
def test_fused_recipe_odd_sizes_and_zero(n):
    module = learnact.Learnable("elu")
    x = torch.randn(n)
    x[0] = 0.0  # x > 0 is strict: G(0) at zero
    y_f, gx_f, gp_f = _run(module, x, "fused")
    y_r, gx_r, gp_r = _run(module, x, "reference")
    torch.testing.assert_close(y_f, y_r)
    torch.testing.assert_close(gx_f, gx_r)
    for name in gp_r:
        torch.testing.assert_close(gp_f[name], gp_r[name], atol=1e-3, rtol=1e-4)


class _Exploding(torch.nn.Module):
    """exp(x): infinite for large positive x, where the recipe uses a*x instead."""

    def forward(self, x):
        return torch.exp(x)


@needs_kernel
def test_fused_recipe_selects_rather_than_blends():
    # an infinite G(x) on the positive side must not reach y (0 * inf would be NaN)
    module = learnact.Learnable(_Exploding(), mean_shift=False)
    x = torch.tensor([-1.0, 0.5, 200.0] + [300.0] * 20)
    with kernel_mode("fused"):
        y = module(x)
    assert _recipe_fused(y)
    torch.testing.assert_close(y, torch.where(x > 0, x, torch.exp(x)))


@needs_kernel
def test_fused_recipe_saves_only_x_beyond_what_g_saves():
    module = learnact.Learnable(torch.nn.Tanh(), mean_shift=True)
    x = torch.randn(4, 3, 8, 8, requires_grad=True)
    with saved_tensors() as packed:
        y = module(x)
    assert _recipe_fused(y)
    assert not any(t.dtype == torch.bool for t in packed)
    # tanh saves its output; the recipe saves x and the (1,) slope
    assert sum(t.numel() for t in packed) == 2 * x.numel() + 1


class _Upcasting(torch.nn.Module):
    def forward(self, x):
        return torch.tanh(x).double()


@needs_kernel
def test_recipe_with_a_mismatched_g_falls_back_or_raises():
    module = learnact.Learnable(_Upcasting(), mean_shift=False)
    x = torch.randn(5)
    y = module(x)  # auto: the reference path, with torch's type promotion
    assert not _recipe_fused(y) and y.dtype == torch.float64
    with kernel_mode("fused"), pytest.raises(RuntimeError, match="does not match x"):
        module(x)


@needs_kernel
def test_recipe_double_backward_raises_clearly():
    module = learnact.Learnable("gelu")
    x = torch.randn(10, requires_grad=True)
    with pytest.raises(RuntimeError, match="first-order only"):
        torch.autograd.grad(module(x).sum(), x, create_graph=True)


@needs_kernel
def test_recipe_is_deterministic_across_thread_counts():
    _assert_thread_count_independent(learnact.Learnable("gelu", num_parameters=3),
                                     torch.randn(2, 3, 300, 301))


@needs_kernel
@pytest.mark.parametrize("cls", [learnact.DualLine, lambda: learnact.Learnable("gelu")])
def test_per_tensor_channels_last_runs_in_place_of_layout(cls):
    # per-tensor parameters are elementwise: a channels-last input is not copied,
    # and the output and gradient keep its layout
    module = cls()
    x = torch.randn(2, 5, 6, 7).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = module(x)
    assert y.is_contiguous(memory_format=torch.channels_last) and not y.is_contiguous()
    y.backward(torch.ones_like(y))
    assert x.grad.is_contiguous(memory_format=torch.channels_last)
    with kernel_mode("reference"):
        xr = x.detach().clone().requires_grad_()
        yr = module(xr)
        yr.backward(torch.ones_like(yr))
    torch.testing.assert_close(y, yr)
    torch.testing.assert_close(x.grad, xr.grad)


class _Tracked(torch.nn.Module):
    """GELU that keeps a weak reference to its last output."""

    def forward(self, x):
        import weakref

        out = torch.nn.functional.gelu(x)
        self.last = weakref.ref(out)
        return out


@needs_kernel
def test_training_recipe_runs_g_backward_on_the_whole_gradient_without_keeping_g_of_x():
    import gc

    base = _Tracked()
    module = learnact.Learnable(base)
    x = torch.randn(4, 3, 5, 5, requires_grad=True)
    y = module(x)
    assert "_RecipeAroundG" in y.grad_fn.name()
    gc.collect()
    assert base.last() is None  # G(x) was freed after forward; only its graph is kept
    g = torch.randn_like(y)
    y.backward(g)
    xr = x.detach().clone().requires_grad_()
    pos = module.pos_slope.grad.clone()
    module.zero_grad()
    with kernel_mode("reference"):
        module(xr).backward(g)
    torch.testing.assert_close(x.grad, xr.grad)
    torch.testing.assert_close(pos, module.pos_slope.grad)


@needs_kernel
def test_training_recipe_with_identity_g_leaves_the_incoming_gradient_alone():
    # G(x) = x: G's backward returns the incoming gradient itself, which the
    # in-place select must not overwrite
    module = learnact.Learnable(torch.nn.Identity(), mean_shift=False)
    with torch.no_grad():
        module.pos_slope.fill_(3.0)
    x = torch.randn(50, requires_grad=True)
    y = module(x)
    assert "_RecipeAroundG" in y.grad_fn.name()
    g = torch.randn(50)
    keep = g.clone()
    y.backward(g)
    assert torch.equal(g, keep)
    torch.testing.assert_close(x.grad, torch.where(x > 0, 3.0 * g, g))


@needs_kernel
def test_training_recipe_with_a_random_g_uses_the_same_draw_in_backward():
    # RReLU draws its slopes in forward: a fused path that recomputed G in
    # backward would differentiate a different function
    module = learnact.Learnable(torch.nn.RReLU()).train()
    x = torch.randn(2000)
    results = []
    for mode in ("fused", "reference"):
        module.zero_grad()
        xx = x.clone().requires_grad_()
        torch.manual_seed(7)
        with kernel_mode(mode):
            y = module(xx)
        y.backward(torch.ones_like(y))
        results.append((y.detach(), xx.grad, module.mean_shift.grad.clone()))
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b)


@needs_kernel
def test_recipe_path_choice():
    x = torch.randn(3, 4, requires_grad=True)
    assert "_RecipeAroundG" in learnact.Learnable("gelu")(x).grad_fn.name()
    # G with its own trainable parameter: the recipe is fused around G's output
    assert "RecipeFunction" in learnact.Learnable("prelu")(x).grad_fn.name()
    with torch.no_grad():  # inference builds no graph at all
        assert learnact.Learnable("gelu")(x).grad_fn is None


class _CountingUpcast(torch.nn.Module):
    calls = 0

    def forward(self, x):
        self.calls += 1
        return torch.tanh(x).double()


@needs_kernel
def test_mismatched_g_while_training_runs_g_once_and_keeps_gradients():
    base = _CountingUpcast()
    module = learnact.Learnable(base, mean_shift=False)
    x = torch.randn(6, requires_grad=True)
    y = module(x)
    assert base.calls == 1 and y.dtype == torch.float64
    y.sum().backward()
    expected = torch.where(x > 0, torch.ones(6), 1 - torch.tanh(x) ** 2)
    torch.testing.assert_close(x.grad, expected.detach())
