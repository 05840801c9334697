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


# ---------------------------------------------------------------- shape-changing: CReLU, Maxout


def test_crelu_against_its_formula_and_gradcheck():
    # Shang et al. 2016, eq. 1: CReLU(x) = [ReLU(x), ReLU(-x)], concatenated on channels
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    a = x.numpy()
    import numpy as np

    expect = np.concatenate([np.maximum(a, 0), np.maximum(-a, 0)], axis=1)
    m = learnact.create_activation("crelu")
    np.testing.assert_array_equal(m(x).numpy(), expect)
    assert learnact.create_activation("crelu", dim=-1)(x).shape == (2, 3, 4, 10)
    xg = (torch.rand(2, 3, 4, dtype=torch.float64) + 0.1) * torch.tensor([1.0, -1.0]).repeat(2)[
        :4]  # away from the kink at 0
    assert torch.autograd.gradcheck(m, (xg.requires_grad_(),))


def test_maxout_against_its_formula_and_gradcheck():
    # Goodfellow et al. 2013, eq. 1: h_i = max_{j in [1,k]} z_ij over k consecutive units
    import numpy as np

    x = torch.randn(2, 6, 3, dtype=torch.float64)
    m = learnact.create_activation("maxout", pieces=3)
    a = x.numpy()
    expect = np.stack([a[:, 3 * c:3 * c + 3].max(axis=1) for c in range(2)], axis=1)
    np.testing.assert_array_equal(m(x).numpy(), expect)
    assert m(x).shape == (2, 2, 3)
    assert torch.autograd.gradcheck(m, (x.clone().requires_grad_(),))
    with pytest.raises(ValueError, match="divisible by 3, got 4"):
        m(torch.randn(2, 4))
    with pytest.raises(ValueError, match="pieces must be a positive integer"):
        learnact.create_activation("maxout", pieces=0)


@pytest.mark.parametrize("name", ["crelu", "maxout"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_shape_changing_keep_dtype_and_compile(name, dtype):
    m = learnact.create_activation(name)
    x = torch.randn(2, 4, 3, dtype=dtype)
    assert m(x).dtype == dtype
    if dtype == torch.float32:
        torch._dynamo.reset()
        compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
        torch.testing.assert_close(compiled(x), m(x))


@pytest.mark.parametrize("name", ["crelu", "maxout"])
def test_shape_changing_export_to_onnx(name, tmp_path):
    import warnings

    ort = pytest.importorskip("onnxruntime")
    m = learnact.create_activation(name)
    x = torch.randn(2, 4, 3, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(m, (x,), str(tmp_path / "m.onnx"), dynamo=False, opset_version=18,
                          input_names=["x"], output_names=["y"])
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    torch.testing.assert_close(torch.from_numpy(sess.run(None, {"x": x.numpy()})[0]), m(x))


def test_shape_changing_are_listed_apart_and_refused_in_place():
    from learnact.errors import ConfigError
    from learnact.study.config import resolve_activations

    assert learnact.list_activations(shape_changing=True) == ["crelu", "maxout"]
    assert "crelu" not in learnact.list_activations()  # the default: drop-in ones only
    assert {"crelu", "maxout"} <= set(learnact.list_activations(shape_changing=None))
    assert "maxout" not in resolve_activations(["all"])
    with pytest.raises(ConfigError, match="crelu changes the channel count"):
        resolve_activations(["relu", "crelu"])
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU())
    with pytest.raises(ConfigError, match="maxout changes the channel count"):
        learnact.swap_activations(model, "maxout")
    with pytest.raises(ConfigError, match="CReLU changes the channel count"):
        learnact.swap_activations(model, lambda: learnact.create_activation("crelu"))
    assert isinstance(model[1], torch.nn.ReLU)  # untouched


def test_the_study_cli_refuses_a_shape_changing_activation(capsys, npz, tmp_path):
    from learnact.cli import main

    code = main(["study", "--dataset", npz, "--activations", "relu,maxout", "--lr", "0.01",
                 "--db", str(tmp_path / "r.db")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "maxout changes the channel count" in err[0]
    assert not (tmp_path / "r.db").exists()


@pytest.mark.parametrize("name", ["aria2", "eswish", "sine_relu", "soft_clipping", "srelu", "apl",
                                  "flexible_relu"])
def test_disputed_defaults_say_where_they_come_from(name):
    """Libraries disagree on these defaults: each spec says whether it follows its citation."""
    source = learnact.get_spec(name).defaults_source
    assert source and ("follows the citation" in source or "learnact's choice" in source
                       or "unchecked" in source), source
