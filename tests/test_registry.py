"""The registry: names, filtering, construction and its errors."""

from __future__ import annotations

import inspect

import pytest
import torch
from torch import nn

import learnact
from learnact.activations.registry import get_spec
from zoo_cases import NAMES

PAPER_FAMILIES = [
    "relu", "leaky_relu", "prelu", "rrelu", "relu6", "elu", "selu", "celu", "gelu", "silu",
    "mish", "softplus", "softsign", "tanh", "sigmoid", "hardtanh", "hardsigmoid", "hardswish",
    "logsigmoid", "tanhshrink", "softshrink", "hardshrink", "aria2", "bent_identity", "elish",
    "hard_elish", "eswish", "isru", "isrlu", "lecun_tanh", "lisht", "sine_relu",
    "soft_clipping", "soft_exponential", "sqnl", "srelu", "apl", "weighted_tanh",
    "ftswish_plus", "trelu", "general_relu", "flexible_relu", "pelu", "swish_beta",
    "dp_relu", "dual_line",
]


def test_at_least_45_and_covers_the_paper_families():
    assert len(NAMES) >= 45
    assert set(PAPER_FAMILIES) <= set(NAMES)


def test_list_is_sorted_and_filters():
    assert NAMES == sorted(NAMES)
    assert learnact.list_activations("*line") == ["dual_line"]
    # dp_relu matches through its alias dual_parametric_relu
    assert learnact.list_activations("dual_*") == ["dp_relu", "dual_line"]
    assert learnact.list_activations("swish") == ["silu"]  # matched by alias
    assert learnact.list_activations(["relu6", "tanh"]) == ["relu6", "tanh"]
    assert learnact.list_activations("nothing*") == []
    learnable = learnact.list_activations(learnable=True)
    fixed = learnact.list_activations(learnable=False)
    assert sorted(learnable + fixed) == NAMES
    assert {"dp_relu", "dual_line", "prelu", "pelu"} <= set(learnable)
    assert "relu" in fixed
    assert learnact.list_activations("*relu*", learnable=True) == [
        "dp_relu", "flexible_relu", "prelu", "srelu"]


def test_list_bad_arguments():
    with pytest.raises(TypeError, match="learnable must be"):
        learnact.list_activations(learnable="yes")
    with pytest.raises(TypeError, match="pattern must be"):
        learnact.list_activations([1, 2])


@pytest.mark.parametrize("name", NAMES)
def test_spec_is_complete_and_truthful(name):
    spec = get_spec(name)
    assert spec.name == name and spec.formula and spec.citation
    assert spec.family in {"torch", "community", "paper"}
    has_params = any(True for _ in learnact.create_activation(name).parameters())
    assert spec.learnable == has_params
    if spec.family != "torch" or spec.cls.__module__.startswith("learnact"):
        doc = inspect.getdoc(spec.cls)
        assert ".. math::" in doc, f"{spec.cls.__name__} docstring lacks its formula"


@pytest.mark.parametrize("name", NAMES)
def test_each_call_returns_a_new_instance(name):
    a, b = learnact.create_activation(name), learnact.create_activation(name)
    assert a is not b
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert pa is not pb
    ra = learnact.create_activation(name, learnable=True)
    rb = learnact.create_activation(name, learnable=True)
    assert ra.pos_slope is not rb.pos_slope and ra.base is not rb.base


def test_aliases_and_spelling_variants():
    assert type(learnact.create_activation("swish")) is nn.SiLU
    assert isinstance(learnact.create_activation("Dual-Line"), learnact.DualLine)
    assert get_spec("dprelu").name == "dp_relu"


def test_unknown_name_lists_closest():
    with pytest.raises(ValueError, match=r"unknown activation 'dual_lin'; closest: dual_line"):
        learnact.create_activation("dual_lin")
    with pytest.raises(ValueError, match=r"unknown activation 'zzzz'\. See"):
        learnact.create_activation("zzzz")
    with pytest.raises(TypeError, match="must be a str"):
        learnact.create_activation(3)


def test_bad_keyword_lists_accepted():
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) slope; it accepts: "
                                        r"num_parameters, pos_slope_init, neg_slope_init"):
        learnact.create_activation("dual_line", slope=2)
    with pytest.raises(TypeError, match="it accepts: none"):
        learnact.create_activation("lisht", alpha=1)
    with pytest.raises(TypeError, match="mean_shift only applies with learnable=True"):
        learnact.create_activation("relu", mean_shift=False)
    with pytest.raises(TypeError, match="learnable must be a bool"):
        learnact.create_activation("relu", learnable="yes")


def test_learnable_kwargs_routing():
    m = learnact.create_activation("prelu", learnable=True, num_parameters=4,
                                   mean_shift_init=0.5, init=0.1)
    assert m.pos_slope.shape == (4,) and m.base.weight.shape == (4,)
    assert torch.allclose(m.mean_shift, torch.full((4,), 0.5))
    assert torch.allclose(m.base.weight, torch.full((4,), 0.1))
    g = learnact.create_activation("gelu", learnable=True, num_parameters=2, dtype=torch.float64)
    assert g.pos_slope.dtype == torch.float64 and g.pos_slope.shape == (2,)
    with pytest.raises(TypeError, match="unexpected keyword"):
        learnact.create_activation("gelu", learnable=True, bogus=1)


def test_duplicate_registration_is_an_error():
    spec = get_spec("relu")
    with pytest.raises(ValueError, match="'relu' is already registered"):
        learnact.register_activation(spec)
    with pytest.raises(TypeError, match="expected an ActivationSpec"):
        learnact.register_activation("relu")


def test_spec_names_must_be_snake_case():
    with pytest.raises(ValueError, match="snake_case"):
        learnact.ActivationSpec("Bad Name", nn.ReLU, "f", "c", False, "torch")


def test_fixed_constant_validation():
    with pytest.raises(ValueError, match="alpha must be finite"):
        learnact.create_activation("isru", alpha=float("nan"))
    with pytest.raises(TypeError, match="beta must be a real number"):
        learnact.create_activation("eswish", beta="big")
    with pytest.raises(ValueError, match="alpha != 0"):
        learnact.create_activation("soft_clipping", alpha=0.0)
    with pytest.raises(ValueError, match="min_value must be > 0"):
        learnact.create_activation("pelu", min_value=0.0)
    with pytest.raises(ValueError, match="need 3 values"):
        learnact.create_activation("apl", num_hinges=3, b_init=(0.0, 1.0))


def test_is_activation():
    assert learnact.is_activation(nn.ReLU())
    assert learnact.is_activation(learnact.Learnable("relu"))
    assert not learnact.is_activation(nn.Linear(2, 2))
