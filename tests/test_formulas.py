"""Closed-form values, written here independently of learnact with the math module.

Each entry is (constructor kwargs, scalar formula). Several entries per
activation check non-default constants and parameter values too, which is
where sign and branch bugs hide (wrong defaults, docstrings that disagree
with the code).
"""

from __future__ import annotations

import math

import pytest
import torch

import learnact
from zoo_cases import NAMES, make

POINTS = [-3.7, -2.5, -1.2, -0.6, -0.3, 0.0, 0.2, 0.45, 0.7, 1.4, 2.6, 4.5, 7.0]


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def sqnl(x):
    if x > 2:
        return 1.0
    if x >= 0:
        return x - x * x / 4
    if x >= -2:
        return x + x * x / 4
    return -1.0


def soft_exp(a):
    def f(x):
        if a > 0:
            return (math.exp(a * x) - 1) / a + a
        if a < 0:
            return -math.log(1 - a * (x + a)) / a
        return x

    return f


SELU_L, SELU_A = 1.0507009873554805, 1.6732632423543772

FORMULAS = {
    "relu": [({}, lambda x: max(0.0, x))],
    "leaky_relu": [({}, lambda x: x if x >= 0 else 0.01 * x),
                   ({"negative_slope": 0.2}, lambda x: x if x >= 0 else 0.2 * x)],
    "prelu": [({}, lambda x: x if x >= 0 else 0.25 * x),
              ({"init": 0.1}, lambda x: x if x >= 0 else 0.1 * x)],
    "rrelu": [({}, lambda x: x if x >= 0 else x * (1 / 8 + 1 / 3) / 2)],  # eval mode
    "relu6": [({}, lambda x: min(max(0.0, x), 6.0))],
    "elu": [({}, lambda x: x if x > 0 else math.exp(x) - 1)],
    "selu": [({}, lambda x: SELU_L * (x if x > 0 else SELU_A * (math.exp(x) - 1)))],
    "celu": [({}, lambda x: max(0.0, x) + min(0.0, math.exp(x) - 1))],
    "gelu": [({}, lambda x: 0.5 * x * (1 + math.erf(x / math.sqrt(2))))],
    "gelu_tanh": [({}, lambda x: 0.5 * x * (1 + math.tanh(
        math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))))],
    "silu": [({}, lambda x: x * sig(x))],
    "mish": [({}, lambda x: x * math.tanh(math.log1p(math.exp(x))))],
    "softplus": [({}, lambda x: math.log1p(math.exp(x)))],
    "softsign": [({}, lambda x: x / (1 + abs(x)))],
    "tanh": [({}, math.tanh)],
    "sigmoid": [({}, sig)],
    "hardtanh": [({}, lambda x: min(max(x, -1.0), 1.0))],
    "hardsigmoid": [({}, lambda x: min(max(x / 6 + 0.5, 0.0), 1.0))],
    "hardswish": [({}, lambda x: x * min(max(x + 3, 0.0), 6.0) / 6)],
    "logsigmoid": [({}, lambda x: math.log(sig(x)))],
    "tanhshrink": [({}, lambda x: x - math.tanh(x))],
    "softshrink": [({}, lambda x: x - 0.5 if x > 0.5 else (x + 0.5 if x < -0.5 else 0.0))],
    "hardshrink": [({}, lambda x: x if abs(x) > 0.5 else 0.0)],
    "aria2": [({}, lambda x: x * (1 + math.exp(-2 * x)) ** -1.5),
              ({"alpha": 1.0, "beta": 0.5}, lambda x: x / (1 + math.exp(-0.5 * x)))],
    "bent_identity": [({}, lambda x: (math.sqrt(x * x + 1) - 1) / 2 + x)],
    "elish": [({}, lambda x: x * sig(x) if x >= 0 else (math.exp(x) - 1) * sig(x))],
    "hard_elish": [({}, lambda x: (x if x >= 0 else math.exp(x) - 1)
                    * max(0.0, min(1.0, (x + 1) / 2)))],
    "eswish": [({}, lambda x: 1.375 * x * sig(x)),
               ({"beta": 1.75}, lambda x: 1.75 * x * sig(x))],
    "isru": [({}, lambda x: x / math.sqrt(1 + x * x)),
             ({"alpha": 3.0}, lambda x: x / math.sqrt(1 + 3 * x * x))],
    "isrlu": [({}, lambda x: x if x >= 0 else x / math.sqrt(1 + x * x))],
    "lecun_tanh": [({}, lambda x: 1.7159 * math.tanh(2 * x / 3))],
    "lisht": [({}, lambda x: x * math.tanh(x))],
    "sine_relu": [({}, lambda x: x if x > 0 else 0.0025 * (math.sin(x) - math.cos(x))),
                  ({"epsilon": 0.5}, lambda x: x if x > 0 else 0.5 * (math.sin(x) - math.cos(x)))],
    "soft_clipping": [({}, lambda x: 2 * math.log((1 + math.exp(0.5 * x))
                                                  / (1 + math.exp(0.5 * (x - 1)))))],
    "sqnl": [({}, sqnl)],
    "weighted_tanh": [({}, lambda x: math.tanh(0.5 * x)),
                      ({"weight": 2.0}, lambda x: math.tanh(2 * x))],
    "ftswish_plus": [({}, lambda x: (x * sig(x) if x > 0 else 0.0) - 0.25 + 0.1)],
    # from lessw2020/TRelu's code: relu(x) + threshold - mean_shift
    "trelu": [({}, lambda x: max(0.0, x) + (-0.25) - (-0.03)),
              ({"threshold": -0.5, "mean_shift": 0.1}, lambda x: max(0.0, x) - 0.5 - 0.1)],
    # Liu et al. 2019, eq. (1): ln(beta * max(0, x) + 1)
    "nlrelu": [({}, lambda x: math.log(max(0.0, x) + 1)),
               ({"beta": 2.0}, lambda x: math.log(2 * max(0.0, x) + 1))],
    # Xu et al. 2016 / Eger et al. 2018: tanh(x) for x > 0, a tanh(x) otherwise
    "penalized_tanh": [({}, lambda x: math.tanh(x) if x > 0 else 0.25 * math.tanh(x)),
                       ({"a": 0.5}, lambda x: math.tanh(x) if x > 0 else 0.5 * math.tanh(x))],
    # the authors' Lua code: PReLU_alpha(ELU(PReLU_beta(x)))
    "mpelu": [({}, lambda x: x if x > 0 else math.exp(x) - 1),
              ({"alpha_init": 0.25, "beta_init": 2.0},
               lambda x: x if x > 0 else 0.25 * (math.exp(2 * x) - 1))],
    # Goyal et al. 2019: sum_i a_i x^i
    "slaf": [({}, lambda x: 1 + x + x * x),
             ({"degree": 3, "coeffs_init": (0.5, -1.0, 0.25, 0.1)},
              lambda x: 0.5 - x + 0.25 * x**2 + 0.1 * x**3)],
    # the authors' code: relu(x) + sigma * eps; in eval mode (as here) the mean, relu
    "probact": [({}, lambda x: max(0.0, x)), ({"sigma": 0.3}, lambda x: max(0.0, x))],
    "probact_learnable": [({}, lambda x: max(0.0, x)),
                          ({"sigma_init": 0.2}, lambda x: max(0.0, x))],
    "general_relu": [({}, lambda x: min((x if x >= 0 else 0.1 * x) - 0.4, 6.0)),
                     ({"maxv": 1.0, "sub": 0.0}, lambda x: min(x if x >= 0 else 0.1 * x, 1.0))],
    "soft_exponential": [({}, soft_exp(0.0)), ({"alpha_init": 0.5}, soft_exp(0.5))],
    "srelu": [({}, lambda x: x if x >= 0 else 0.01 * x),
              ({"t_left_init": -1.0, "a_left_init": 0.2, "t_right_init": 2.0, "a_right_init": 0.5},
               lambda x: 2 + 0.5 * (x - 2) if x >= 2 else (-1 + 0.2 * (x + 1) if x <= -1 else x))],
    "apl": [({}, lambda x: max(0.0, x)),
            ({"a_init": (0.3, 0.5), "b_init": (0.5, -1.0)},
             lambda x: max(0.0, x) + 0.3 * max(0.0, 0.5 - x) + 0.5 * max(0.0, -1.0 - x))],
    "flexible_relu": [({}, lambda x: max(0.0, x)),
                      ({"bias_init": -0.3}, lambda x: max(0.0, x) - 0.3)],
    "pelu": [({}, lambda x: x if x >= 0 else math.exp(x) - 1),
             ({"a_init": 2.0, "b_init": 0.5},
              lambda x: 4 * x if x >= 0 else 2 * (math.exp(2 * x) - 1))],
    "swish_beta": [({}, lambda x: x * sig(x)), ({"beta_init": 2.0}, lambda x: x * sig(2 * x))],
    "dp_relu": [({}, lambda x: x if x >= 0 else 0.01 * x),
                ({"pos_slope_init": 1.5, "neg_slope_init": -0.2},
                 lambda x: 1.5 * x if x >= 0 else -0.2 * x)],
    "dual_line": [({}, lambda x: (x if x >= 0 else 0.01 * x) - 0.22),
                  ({"pos_slope_init": 0.8, "neg_slope_init": 0.3, "mean_shift_init": 0.1},
                   lambda x: (0.8 * x if x >= 0 else 0.3 * x) + 0.1)],
}

CASES = [(name, i) for name in NAMES for i in range(len(FORMULAS.get(name, [None])))]


def test_every_registered_activation_has_a_formula():
    assert sorted(FORMULAS) == NAMES


# Where each formula above comes from. CODE: written from the cited source's published
# code (repository and file or function named). Every other entry is written from the
# citation's formula (paper or torch.nn documentation); none is written from learnact.
CODE = {
    "trelu": "github.com/lessw2020/TRelu (TRelu.forward)",
    "ftswish_plus": "github.com/lessw2020/FTSwishPlus (FTSwishPlus.forward)",
    "general_relu": "fast.ai course v3 part 2, 06_cuda_cnn_hooks_init (GeneralRelu)",
    # keras-contrib's layer computes max(eps * (sin x - cos x), x) on the negative side,
    # which differs near 0; the formula above is the piecewise one of Rodrigues' article
    # (x for x > 0, eps * (sin x - cos x) otherwise), with keras-contrib's default eps
    "sine_relu": "W. Rodrigues' article (piecewise form); eps = 0.0025 from keras-contrib",
    "mpelu": "github.com/Coldmooon/Code-for-MPELU, naive-mpelu.lua",
    "probact": "github.com/kumar-shridhar/ProbAct-Probabilistic-Activation-Function, "
               "vgg_probact_non-trainable.py (non_trainable_sigma)",
    "probact_learnable": "same repository, models/ProbAct.py (TrainableSigma)",
}


def test_every_source_named_is_a_registered_activation():
    assert set(CODE) <= set(NAMES)


def _check(module, formula, points):
    x = torch.tensor(points, dtype=torch.float64)
    module = module.double()
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()  # re-fill the inits in float64, exactly
    with torch.no_grad():
        got = module(x)
    want = torch.tensor([formula(p) for p in points], dtype=torch.float64)
    torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize(("name", "case"), CASES, ids=[f"{n}-{i}" for n, i in CASES])
def test_closed_form(name, case):
    kwargs, formula = FORMULAS[name][case]
    points = POINTS
    if name == "soft_exponential" and kwargs.get("alpha_init", 0) < 0:
        points = [p for p in POINTS if p > -1.5]
    _check(make(name, False, **kwargs), formula, points)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mean_shift", [True, False])
def test_recipe_closed_form(name, mean_shift):
    # f(x) = pos * x for x >= 0 (the positive branch includes 0, as DP ReLU), G(x) otherwise, + m
    _, g = FORMULAS[name][0]
    pos, m = 1.3, 0.1
    module = make(name, True, mean_shift=mean_shift, pos_slope_init=pos, mean_shift_init=m)
    shift = m if mean_shift else 0.0
    _check(module, lambda x: (pos * x if x >= 0 else g(x)) + shift, POINTS)


def test_negative_alpha_soft_exponential():
    _check(make("soft_exponential", False, alpha_init=-0.5), soft_exp(-0.5),
           [p for p in POINTS if p > -1.5])


def test_soft_exponential_is_floored_outside_its_domain():
    # alpha = -0.5: defined for x > -1.5; below, the log argument is floored at 1e-6
    m = make("soft_exponential", False, alpha_init=-0.5).double()
    with torch.no_grad():
        y = m(torch.tensor([-3.0, -100.0], dtype=torch.float64))
    torch.testing.assert_close(y, torch.full((2,), 2 * math.log(1e-6), dtype=torch.float64))


def test_functional_matches_modules():
    x = torch.linspace(-3, 3, 11)
    one = torch.ones(())
    torch.testing.assert_close(learnact.functional.dual_line(x, one, 0.01 * one, -0.22 * one),
                               learnact.DualLine()(x).detach())
