"""swap_activations, activation_parameters and param_groups on real model shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import learnact


class BasicBlock(nn.Module):
    """A torchvision/timm-style residual block with two separate ReLU modules."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.act2 = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(out)) + x)


class TinyResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.layer1 = nn.Sequential(BasicBlock(8), BasicBlock(8))
        self.layer2 = nn.ModuleList([BasicBlock(8)])
        self.head = nn.ModuleDict({"pool": nn.AdaptiveAvgPool2d(1), "act": nn.GELU()})
        self.fc = nn.Linear(8, 10)

    def forward(self, x):
        x = self.layer1(self.stem(x))
        for block in self.layer2:
            x = block(x)
        x = self.head["act"](self.head["pool"](x)).flatten(1)
        return self.fc(x)


def test_swap_nested_resnet_by_name():
    model = TinyResNet()
    n = learnact.swap_activations(model, "dual_line")
    assert n == 7  # stem + 2 per block x 3 blocks
    acts = [m for m in model.modules() if isinstance(m, learnact.DualLine)]
    assert len(acts) == 7
    assert len({a.weight.data_ptr() for a in acts}) == 7  # each site has its own parameters
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert isinstance(model.head["act"], nn.GELU)  # not matched
    out = model(torch.randn(2, 3, 8, 8))
    out.sum().backward()
    assert all(a.weight.grad is not None for a in acts)


def test_swap_with_factory_module_and_match():
    model = TinyResNet()
    n = learnact.swap_activations(model, lambda: learnact.Learnable("gelu"), match=nn.GELU)
    assert n == 1 and isinstance(model.head["act"], learnact.Learnable)
    template = learnact.DPReLU(8)
    n = learnact.swap_activations(model, template, match=(nn.ReLU,))
    assert n == 7
    copies = [m for m in model.modules() if isinstance(m, learnact.DPReLU)]
    assert template not in copies and len({c.weight.data_ptr() for c in copies}) == 7


def test_swap_splits_a_module_shared_by_two_attributes():
    shared = nn.ReLU()
    model = nn.Sequential(nn.Linear(3, 3), shared, nn.Linear(3, 3), shared)
    assert learnact.swap_activations(model, "dp_relu") == 2
    assert model[1] is not model[3]


def test_swap_errors_and_warning():
    model = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
    with pytest.warns(UserWarning, match="no ReLU module found"):
        assert learnact.swap_activations(model, "dual_line") == 0
    with pytest.raises(ValueError, match="unknown activation"):
        learnact.swap_activations(model, "dual_lin")
    with pytest.raises(TypeError, match="`to` must be"):
        learnact.swap_activations(model, 3)
    with pytest.raises(TypeError, match="match must be"):
        learnact.swap_activations(model, "relu", match="ReLU")
    with pytest.raises(TypeError, match="model must be"):
        learnact.swap_activations("model", "relu")
    with pytest.raises(TypeError, match="returned int"):
        learnact.swap_activations(model, lambda: 1, match=nn.Tanh)


def test_activation_parameters_paths_and_order():
    model = nn.Sequential(
        nn.Linear(4, 4), learnact.DualLine(), nn.Linear(4, 4),
        learnact.Learnable(learnact.create_activation("prelu")), nn.ReLU(),
    )
    got = [(path, name, tuple(p.shape)) for path, name, p in learnact.activation_parameters(model)]
    assert got == [  # the live parameters: Dual Line has one, packed
        ("1", "weight", (3,)),
        ("3", "pos_slope", (1,)), ("3", "mean_shift", (1,)), ("3", "base.weight", (1,)),
    ]
    got = [(path, name, p.tolist()) for path, name, p in learnact.activation_values(model)]
    assert got == [  # by meaning: the packed weight's rows under their names
        ("1", "pos_slope", [1.0]), ("1", "neg_slope", [pytest.approx(0.01)]),
        ("1", "mean_shift", [pytest.approx(-0.22)]),
        ("3", "pos_slope", [1.0]), ("3", "mean_shift", [pytest.approx(-0.22)]),
        ("3", "base.weight", [pytest.approx(0.25)]),
    ]
    # the values are live views: writing one changes the parameter
    with torch.no_grad():
        next(v for p, n, v in learnact.activation_values(model) if n == "neg_slope").fill_(0.5)
    assert model[1].weight.tolist() == pytest.approx([1.0, 0.5, -0.22])


def test_activation_parameters_of_an_activation_itself_list_each_value_once():
    # the module given is the activation: its base's parameter is nested, not a second site
    m = learnact.Learnable("prelu", num_parameters=2, mean_shift=False)
    assert [n for _, n, _ in learnact.activation_parameters(m)] == ["pos_slope", "base.weight"]
    assert [(p, n) for p, n, _ in learnact.activation_values(m)] == [
        ("", "pos_slope"), ("", "base.weight")]
    assert [n for _, n, _ in learnact.activation_values(learnact.DPReLU())] == [
        "pos_slope", "neg_slope"]


def test_param_groups_keep_activations_out_of_decay():
    model = TinyResNet()
    learnact.swap_activations(model, "dual_line")
    groups = learnact.param_groups(model, weight_decay=0.1)
    by_name = {g["name"]: g for g in groups}
    assert by_name["activation"]["weight_decay"] == 0.0
    assert by_name["default"]["weight_decay"] == 0.1
    n_act = sum(1 for _ in learnact.activation_parameters(model))
    assert len(by_name["activation"]["params"]) == n_act == 7  # one packed weight per site
    total = sum(len(g["params"]) for g in groups)
    assert total == len(list(model.parameters()))
    # an optimizer takes them, and decay leaves activation params alone
    opt = torch.optim.AdamW(groups, lr=0.0)
    before = [p.clone() for p in by_name["activation"]["params"]]
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for b, p in zip(before, by_name["activation"]["params"], strict=True):
        torch.testing.assert_close(b, p)


def test_param_groups_custom_decay_and_errors():
    model = nn.Sequential(nn.Linear(2, 2), learnact.DPReLU())
    groups = learnact.param_groups(model, 0.2, activation_weight_decay=0.01)
    assert [g["weight_decay"] for g in groups] == [0.2, 0.01]
    assert [g["name"] for g in learnact.param_groups(nn.Linear(2, 2), 0.1)] == ["default"]
    with pytest.raises(ValueError, match="weight_decay must be a non-negative"):
        learnact.param_groups(model, -1)
    with pytest.raises(ValueError, match="activation_weight_decay"):
        learnact.param_groups(model, 0.1, activation_weight_decay="x")
