"""Behaviour of the 2016-2019 additions beyond their formulas: ProbAct's noise, SLAF's shape."""

from __future__ import annotations

import pytest
import torch

import learnact

# ---------------------------------------------------------------- stochastic and polynomial


def test_probact_adds_unit_gaussian_noise_scaled_by_sigma_in_training_only():
    m = learnact.create_activation("probact", sigma=0.5).train()
    x = torch.full((200_000,), -1.0)  # relu(x) = 0: the output is the noise itself
    torch.manual_seed(3)
    y = m(x)
    torch.manual_seed(3)
    assert torch.equal(m(x), y)  # a seeded run repeats
    assert abs(y.std().item() - 0.5) < 0.01 and abs(y.mean().item()) < 0.01
    m.eval()
    assert torch.equal(m(x), torch.zeros_like(x))
    assert torch.equal(m(torch.tensor([2.0, -3.0])), torch.tensor([2.0, 0.0]))


def test_probact_learnable_sigma_gets_the_noise_as_its_gradient():
    m = learnact.create_activation("probact_learnable", sigma_init=0.3).train()
    x = torch.full((5000,), -2.0)
    torch.manual_seed(11)
    m(x).sum().backward()
    torch.manual_seed(11)
    eps = torch.randn(5000)
    torch.testing.assert_close(m.sigma.grad, eps.sum().reshape(1))
    m.zero_grad()
    m.eval()(x).sum().backward()
    assert torch.equal(m.sigma.grad, torch.zeros(1))  # zero, not missing, in eval


@pytest.mark.parametrize(("name", "kwargs", "match"), [
    ("slaf", {"degree": 0}, "degree must be an integer >= 1"),
    ("slaf", {"degree": 2.5}, "degree must be an integer >= 1"),
    ("slaf", {"degree": 2, "coeffs_init": (1.0, 2.0)}, "coeffs_init needs 3 values"),
    ("probact", {"sigma": -0.1}, "sigma must be >= 0"),
    ("penalized_tanh", {"a": float("nan")}, "a must be finite"),
    ("mpelu", {"alpha_init": float("inf")}, "alpha_init must be finite"),
])
def test_new_zoo_entries_refuse_bad_arguments(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        learnact.create_activation(name, **kwargs)


def test_slaf_per_channel_coefficients_have_a_row_per_power():
    m = learnact.create_activation("slaf", num_parameters=3, degree=3)
    assert m.coeffs.shape == (4, 3)
    x = torch.randn(2, 3, 4)
    with torch.no_grad():
        m.coeffs.copy_(torch.arange(12.0).reshape(4, 3) / 10)
    c = m.coeffs.detach()
    want = sum(c[i].view(1, 3, 1) * x**i for i in range(4))
    torch.testing.assert_close(m(x), want)
