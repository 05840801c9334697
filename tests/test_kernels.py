"""The fused CPU kernels against the reference maths, and the dispatch that picks them.

Every test here runs once per kernel variant (baseline, AVX2, AVX-512) that this
CPU can execute, chosen with ``$LEARNACT_CPU_ISA``: a developer machine with
AVX-512 also runs the AVX2 and baseline code most users get. The build system
itself is tested in ``test_kernel_build.py``.
"""

from __future__ import annotations

import copy

import pytest
import torch

import learnact
from kernel_cases import (
    TOL,
    assert_matches,
    assert_same_nonfinite,
    make_input,
    nonfinite_input,
    row_grad,
    saved_tensors,
)
from learnact.kernels import cpu, dispatch, kernel_mode

HAVE_KERNEL = dispatch._load_cpu() is not None


@pytest.fixture(autouse=True, params=cpu.ISAS)
def isa(request, monkeypatch):
    """Run the test on one kernel variant; skip variants this machine cannot run or build."""
    name = request.param
    if name not in cpu.cpu_isas():
        pytest.skip(f"this CPU cannot execute the {name} variant")
    monkeypatch.setenv("LEARNACT_CPU_ISA", name)
    if dispatch._load_cpu() is None:
        reason = cpu.unavailable_reason() or ""
        if "rejects" in reason or "compiler" in reason or "ninja" in reason:
            pytest.skip(reason)  # the toolchain cannot build it: not learnact's bug
        pytest.fail(f"the {name} kernels failed to build: {reason}")
    assert cpu.loaded_isa(dispatch._load_cpu()) == name
    return name


def _fused(y):
    """Whether ``y`` came out of the C++ kernel's autograd node."""
    return y.grad_fn is not None and "DualLineBackward" in y.grad_fn.name()
needs_kernel = pytest.mark.skipif(not HAVE_KERNEL, reason="the C++ kernel could not be built")



def _run(module, x, mode):
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    with kernel_mode(mode):
        y = module(x)
        grad = torch.linspace(-1, 1, y.numel(), dtype=torch.float32).reshape(y.shape).to(y.dtype)
        y.backward(grad)
    return y.detach(), x.grad, {n: row_grad(module, n).clone()
                                for _, n, _ in learnact.activation_values(module)}




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
        for i, (_, _, v) in enumerate(learnact.activation_values(module)):
            v.add_(0.05 * (i + 1) * torch.arange(channels, dtype=torch.float32))
    x = make_input(shape, dtype, layout)
    assert_matches(_run(module, x, "fused"), _run(module, x, "reference"), dtype)


@needs_kernel
@pytest.mark.parametrize("n", [1, 2, 97, 65537, 200003])
def test_odd_and_prime_sizes_1d(n):
    module = learnact.DualLine()
    x = torch.randn(n)
    y_f, gx_f, gp_f = _run(module, x, "fused")
    y_r, gx_r, _ = _run(module, x, "reference")
    torch.testing.assert_close(y_f, y_r)
    torch.testing.assert_close(gx_f, gx_r)
    # the parameter gradients against float64 sums: the fused kernel sums in double,
    # while a float32 reference sum of 200003 terms is off by up to ~1e-3 depending
    # on the thread count (it failed with OMP_NUM_THREADS=1)
    gp_exact = _run(copy.deepcopy(module).double(), x.double(), "reference")[2]
    for name, exact in gp_exact.items():
        torch.testing.assert_close(gp_f[name], exact.float(), atol=1e-4, rtol=1e-5)


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
    # besides the parameters (one packed weight), x itself, with no copy
    big = [t for t in packed if t.numel() > 4 and t.data_ptr() != module.weight.data_ptr()]
    assert len(big) == 1 and big[0].data_ptr() == x.data_ptr()
    # x plus the packed (12,) float32 weight (the parameter itself, not a copy): x's own
    # bytes per element, and nothing else
    nbytes = sum(t.numel() * t.element_size() for t in packed)
    assert nbytes == x.numel() * x.element_size() + 3 * 4 * 4


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
    fused = xf.grad.clone(), row_grad(module, "pos_slope").clone()
    module.zero_grad()
    xr = x.clone().requires_grad_()
    with kernel_mode("reference"):
        module(xr).sum().backward()
    torch.testing.assert_close(fused[0], xr.grad)
    torch.testing.assert_close(fused[1], row_grad(module, "pos_slope"))


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
    monkeypatch.setattr(dispatch, "_fast", None)  # as after a load that found no kernel
    module = learnact.DualLine()
    x = torch.randn(5, requires_grad=True)
    y = module(x)  # auto: silently the reference path
    assert y.grad_fn is not None and not _fused(y)
    with kernel_mode("fused"), pytest.raises(RuntimeError, match="could not be built"):
        module(x)


# ---------------------------------------------------------------- the hot path's environment


@needs_kernel
def test_the_auto_entry_points_read_the_environment_themselves(monkeypatch, isa):
    ext = dispatch._load_cpu()  # loaded for LEARNACT_CPU_ISA=isa (the fixture)
    x, p, m = torch.randn(4, 3), torch.ones(1), torch.zeros(1)
    w = torch.tensor([1.0, 0.1, 0.0])  # Dual Line's packed pos_slope, neg_slope, mean_shift
    monkeypatch.delenv("LEARNACT_KERNELS", raising=False)
    assert ext.dual_line_auto(x, w, 3) is not None
    assert ext.recipe_auto(x, torch.tanh(x), p, m) is not None
    monkeypatch.setenv("LEARNACT_KERNELS", "auto")  # set at all: the checked path decides
    assert ext.dual_line_auto(x, w, 3) is None
    assert ext.recipe_auto(x, torch.tanh(x), p, m) is None
    assert ext.recipe_inline_auto(x, p, m, 0, 1.0) is None
    monkeypatch.delenv("LEARNACT_KERNELS")
    # a value no load handed this module out for (as another variant's name would be)
    monkeypatch.setenv("LEARNACT_CPU_ISA", f" {isa.upper()} ")
    assert ext.dual_line_auto(x, w, 3) is None
    assert ext.recipe_auto(x, torch.tanh(x), p, m) is None
    assert ext.recipe_inline_auto(x, p, m, 0, 1.0) is None
    monkeypatch.setenv("LEARNACT_CPU_ISA", isa)
    cpu.reset()  # forgets what the loads handed out
    try:
        assert ext.dual_line_auto(x, w, 3) is None
    finally:
        assert dispatch._load_cpu() is ext
    assert ext.dual_line_auto(x, w, 3) is not None


@needs_kernel
def test_the_hot_path_follows_the_environment_between_calls(monkeypatch, isa):
    module, x = learnact.DualLine(), torch.randn(5, requires_grad=True)
    assert _fused(module(x))
    monkeypatch.setenv("LEARNACT_KERNELS", "reference")
    assert not _fused(module(x))
    monkeypatch.setenv("LEARNACT_KERNELS", "turbo")
    with pytest.raises(ValueError, match="LEARNACT_KERNELS must be one of"):
        module(x)
    monkeypatch.delenv("LEARNACT_KERNELS")
    assert _fused(module(x))
    with kernel_mode("reference"):
        assert not _fused(module(x))
    # another variant chosen between two calls: the second runs that variant's module
    for other in cpu.cpu_isas():
        monkeypatch.setenv("LEARNACT_CPU_ISA", other)
        y = module(x)
        if dispatch._fast is None:  # that variant cannot be built here
            continue
        assert _fused(y) and cpu.loaded_isa(dispatch._fast) == other
        y = learnact.Learnable("tanh")(x.detach())  # x needs no gradient: recipe_auto
        assert "RecipeBackward" in y.grad_fn.name()
        assert cpu.loaded_isa(dispatch._fast) == other
    # an inline G right after a switch from a variant without SIMD G to one with it
    gelu = learnact.Learnable("gelu")
    for first, then in [("baseline", "avx2"), ("baseline", "avx512")]:
        if then not in cpu.cpu_isas():
            continue
        monkeypatch.setenv("LEARNACT_CPU_ISA", first)
        if dispatch._load_cpu() is None:
            continue
        assert gelu(x.detach()).grad_fn.name() == "RecipeBackward"  # G in ATen
        monkeypatch.setenv("LEARNACT_CPU_ISA", then)
        y = gelu(x.detach())  # the first call after the switch
        if dispatch._fast is not None and dispatch._fast.SIMD:
            assert y.grad_fn.name() == "RecipeInlineBackward"


@needs_kernel
def test_the_hot_path_makes_no_environment_lookup_in_python(monkeypatch, isa):
    modules = [learnact.DualLine(), learnact.DPReLU(), learnact.Learnable("gelu"),
               learnact.Learnable("tanh")]
    # x needs no gradient: Learnable(tanh) then takes recipe_auto (training with
    # x.requires_grad runs G's own backward through RecipeAroundG, a checked path)
    x = torch.randn(6, 4)
    for m in modules:
        m(x)  # the first calls load the module

    def looked_up(*args):
        raise AssertionError("the hot path looked at the environment in Python")

    monkeypatch.setattr(dispatch, "get_mode", looked_up)
    monkeypatch.setattr(dispatch, "environ_get", looked_up)
    monkeypatch.setattr(cpu, "load", looked_up)
    monkeypatch.setattr(cpu, "environ_get", looked_up)
    for m in modules:
        y = m(x)
        assert y.grad_fn is not None and y.grad_fn.name().endswith("Backward"), y.grad_fn
        assert "Recipe" in y.grad_fn.name() or _fused(y)


@needs_kernel
def test_a_one_element_input_trains_through_the_precomputed_g_path():
    # y.sum()'s gradient for a (1,) y has stride (0,), which recipe_select_ refused
    module = learnact.Learnable("tanh")
    x = torch.randn(1, requires_grad=True)
    module(x).sum().backward()
    got = (x.grad.clone(), module.pos_slope.grad.clone())
    x.grad = module.pos_slope.grad = module.mean_shift.grad = None
    with kernel_mode("reference"):
        module(x).sum().backward()
    torch.testing.assert_close(got, (x.grad, module.pos_slope.grad))


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
        name in y.grad_fn.name()
        for name in ("RecipeBackward", "RecipeAroundG", "RecipeInlineBackward"))


@needs_kernel
@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("base", ["gelu", "elu", "silu", "elu_alpha", "prelu", "tanh",
                                  "softplus"])
@pytest.mark.parametrize("channels", [1, 7])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "noncontiguous"])
@pytest.mark.parametrize("mean_shift", [True, False])
def test_fused_recipe_matches_reference(dtype, base, channels, layout, mean_shift):
    g = torch.nn.ELU(alpha=0.7) if base == "elu_alpha" else base
    module = learnact.Learnable(g, num_parameters=channels, mean_shift=mean_shift)
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
    x[0] = 0.0  # the positive branch includes 0: a*0, not G(0)
    y_f, gx_f, gp_f = _run(module, x, "fused")
    y_r, gx_r, _ = _run(module, x, "reference")
    torch.testing.assert_close(y_f, y_r)
    torch.testing.assert_close(gx_f, gx_r)
    # the parameter gradients against float64 sums: the fused kernel sums in double,
    # while a float32 reference sum of 200003 terms is off by up to ~1e-3 depending
    # on the thread count (it failed with OMP_NUM_THREADS=1)
    gp_exact = _run(copy.deepcopy(module).double(), x.double(), "reference")[2]
    for name, exact in gp_exact.items():
        torch.testing.assert_close(gp_f[name], exact.float(), atol=1e-4, rtol=1e-5)


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
    torch.testing.assert_close(y, torch.where(x >= 0, x, torch.exp(x)))


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
    assert "RecipeAroundG" in y.grad_fn.name()
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
    assert "RecipeAroundG" in y.grad_fn.name()
    g = torch.randn(50)
    keep = g.clone()
    y.backward(g)
    assert torch.equal(g, keep)
    torch.testing.assert_close(x.grad, torch.where(x >= 0, 3.0 * g, g))


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
    # GELU, ELU, SiLU: computed inside the kernel, one sweep each way (SIMD builds)
    inline = "RecipeInlineBackward" if dispatch._load_cpu().SIMD else "RecipeAroundG"
    for name in ("gelu", "elu", "silu"):
        assert inline in learnact.Learnable(name)(x).grad_fn.name()
    # a G the kernel does not know, or gelu's tanh form, or a G with hooks: G runs itself
    assert "RecipeAroundG" in learnact.Learnable("mish")(x).grad_fn.name()
    assert "RecipeAroundG" in learnact.Learnable("gelu_tanh")(x).grad_fn.name()
    hooked = torch.nn.GELU()
    calls = []
    hooked.register_forward_hook(lambda *a: calls.append(1))
    assert "RecipeAroundG" in learnact.Learnable(hooked)(x).grad_fn.name() and calls
    # G with its own trainable parameter: the recipe is fused around G's output
    assert "RecipeBackward" in learnact.Learnable("prelu")(x).grad_fn.name()
    with torch.no_grad():  # inference builds no graph at all
        assert learnact.Learnable("gelu")(x).grad_fn is None
        assert learnact.Learnable("mish")(x).grad_fn is None


@needs_kernel
@pytest.mark.parametrize("base", ["gelu", "elu", "silu"])
def test_inline_recipe_saves_only_x(base):
    if not dispatch._load_cpu().SIMD:
        pytest.skip("the baseline build runs G in ATen")
    module = learnact.Learnable(base, num_parameters=4)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    with saved_tensors() as packed:
        y = module(x)
    assert "RecipeInlineBackward" in y.grad_fn.name()
    big = [t for t in packed if t.numel() > 4]
    assert len(big) == 1 and big[0].data_ptr() == x.data_ptr()


@needs_kernel
@pytest.mark.parametrize("base", ["gelu", "elu", "silu"])
def test_inline_recipe_kernels_alone_match_the_formula(base):
    # the raw kernels on every variant (the baseline's scalar G included), in float64 terms
    ext = dispatch._load_cpu()
    kind, alpha = dispatch.inline_g(learnact.Learnable(base).base)
    x = torch.randn(4099) * 4
    g = torch.randn(4099)
    a, m = torch.tensor([1.3]), torch.tensor([-0.2])
    xd = x.double().requires_grad_()
    gfun = {"gelu": torch.nn.functional.gelu, "elu": torch.nn.functional.elu,
            "silu": torch.nn.functional.silu}[base]
    want = torch.where(xd >= 0, 1.3 * xd, gfun(xd)) - 0.2
    want.backward(g.double())
    torch.testing.assert_close(ext.recipe_inline_forward(x, a, m, 1, kind, alpha),
                               want.detach().float(), atol=2e-6, rtol=2e-6)
    gx, sums = ext.recipe_inline_backward(g, x, a, 1, kind, alpha)
    torch.testing.assert_close(gx, xd.grad.float(), atol=2e-6, rtol=2e-6)
    torch.testing.assert_close(sums[1], g.double().sum().float().reshape(1))


@needs_kernel
def test_inline_gelu_within_3_5e_7_of_float64_everywhere():
    # the vector GELU is the negative branch alone: erfc by Abramowitz & Stegun 7.1.26
    # and exp(-x^2/2) by a Taylor 2^f; measured 2.1e-7 forward and 2.7e-7 backward
    ext = dispatch._load_cpu()
    if not ext.SIMD:
        pytest.skip("the baseline build runs G in ATen")
    kind, alpha = dispatch.inline_g(learnact.Learnable("gelu").base)
    x = torch.cat([torch.linspace(-40, 40, 400_001), torch.linspace(-14, -12, 20_001)])
    a, m, g = torch.tensor([1.0]), torch.tensor([0.0]), torch.ones_like(x)
    xd = x.double().requires_grad_()
    want = torch.where(xd >= 0, xd, torch.nn.functional.gelu(xd))
    want.backward(torch.ones_like(want))
    y = ext.recipe_inline_forward(x, a, m, 1, kind, alpha)
    gx, _ = ext.recipe_inline_backward(g, x, a, 1, kind, alpha)
    assert (y.double() - want.detach()).abs().max() < 3.5e-7
    assert (gx.double() - xd.grad).abs().max() < 3.5e-7


@needs_kernel
@pytest.mark.parametrize("base", ["gelu", "elu", "silu"])
def test_inline_recipe_on_extreme_inputs(base):
    # lanes compute G on both sides and the select drops one: no inf or NaN leaks
    module = learnact.Learnable(base, mean_shift=False)
    x = torch.tensor([-1e4, -100.0, -30.0, -1e-30, -0.0, 0.0, 1e-30, 30.0, 100.0, 1e4,
                      float("inf"), float("-inf")] + [-3.0] * 20)
    results = {}
    for mode in ("fused", "reference"):
        xx = x.clone().requires_grad_()
        with kernel_mode(mode):
            y = module(xx)
            y.backward(torch.ones_like(y))
        results[mode] = (y.detach(), xx.grad)
    torch.testing.assert_close(results["fused"][0], results["reference"][0], equal_nan=True)
    finite = x.isfinite()  # at +-inf the reference's masked 0 * G'(inf) may be NaN
    torch.testing.assert_close(results["fused"][1][finite], results["reference"][1][finite])
    assert results["fused"][1][10].item() == 1.0  # +inf: the positive branch, d/dx = a


@needs_kernel
def test_channels_last_with_an_odd_pixel_count_across_threads():
    # 3 * 101 * 101 pixels of 7 channels: the work splits between threads inside a
    # pixel unless chunks are pixel-aligned (a heap overflow before this test)
    x = torch.randn(3, 7, 101, 101).contiguous(memory_format=torch.channels_last)
    for module in (learnact.DualLine(7), learnact.Learnable("gelu", num_parameters=7),
                   learnact.Learnable("mish", num_parameters=7)):
        with torch.no_grad():
            for p in module.parameters():
                p.add_(0.1 * torch.arange(p.numel()))
        assert_matches(_run(module, x, "fused"), _run(module, x, "reference"), torch.float32)


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
    expected = torch.where(x >= 0, torch.ones(6), 1 - torch.tanh(x) ** 2)
    torch.testing.assert_close(x.grad, expected.detach())


# ---------------------------------------------------------------- accuracy of the sums


def _terms_dual_line(x, g):
    """The float32 terms the reference sums for d_pos, d_neg, d_shift (from upcast inputs)."""
    xf, gf = x.float(), g.float()
    t = gf * xf
    return [torch.where(xf >= 0, t, 0.0), torch.where(xf >= 0, 0.0, t), gf]


def _terms_recipe(x, g):
    xf, gf = x.float(), g.float()
    return [torch.where(xf >= 0, gf * xf, 0.0), gf]


def _by_channel(t, channels, layout):
    """(C, rest) view of a term tensor for per-channel sums."""
    if channels == 1:
        return t.reshape(1, -1)
    return t.transpose(0, 1).reshape(channels, -1)


def _assert_as_accurate_as_torch_sum(fused, terms, channels, layout):
    """Each fused sum is no further from a float64 oracle than float32 torch.sum is."""
    for k, term in enumerate(terms):
        rows = _by_channel(term, channels, layout)
        oracle = rows.double().sum(1)
        torch_err = (rows.sum(1).double() - oracle).abs()
        got = fused[k].double()
        err = (got - oracle).abs()
        # the rounding of the result into float32, and double accumulation's own error
        slack = oracle.abs() * 2.0**-24 + 1e-10 * rows.double().abs().sum(1)
        assert bool((err <= torch_err + slack).all()), (
            f"sum {k}: fused error {err.max().item():.3g} > torch.sum's "
            f"{torch_err.max().item():.3g} (oracle {oracle.tolist()[:3]})")


def _kernel_input(n_or_shape, dtype, layout, channels):
    if isinstance(n_or_shape, int):
        x = torch.randn(n_or_shape)
    else:
        x = torch.randn(n_or_shape)
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
    x = x.to(dtype)
    # cancelling upstream gradient: the exact sum of g is 0
    g = torch.linspace(-1, 1, x.numel()).reshape(x.shape).to(dtype)
    if layout == "channels_last":
        g = g.contiguous(memory_format=torch.channels_last)
    inner = 1
    if channels > 1 and layout != "channels_last":
        for size in x.shape[2:]:
            inner *= size
    return x, g, inner


_ACCURACY_CASES = [  # (size, layout, channels)
    (65537, "flat", 1),
    ((4, 7, 61, 67), "contiguous", 7),
    ((4, 7, 61, 67), "channels_last", 7),
    ((4, 1, 181, 181), "channels_last", 1),
]


@needs_kernel
@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("case", _ACCURACY_CASES, ids=lambda c: f"{c[1]}-C{c[2]}")
def test_parameter_gradient_sums_are_as_accurate_as_torch_sum(dtype, case):
    size, layout, channels = case
    x, g, inner = _kernel_input(size, dtype, layout, channels)
    ext = dispatch._load_cpu()
    pos, neg = torch.full((channels,), 1.1), torch.full((channels,), 0.02)
    _, sums = ext.backward(g, x, pos, neg, inner)
    _assert_as_accurate_as_torch_sum(sums, _terms_dual_line(x, g), channels, layout)
    _, _, sums = ext.recipe_backward(g, x, pos, inner)
    _assert_as_accurate_as_torch_sum(sums, _terms_recipe(x, g), channels, layout)
    t = torch.empty_like(x).copy_(g)  # recipe_select_ wants x's layout
    sums = ext.recipe_select_(t, g, x, pos, inner)
    _assert_as_accurate_as_torch_sum(sums, _terms_recipe(x, g), channels, layout)


@needs_kernel
def test_parameter_gradient_sums_stay_accurate_at_ten_million():
    x, g, inner = _kernel_input(10_000_000, torch.float32, "flat", 1)
    ext = dispatch._load_cpu()
    pos, neg = torch.ones(1), torch.full((1,), 0.01)
    _, sums = ext.backward(g, x, pos, neg, inner)
    _assert_as_accurate_as_torch_sum(sums, _terms_dual_line(x, g), 1, "flat")
    _, _, sums = ext.recipe_backward(g, x, pos, inner)
    _assert_as_accurate_as_torch_sum(sums, _terms_recipe(x, g), 1, "flat")


@needs_kernel
def test_the_issue_example_mean_shift_gradient_is_zero():
    # Learnable("elu"), x = randn(65537), g = linspace(-1, 1): the exact d_m is 0;
    # float running sums gave -0.152 here
    torch.manual_seed(0)
    module = learnact.Learnable("elu")
    x = torch.randn(65537, requires_grad=True)
    with kernel_mode("fused"):
        module(x).backward(torch.linspace(-1, 1, 65537))
    exact = torch.linspace(-1, 1, 65537).double().sum().item()
    assert abs(module.mean_shift.grad.item() - exact) < 1e-6


# ---------------------------------------------------------------- at exactly zero


@pytest.mark.parametrize("mode", ["fused", "reference"])
def test_dual_line_and_the_recipe_agree_at_exactly_zero(mode):
    if mode == "fused" and not HAVE_KERNEL:
        pytest.skip("no kernel")
    x0 = torch.tensor([0.0, -0.0, 0.0, 2.0, -2.0])
    results = []
    for make in (lambda: learnact.DualLine(),
                 lambda: learnact.Learnable(torch.nn.PReLU(init=0.01), mean_shift=True)):
        module = make()
        with torch.no_grad():
            module.pos_slope.fill_(1.5)
        x = x0.clone().requires_grad_()
        with kernel_mode(mode):
            y = module(x)
            y.backward(torch.ones_like(y))
        results.append((y.detach(), x.grad, row_grad(module, "pos_slope")))
    (y_d, gx_d, gp_d), (y_l, gx_l, gp_l) = results
    # at 0 and -0: the positive branch, value m, derivative pos_slope
    torch.testing.assert_close(y_d[:3], torch.full((3,), -0.22))
    torch.testing.assert_close(gx_d[:3], torch.full((3,), 1.5))
    torch.testing.assert_close(y_l, y_d)
    torch.testing.assert_close(gx_l, gx_d)
    torch.testing.assert_close(gp_l, gp_d)


def test_recipe_takes_the_positive_branch_at_zero_even_when_g_of_zero_is_not_zero():
    # softplus(0) = ln 2; the recipe's positive branch gives a*0 = 0 there
    module = learnact.Learnable("softplus", mean_shift=False)
    for mode in ("reference", "fused") if HAVE_KERNEL else ("reference",):
        x = torch.tensor([0.0, -0.0, -1.0], requires_grad=True)
        with kernel_mode(mode):
            y = module(x)
            y.sum().backward()
        torch.testing.assert_close(y.detach(), torch.tensor([0.0, 0.0, 0.31326169]))
        torch.testing.assert_close(x.grad, torch.tensor([1.0, 1.0, 0.26894142]))


# ---------------------------------------------------------------- retained graphs


@pytest.mark.parametrize("base", ["mish", "gelu", "pelu", torch.nn.PReLU])
def test_backward_twice_on_a_retained_graph(base):
    base_module = base() if callable(base) and not isinstance(base, str) else base
    module = learnact.Learnable(base_module)
    grads = {}
    for mode in ("auto", "reference"):
        module.zero_grad(set_to_none=True)
        x = torch.linspace(-2, 2, 8, requires_grad=True)
        with kernel_mode(mode):
            y = module(x).sum()
            y.backward(retain_graph=True)
            y.backward()
        grads[mode] = (x.grad, [p.grad.clone() for p in module.parameters()])
    torch.testing.assert_close(grads["auto"][0], grads["reference"][0])
    for a, b in zip(grads["auto"][1], grads["reference"][1], strict=True):
        torch.testing.assert_close(a, b)


def test_backward_twice_without_retain_graph_gives_autograd_s_own_error():
    module = learnact.Learnable("mish")
    x = torch.linspace(-2, 2, 8, requires_grad=True)
    y = module(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


# ---------------------------------------------------------------- non-finite inputs
# One rule on every path (see learnact.kernels.dispatch): x >= 0 takes the positive
# branch, everything else (NaN included) the negative slope or G, and a branch not
# taken adds exactly zero to every gradient.

NONFINITE_MODULES = {
    "dual_line": lambda c: learnact.DualLine(c),
    "dp_relu": lambda c: learnact.DPReLU(c),
    "recipe_gelu": lambda c: learnact.Learnable("gelu", num_parameters=c),  # inline G
    "recipe_elu": lambda c: learnact.Learnable("elu", num_parameters=c),
    "recipe_silu": lambda c: learnact.Learnable("silu", num_parameters=c),
    "recipe_tanh": lambda c: learnact.Learnable("tanh", num_parameters=c),  # select after G
    "recipe_prelu": lambda c: learnact.Learnable("prelu", num_parameters=c),  # around G
}


def _run_ones(module, x, mode):
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    with kernel_mode(mode):
        y = module(x)
        y.backward(torch.ones_like(y))
    return y.detach(), x.grad, {n: row_grad(module, n).clone()
                                for _, n, _ in learnact.activation_values(module)}


@needs_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
@pytest.mark.parametrize(("shape", "channels", "layout"), [
    ((40,), 1, "contiguous"), ((4, 10), 10, "contiguous"), ((2, 5, 2, 3), 5, "channels_last"),
    ((2, 5, 2, 3), 5, "contiguous")], ids=["flat", "NC", "NHWC", "NCHW"])
@pytest.mark.parametrize("key", list(NONFINITE_MODULES))
def test_nonfinite_inputs_same_values_and_gradients_on_both_paths(key, dtype, shape, channels,
                                                                  layout):
    module = NONFINITE_MODULES[key](channels)
    x = nonfinite_input(dtype, shape, layout)
    fused = _run_ones(module, x, "fused")
    ref = _run_ones(module, x, "reference")
    if key == "recipe_elu":
        # G decides grad_x at NaN, and ATen's own ELU backward is not consistent there
        # (NaN in its vector body, 1 in its scalar tail and in bfloat16); the inline
        # kernel gives NaN: those elements are left out, everything else must match
        keep = ~x.isnan()
        fused = (fused[0], torch.where(keep, fused[1], 0), fused[2])
        ref = (ref[0], torch.where(keep, ref[1], 0), ref[2])
    assert_same_nonfinite(fused, ref, dtype)


def test_nonfinite_rule_values():
    # the rule itself, on the reference path: NaN takes the negative slope, and a branch
    # not taken adds nothing (no 0 * inf = NaN in the other slope's gradient)
    module = learnact.DualLine()
    for value, gx, d_pos_nan, d_neg_nan in [(float("nan"), 0.01, False, True),
                                            (float("inf"), 1.0, False, False),
                                            (float("-inf"), 0.01, False, False)]:
        _, grad_x, grads = _run_ones(module, torch.tensor([value, 2.0, -3.0]), "reference")
        assert grad_x[0].item() == pytest.approx(gx)
        assert grads["pos_slope"].isnan().item() == d_pos_nan
        assert grads["neg_slope"].isnan().item() == d_neg_nan
    _, _, grads = _run_ones(module, torch.tensor([float("inf"), -3.0]), "reference")
    assert grads["pos_slope"].item() == float("inf") and grads["neg_slope"].item() == -3.0
    _, grad_x, grads = _run_ones(learnact.Learnable("gelu"),
                                 torch.tensor([float("inf"), -1.0]), "reference")
    assert grad_x[0].item() == 1.0  # a*g, not 0 * GELU'(inf) = NaN
    assert grads["pos_slope"].item() == float("inf")


# ---------------------------------------------------------------- the eager entry points


def test_eager_entry_runs_the_kernel_in_one_call_or_steps_aside():
    """``dual_line_eager`` runs the fused node, or returns None where dispatch must decide."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    ext = dispatch._load_cpu()
    m = learnact.DualLine(3)
    args = (m.weight, 3)
    x = torch.randn(4, 3, 5)
    assert "DualLineBackward" in ext.dual_line_eager(x, *args).grad_fn.name()
    nhwc = torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ext.dual_line_eager(nhwc, *args),
                               dispatch.run_dual_line(nhwc, *args))
    assert ext.dual_line_eager(x.double(), *args) is None  # float64: the reference path
    assert ext.dual_line_eager(torch.randn(4, 5), *args) is None  # the reference's error
    seen = []

    def record(t):
        seen.append(ext.dual_line_eager(t, *args))
        return t * 2

    torch.jit.trace(record, (x,), check_trace=False)  # (the check reruns it untraced)
    torch.func.vmap(record)(x)

    with FakeTensorMode() as fake:  # torch.export and the dynamo ONNX exporter trace fakes
        seen.append(ext.dual_line_eager(fake.from_tensor(x), *args))
    assert seen == [None] * 3


def test_parameter_gradients_are_separate_tensors():
    # the packed weight's gradient is a tensor of its own (no view), which AccumulateGrad
    # takes as it is
    for m, rows in ((learnact.DualLine(), 3), (learnact.DPReLU(4), 2)):
        x = torch.randn(8, m.num_parameters, requires_grad=True)
        m(x).sum().backward()
        g = m.weight.grad
        assert g._base is None and g.shape == (rows * m.num_parameters,)
        assert g.untyped_storage().data_ptr() != x.grad.untyped_storage().data_ptr()
