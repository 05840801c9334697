"""The ecosystem's calling conventions: timm's ``act_layer(inplace=True)`` and ``python -m``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

import learnact
from zoo_cases import perturb_

ALL = learnact.list_activations(shape_changing=None)  # CReLU and Maxout too
# learnact's own classes; its thin subclasses of torch.nn keep torch's in-place RReLU
OURS = [n for n in ALL if learnact.get_spec(n).cls.__module__.startswith("learnact.")
        and n != "rrelu"]


def _input():
    return torch.randn(2, 4, 3, 3) * 2


@pytest.mark.parametrize("name", OURS)
def test_every_learnact_class_accepts_and_ignores_inplace(name):
    cls = learnact.get_spec(name).cls
    torch.manual_seed(0)
    plain = perturb_(cls().eval())
    torch.manual_seed(0)
    act = cls(inplace=True).eval()  # timm's act_layer(inplace=True)
    act.load_state_dict(plain.state_dict())
    x = _input()
    before = x.clone()
    torch.testing.assert_close(act(x), plain(before.clone()), rtol=0, atol=0)
    assert torch.equal(x, before), "the input was modified"
    assert repr(act) == repr(plain)  # nothing about it is stored


@pytest.mark.parametrize("name", ALL)
def test_every_registry_entry_builds_as_an_act_layer(name):
    act_layer = learnact.get_spec(name).build
    act = act_layer(inplace=True).eval()
    ref = act_layer().eval()
    ref.load_state_dict(act.state_dict())
    x = _input()
    before = x.clone()
    torch.testing.assert_close(act(x), ref(before.clone()), rtol=0, atol=0)
    # a module that says it works in place (nn.ReLU) may; every other one leaves x alone
    if not getattr(act, "inplace", False):
        assert torch.equal(x, before)


@pytest.mark.parametrize("name", learnact.list_activations())
def test_create_activation_takes_inplace_plain_and_with_the_recipe(name):
    x = _input()
    plain = learnact.create_activation(name, inplace=True).eval()
    assert plain(x.clone()).shape == x.shape
    recipe = learnact.create_activation(name, learnable=True, inplace=True).eval()
    assert not getattr(recipe.base, "inplace", False)  # G never runs in place under the recipe
    before = x.clone()
    recipe(x)
    assert torch.equal(x, before)


def test_learnable_accepts_inplace_but_refuses_an_inplace_base():
    m = learnact.Learnable("gelu", inplace=True)
    x = torch.tensor([-1.0, 2.0])
    torch.testing.assert_close(m(x), learnact.Learnable("gelu")(x))
    with pytest.raises(ValueError, match="in place"):
        learnact.Learnable(nn.ReLU(inplace=True))


def test_a_timm_style_block_takes_learnact_classes():
    class BasicBlock(nn.Module):  # the shape of timm's ResNet block: act_layer(inplace=True)
        def __init__(self, act_layer):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.act1 = act_layer(inplace=True)
            self.act2 = act_layer(inplace=True)

        def forward(self, x):
            return self.act2(self.act1(self.conv(x)) + x)

    for act_layer in (learnact.DualLine, learnact.DPReLU, learnact.get_spec("gelu").build):
        block = BasicBlock(act_layer)
        x = _input().requires_grad_()
        block(x).sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()


def _python_m(*args):
    return subprocess.run([sys.executable, "-m", "learnact", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_python_dash_m_runs_the_cli():
    out = _python_m("list", "*line")
    assert out.returncode == 0, out.stderr
    assert "dual_line" in out.stdout
    bad = _python_m("no-such-command")
    assert bad.returncode == 2
    assert "invalid choice" in bad.stderr
