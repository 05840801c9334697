"""gradcheck and gradgradcheck in float64, with respect to the input and every parameter."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck, gradgradcheck
from torch.func import functional_call

import learnact
from zoo_cases import PARAM_VARIANT_IDS, PARAM_VARIANTS, make, perturb_

# per-tensor: one value per parameter; per-channel: C=4 values on dim 1
LAYOUTS = {"per_tensor": (1, (3, 5)), "per_channel": (4, (2, 4, 3))}


def _as_function(module):
    names = [n for n, _ in module.named_parameters()]

    def f(x, *params):
        return functional_call(module, dict(zip(names, params, strict=True)), (x,))

    return f, [p.detach().clone().requires_grad_() for _, p in module.named_parameters()]


def _setup(name, learnable, layout):
    num, shape = LAYOUTS[layout]
    module = make(name, learnable, num_parameters=num).double()
    # off the init: soft_exponential's alpha=0 and APL's a=0 are special points
    perturb_(module, seed=11)
    x = (torch.randn(shape, dtype=torch.float64) * 1.5).requires_grad_()
    f, params = _as_function(module)
    assert params, "expected learnable parameters"
    if num > 1:  # every value by meaning (Dual Line's packed weight row by row)
        assert all(v.shape[-1] == num for _, _, v in learnact.activation_values(module))
    return f, (x, *params)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize(("name", "learnable"), PARAM_VARIANTS, ids=PARAM_VARIANT_IDS)
def test_gradcheck(name, learnable, layout):
    f, inputs = _setup(name, learnable, layout)
    assert gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize(("name", "learnable"), PARAM_VARIANTS, ids=PARAM_VARIANT_IDS)
def test_gradgradcheck(name, learnable, layout):
    f, inputs = _setup(name, learnable, layout)
    assert gradgradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-4)


def test_soft_exponential_alpha_learns_from_zero():
    # d f / d alpha at alpha = 0 is x^2/2 + 1; a plain where() would give 0
    m = make("soft_exponential", False).double()
    x = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)
    m(x).sum().backward()
    expected = (x * x / 2 + 1).sum()
    torch.testing.assert_close(m.alpha.grad, expected.reshape(1))
    f, (xx, alpha) = _as_function(m)[0], (x.requires_grad_(), m.alpha.detach().clone())
    assert gradcheck(f, (xx, alpha.requires_grad_()), eps=1e-6, atol=1e-5, rtol=1e-4)
