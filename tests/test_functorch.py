"""``torch.func`` transforms (grad, vmap, jacrev) on every activation module, in every mode.

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
        assert "DualLineFunction" in y.grad_fn.name()


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
