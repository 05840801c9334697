"""``torch.func`` transforms (grad, vmap, jacrev) and forward-mode AD on every module and mode.

The fused autograd nodes have no batching or forward-mode rules, so dispatch
steps aside to the reference path under a functorch transform, as it does for
tracing, ONNX export and ``torch.compile``. Each result is checked against
plain autograd on the same module.
"""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call, grad, jacrev, vmap

import learnact
from learnact.kernels import kernel_mode
from zoo_cases import VARIANT_IDS, VARIANTS, make, perturb_

MODULES = {
    "dual_line": lambda: learnact.DualLine(3),
    "dp_relu": lambda: learnact.DPReLU(),
    "learnable_gelu": lambda: learnact.Learnable("gelu", num_parameters=3),
    "learnable_tanh": lambda: learnact.Learnable("tanh"),  # the select-after-G CPU path
    "learnable_prelu": lambda: learnact.Learnable("prelu"),  # G with its own parameter
}


def _input(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 3, generator=gen) * 2
    x[0, 0], x[1, 1] = 0.0, -0.0
    return x


def _autograd_grad_x(module, x):
    x = x.detach().clone().requires_grad_()
    (gx,) = torch.autograd.grad(module(x).pow(2).sum(), x)
    return gx


@pytest.fixture(params=["auto", "reference"])
def mode(request):
    with kernel_mode(request.param):
        yield request.param


@pytest.mark.parametrize("key", list(MODULES))
def test_grad_matches_autograd(key, mode):
    module = perturb_(MODULES[key]())
    x = _input()
    got = grad(lambda t: module(t).pow(2).sum())(x)
    torch.testing.assert_close(got, _autograd_grad_x(module, x), atol=1e-6, rtol=1e-5)
    assert got.abs().sum() > 0  # not a zero gradient that matches by accident


@pytest.mark.parametrize("key", list(MODULES))
def test_grad_of_parameters_matches_autograd(key, mode):
    module = perturb_(MODULES[key]())
    x = _input(1)
    params = {n: p.detach() for n, p in module.named_parameters()}
    got = grad(lambda ps: functional_call(module, ps, (x,)).pow(2).sum())(params)
    module.zero_grad(set_to_none=True)
    module(x).pow(2).sum().backward()
    for name, p in module.named_parameters():
        torch.testing.assert_close(got[name], p.grad, atol=1e-5, rtol=1e-5, msg=name)


@pytest.mark.parametrize("key", list(MODULES))
def test_vmap_matches_loop(key, mode):
    module = perturb_(MODULES[key]())
    xs = torch.stack([_input(s) for s in range(4)])  # (4, 5, 3): a batch of inputs
    got = vmap(module)(xs)
    want = torch.stack([module(x) for x in xs])
    torch.testing.assert_close(got, want.detach(), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("key", list(MODULES))
def test_jacrev_is_the_diagonal_of_the_derivative(key, mode):
    module = perturb_(MODULES[key]())
    x = _input(2)[0]  # (3,): one row, so the Jacobian is (3, 3)
    jac = jacrev(module)(x)
    want = torch.diag(torch.autograd.functional.jacobian(
        lambda t: module(t.unsqueeze(0)).squeeze(0), x).diagonal())
    torch.testing.assert_close(jac, want, atol=1e-6, rtol=1e-5)
    # elementwise: nothing off the diagonal
    assert torch.count_nonzero(jac - torch.diag(jac.diagonal())) == 0


def test_fused_mode_says_why_it_cannot_run_under_a_transform():
    module = learnact.DualLine()
    with kernel_mode("fused"), pytest.raises(RuntimeError, match=r"torch\.func"):
        grad(lambda t: module(t).sum())(torch.randn(4))


def test_transform_leaves_the_fused_path_alone_outside_it():
    module = learnact.DualLine()
    x = torch.randn(6, requires_grad=True)
    grad(lambda t: module(t).sum())(x.detach())
    y = module(x)  # back in eager mode: the fused node again, where a kernel is built
    from learnact.kernels import dispatch

    if dispatch.fused_unavailable_reason(x) is None:
        assert "DualLineBackward" in y.grad_fn.name()


# ------------------------------------------------------------- forward-mode AD


def _jvp_forward_ad(module, x, t):
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level():
        y = module(fwAD.make_dual(x, t))
        return fwAD.unpack_dual(y).tangent


@pytest.mark.parametrize("key", list(MODULES))
def test_forward_ad_matches_the_reference_path(key, mode):
    # the fused nodes have no jvp: a dual input takes the reference path (before, the
    # fused path raised "jvp is not implemented for the c++ API of custom Function")
    module = perturb_(MODULES[key]())
    x, t = _input(4), _input(5)
    got = _jvp_forward_ad(module, x, t)
    with kernel_mode("reference"):
        want = _jvp_forward_ad(module, x, t)
    assert got is not None and got.abs().sum() > 0
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["pos_slope", "neg_slope", "mean_shift"])
def test_forward_ad_tangent_on_a_parameter_only(name, mode):
    # a tangent on any one parameter (not the input) is seen too: y's tangent is
    # d y / d param * t, here x (or the part of x on that parameter's side), or 1
    import torch.autograd.forward_ad as fwAD

    module = perturb_(learnact.DualLine())
    x = _input(6)
    weight = module.weight.detach()  # rows: pos_slope, neg_slope, mean_shift
    t = torch.zeros(3)
    t[["pos_slope", "neg_slope", "mean_shift"].index(name)] = 1.0
    with fwAD.dual_level():
        dual = fwAD.make_dual(weight, t)
        tangent = fwAD.unpack_dual(functional_call(module, {"weight": dual}, (x,))).tangent
    want = {"pos_slope": torch.where(x >= 0, x, 0.0), "neg_slope": torch.where(x >= 0, 0.0, x),
            "mean_shift": torch.ones_like(x)}[name]
    torch.testing.assert_close(tangent, want)


# ------------------------------------------------------------- every registry entry


@pytest.mark.parametrize(("name", "learnable"), VARIANTS, ids=VARIANT_IDS)
def test_registry_grad_and_vmap(name, learnable):
    module = perturb_(make(name, learnable))
    x = _input(3)
    got = grad(lambda t: module(t).sum())(x)
    torch.testing.assert_close(got, _plain_grad(module, x), atol=1e-5, rtol=1e-5)
    xs = torch.stack([_input(s) for s in range(3)])
    torch.testing.assert_close(vmap(module)(xs), torch.stack([module(x) for x in xs]).detach(),
                               atol=1e-6, rtol=1e-5)


def _plain_grad(module, x):
    x = x.detach().clone().requires_grad_()
    (gx,) = torch.autograd.grad(module(x).sum(), x)
    return gx
