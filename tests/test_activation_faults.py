"""Bad arguments and inputs to the activation modules (issue 20's module rows)."""

from __future__ import annotations

import pytest
import torch

import learnact
from learnact.kernels import kernel_mode
from zoo_cases import PARAM_VARIANT_IDS, PARAM_VARIANTS, make


@pytest.mark.parametrize("build", [
    lambda: learnact.DualLine(pos_slope_init=[1.0, 2.0]),
    lambda: learnact.DPReLU(neg_slope_init=(0.1, 0.2)),
    lambda: learnact.Learnable("gelu", pos_slope_init=(1.0, 2.0)),
    lambda: learnact.Learnable("gelu", mean_shift_init=[0.0]),
    lambda: learnact.create_activation("prelu", learnable=True, pos_slope_init=[1.0, 2.0]),
    lambda: learnact.create_activation("pelu", a_init=[1.0, 2.0]),
], ids=["dual_line", "dp_relu", "recipe", "recipe_shift", "factory", "pelu"])
def test_a_sequence_init_is_refused(build):
    with pytest.raises(TypeError, match=r"must be one real number.*num_parameters=C"):
        build()


def test_per_channel_values_are_set_on_the_parameter():
    m = learnact.DualLine(2)
    with torch.no_grad():
        m.pos_slope.copy_(torch.tensor([1.0, 2.0]))
    y = m(torch.ones(1, 2))
    assert y.shape == (1, 2)  # no leading dimension of 2
    torch.testing.assert_close(y, torch.tensor([[0.78, 1.78]]))


def test_row_parameters_still_take_sequences():
    apl = learnact.create_activation("apl", a_init=[0.1, 0.2], b_init=[0.0, -1.0])
    assert apl.a.shape == (2, 1)
    torch.testing.assert_close(apl.a.detach().flatten(), torch.tensor([0.1, 0.2]))
    slaf = learnact.create_activation("slaf", coeffs_init=[0.0, 1.0, 0.5])
    assert slaf.coeffs.shape == (3, 1)


@pytest.mark.parametrize("mode", ["auto", "reference", "fused"])
@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.uint8, torch.bool], ids=str)
def test_integer_input_raises_type_error(mode, dtype):
    x = torch.tensor([-100, 0, 5]).to(dtype)
    for m in (learnact.DualLine(), learnact.DPReLU(), learnact.Learnable("gelu"),
              learnact.Learnable("tanh")):
        with kernel_mode(mode), pytest.raises(TypeError, match="floating-point input"):
            m(x)


@pytest.mark.parametrize(("name", "learnable"), PARAM_VARIANTS, ids=PARAM_VARIANT_IDS)
def test_every_parametric_activation_refuses_integer_input(name, learnable):
    with pytest.raises(TypeError, match="floating-point input"):
        make(name, learnable)(torch.tensor([-3, 0, 2]))


def test_float_input_after_the_advice_works():
    y = learnact.DualLine()(torch.tensor([-100, 0, 5]).float())
    torch.testing.assert_close(y.detach(), torch.tensor([-1.22, -0.22, 4.78]))


@pytest.mark.parametrize("base", ["crelu", "maxout", "CReLU"])
def test_recipe_over_a_shape_changing_base_is_refused_by_name(base):
    with pytest.raises(ValueError, match="changes the channel count"):
        learnact.Learnable(base)
    with pytest.raises(ValueError, match="changes the channel count"):
        learnact.create_activation(base, learnable=True)


def test_recipe_over_a_shape_changing_module_is_refused():
    from learnact.activations.community import CReLU, Maxout

    for module in (CReLU(), Maxout(pieces=3)):
        with pytest.raises(ValueError, match="changes the channel count"):
            learnact.Learnable(module)
