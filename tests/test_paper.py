"""DP ReLU, Dual Line and the general recipe: the paper's contract in detail."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch
from torch import nn

import learnact
from kernel_cases import row_grad
from learnact.activations.torch_compat import PReLU


def test_defaults_and_parameter_names():
    dp, dl = learnact.DPReLU(), learnact.DualLine()
    # one packed parameter each; its rows are named by meaning
    assert dict(dp.named_parameters()).keys() == {"weight"}
    assert dict(dl.named_parameters()).keys() == {"weight"}
    assert [n for n, _ in dp.named_values()] == ["pos_slope", "neg_slope"]
    assert [n for n, _ in dl.named_values()] == ["pos_slope", "neg_slope", "mean_shift"]
    assert dl.weight.tolist() == pytest.approx([1.0, 0.01, -0.22])
    assert dl.pos_slope.item() == 1.0
    assert dl.neg_slope.item() == pytest.approx(0.01)
    assert dl.mean_shift.item() == pytest.approx(-0.22)
    assert dl.pos_slope.shape == (1,)


def test_extra_repr_shows_every_argument():
    r = repr(learnact.DualLine(3, pos_slope_init=2.0, neg_slope_init=0.1, mean_shift_init=0.5))
    assert r == ("DualLine(num_parameters=3, pos_slope_init=2.0, neg_slope_init=0.1, "
                 "mean_shift_init=0.5)")
    assert repr(learnact.DPReLU()) == (
        "DPReLU(num_parameters=1, pos_slope_init=1.0, neg_slope_init=0.01)")


def test_reset_parameters_restores_inits():
    m = learnact.DualLine(4, mean_shift_init=0.3)
    with torch.no_grad():
        for p in m.parameters():
            p.mul_(7).add_(1)
    m.reset_parameters()
    torch.testing.assert_close(m.mean_shift, torch.full((4,), 0.3))
    torch.testing.assert_close(m.pos_slope, torch.ones(4))


def test_device_and_dtype_kwargs():
    m = learnact.DualLine(2, device="cpu", dtype=torch.float64)
    assert all(p.dtype == torch.float64 and p.device.type == "cpu" for p in m.parameters())
    # a float64 module still returns the input's dtype
    assert m(torch.randn(3, 2)).dtype == torch.float32


def test_per_channel_broadcasts_on_dim_1():
    m = learnact.DualLine(3)
    with torch.no_grad():
        m.pos_slope.copy_(torch.tensor([1.0, 2.0, 3.0]))
        m.neg_slope.copy_(torch.tensor([0.1, 0.2, 0.3]))
        m.mean_shift.copy_(torch.tensor([0.0, -1.0, 1.0]))
    x = torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1).expand(2, 3, 2, 2)
    y = m(x)
    want_pos = torch.tensor([1.0, 1.0, 4.0])  # slope * 1 + shift
    want_neg = torch.tensor([-0.1, -1.2, 0.7])  # slope * -1 + shift
    torch.testing.assert_close(y[0, :, 0, 0], want_pos)
    torch.testing.assert_close(y[1, :, 1, 1], want_neg)
    # 1-D input: the channel is dim 0, as for nn.PReLU
    torch.testing.assert_close(m(torch.ones(3)), torch.tensor([1.0, 1.0, 4.0]), check_dtype=False)


def test_per_channel_mismatch_is_a_clear_error():
    m = learnact.DPReLU(3)
    with pytest.raises(ValueError, match=r"num_parameters=3 but the input has 4 channels"):
        m(torch.randn(2, 4))
    with pytest.raises(ValueError, match="0-d"):
        m(torch.tensor(1.0))


@pytest.mark.parametrize("bad", [0, -2])
def test_bad_num_parameters(bad):
    with pytest.raises(ValueError, match="num_parameters must be >= 1"):
        learnact.DualLine(bad)


@pytest.mark.parametrize("bad", [1.5, "3", True])
def test_num_parameters_type(bad):
    with pytest.raises(TypeError, match="num_parameters must be an int"):
        learnact.DPReLU(bad)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_init_rejected(bad):
    with pytest.raises(ValueError, match="pos_slope_init must be finite"):
        learnact.DPReLU(pos_slope_init=bad)


def test_init_type_rejected():
    with pytest.raises(TypeError, match="mean_shift_init must be a real number"):
        learnact.DualLine(mean_shift_init="a")


def _grads(module, x):
    x = x.clone().requires_grad_()
    y = module(x)
    y.backward(torch.linspace(-1, 1, y.numel()).reshape(y.shape))
    return y.detach(), x.grad


@pytest.mark.parametrize("num", [1, 3])
def test_recipe_over_prelu_with_shift_is_dual_line(num):
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5)
    x = x + 0.01 * torch.sign(x)  # keep away from the x = 0 tie between > and >=
    dl = learnact.DualLine(num)
    rec = learnact.Learnable(PReLU(num, init=0.01), num_parameters=num)
    y1, gx1 = _grads(dl, x)
    y2, gx2 = _grads(rec, x)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(gx1, gx2)
    torch.testing.assert_close(row_grad(dl, "pos_slope"), rec.pos_slope.grad)
    torch.testing.assert_close(row_grad(dl, "neg_slope"), rec.base.weight.grad)
    torch.testing.assert_close(row_grad(dl, "mean_shift"), rec.mean_shift.grad)


def test_recipe_over_prelu_without_shift_is_dp_relu():
    x = torch.randn(64)
    x = x + 0.01 * torch.sign(x)
    dp = learnact.DPReLU()
    rec = learnact.create_activation("prelu", learnable=True, mean_shift=False, init=0.01)
    assert rec.mean_shift is None
    y1, gx1 = _grads(dp, x)
    y2, gx2 = _grads(rec, x)
    torch.testing.assert_close(y1, y2)
    torch.testing.assert_close(gx1, gx2)
    torch.testing.assert_close(row_grad(dp, "pos_slope"), rec.pos_slope.grad)
    torch.testing.assert_close(row_grad(dp, "neg_slope"), rec.base.weight.grad)


def test_recipe_over_leaky_relu_matches_dp_relu_values():
    x = torch.randn(50)
    rec = learnact.Learnable("leaky_relu", mean_shift=False, pos_slope_init=1.7)
    dp = learnact.DPReLU(pos_slope_init=1.7)
    torch.testing.assert_close(rec(x), dp(x))


def test_recipe_accepts_module_or_name_and_rejects_others():
    assert isinstance(learnact.Learnable(nn.GELU()).base, nn.GELU)
    assert isinstance(learnact.Learnable("swish").base, nn.SiLU)
    with pytest.raises(TypeError, match=r"nn\.Module or an activation name"):
        learnact.Learnable(3.0)
    with pytest.raises(ValueError, match="unknown activation 'gelux'"):
        learnact.Learnable("gelux")
    with pytest.raises(ValueError, match="in place"):
        learnact.Learnable(nn.ReLU(inplace=True))
    with pytest.raises(TypeError, match="mean_shift must be a bool"):
        learnact.Learnable("relu", mean_shift=0.5)


def test_recipe_reset_resets_base():
    rec = learnact.Learnable(PReLU(init=0.01))
    with torch.no_grad():
        rec.base.weight.fill_(0.9)
        rec.pos_slope.fill_(3.0)
    rec.reset_parameters()
    assert rec.base.weight.item() == pytest.approx(0.01)
    assert rec.pos_slope.item() == 1.0


def test_recipe_repr():
    r = repr(learnact.Learnable("relu", mean_shift_init=0.5))
    assert "mean_shift=True, num_parameters=1, pos_slope_init=1.0, mean_shift_init=0.5" in r
    assert "(base): ReLU()" in r


def test_inductor_compile_dual_line():
    # one real inductor compile (C++ codegen) for the paper's function
    torch._dynamo.reset()
    m = learnact.DualLine(3)
    compiled = torch.compile(m, fullgraph=True)
    x = torch.randn(4, 3, 8, requires_grad=True)
    y = compiled(x)
    torch.testing.assert_close(y, m(x))
    y.sum().backward()
    torch.testing.assert_close(row_grad(m, "mean_shift"), torch.full((3,), 32.0))


@pytest.mark.parametrize("name", ["dp_relu", "dual_line"])
def test_dynamo_onnx_export(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    m = learnact.create_activation(name, num_parameters=3)
    x = torch.randn(2, 3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(m, (x,), dynamo=True, verbose=False)
    path = tmp_path / "m.onnx"
    program.save(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    torch.testing.assert_close(torch.from_numpy(out), m(x).detach(), atol=1e-6, rtol=1e-5)


def test_forward_has_no_item_calls_or_value_branches():
    # a graph break (from .item() or a Python branch on a value) fails fullgraph capture
    torch._dynamo.reset()
    for cls in (learnact.DPReLU, learnact.DualLine):
        compiled = torch.compile(cls(), backend="eager", fullgraph=True)
        compiled(torch.randn(5))


@pytest.mark.parametrize("num", [1, 4])
@pytest.mark.parametrize(("cls", "names"), [
    (learnact.DPReLU, ("pos_slope", "neg_slope")),
    (learnact.DualLine, ("pos_slope", "neg_slope", "mean_shift"))], ids=["dp_relu", "dual_line"])
def test_packed_values_and_state_dicts_with_one_entry_per_name(cls, names, num):
    m = cls(num)
    assert m.weight.shape == (len(names) * num,)
    # the named attributes are live views of the packed weight, row by row
    with torch.no_grad():
        for k, name in enumerate(names):
            getattr(m, name).copy_(torch.arange(num) + 10.0 * k)
    want = torch.cat([torch.arange(num) + 10.0 * k for k in range(len(names))])
    assert torch.equal(m.weight.detach(), want)
    # assigning to a name copies into the packed weight, which stays the same object
    weight = m.weight
    setattr(m, names[0], 5.0)
    setattr(m, names[-1], nn.Parameter(torch.arange(num) * 0.5))
    assert m.weight is weight and [p is weight for p in m.parameters()] == [True]
    assert getattr(m, names[0]).tolist() == [5.0] * num
    assert getattr(m, names[-1]).tolist() == (torch.arange(num) * 0.5).tolist()
    with pytest.raises(ValueError, match=f"{names[0]} takes one value or {num}"):
        setattr(m, names[0], torch.ones(num + 1))
    with pytest.raises(TypeError, match=f"{names[0]} takes a number"):
        setattr(m, names[0], None)
    # learnact 0.2's state dict: one (C,) entry per name, here inside a model
    legacy = {f"1.{n}": torch.full((num,), 2.0 + k) for k, n in enumerate(names)}
    model = nn.Sequential(nn.Linear(num, num), cls(num))
    legacy.update({"0.weight": torch.eye(num), "0.bias": torch.zeros(num)})
    model.load_state_dict(legacy)
    for k, name in enumerate(names):
        assert torch.equal(getattr(model[1], name).detach(), torch.full((num,), 2.0 + k))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight"]
    # today's round trip, and the errors: a wrong size, a name missing
    fresh = cls(num)
    fresh.load_state_dict(m.state_dict())
    assert torch.equal(fresh.weight, m.weight)
    with pytest.raises(RuntimeError, match=rf"each part must have shape \({num},\)"):
        cls(num).load_state_dict({n: torch.ones(num + 1) for n in names})
    with pytest.raises(RuntimeError, match=r"each part must have shape"):  # unequal parts
        cls(num).load_state_dict({n: torch.ones(num + k) for k, n in enumerate(names)})
    # a name missing: an error naming it, or with strict=False the others load
    with pytest.raises(RuntimeError, match=rf"Missing key\(s\).*\"{names[0]}\""):
        cls(num).load_state_dict({n: torch.ones(num) for n in names[1:]})
    part = cls(num)
    result = part.load_state_dict({n: torch.full((num,), 7.0) for n in names[1:]}, strict=False)
    assert result.missing_keys == [names[0]] and result.unexpected_keys == []
    assert getattr(part, names[0]).tolist() == [1.0] * num  # kept its init
    assert all(getattr(part, n).tolist() == [7.0] * num for n in names[1:])


def test_packed_rows_are_one_gradient_in_training():
    # one parameter per site, so one optimizer entry; each row learns from its own side
    m = learnact.DualLine(2)
    x = torch.tensor([[1.0, -2.0], [3.0, 4.0]], requires_grad=True)
    m(x).sum().backward()
    # pos_slope: sum of x >= 0 per channel; neg_slope: sum of x < 0; mean_shift: count
    assert m.weight.grad.tolist() == [4.0, 4.0, 0.0, -2.0, 2.0, 2.0]
    assert [p is m.weight for p in m.parameters()] == [True]


def test_a_module_pickled_with_one_parameter_per_name_still_works():
    # learnact 0.2 pickled DualLine with pos_slope, neg_slope and mean_shift parameters
    m = learnact.DualLine(2)
    del m._parameters["weight"]
    for k, name in enumerate(("pos_slope", "neg_slope", "mean_shift")):
        m._parameters[name] = nn.Parameter(torch.full((2,), 1.0 + k))
    back = pickle.loads(pickle.dumps(m))
    assert list(dict(back.named_parameters())) == ["weight"]
    assert back.weight.tolist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    x = torch.tensor([[1.0, -1.0]])
    assert back(x).tolist() == [[1.0 + 3.0, -2.0 + 3.0]]


def test_dual_line_dispatch_refuses_a_wrong_row_count():
    from learnact.kernels import dispatch

    for rows in (0, 1, 4):
        with pytest.raises(ValueError, match=r"rows must be 2 \(DP ReLU\) or 3 \(Dual Line\)"):
            dispatch.run_dual_line(torch.randn(3), torch.ones(6), rows)
