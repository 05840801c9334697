"""Models with activation sites, the one-cycle loop, the LR finder and its suggestions."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

import learnact
from learnact.data import load_dataset
from learnact.models import build_model
from learnact.train import Diverged, TrainSettings, fit, lr_find, make_optimizer
from learnact.train.lr_find import DEFAULT_SUGGESTION, SUGGESTIONS, minimum, minimum3, steep, valley
from synthetic_data import write_cifar_like, write_npz

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.parametrize(("name", "n_sites"), [("lenet5", 4), ("lenet4", 3)])
def test_lenets(name, n_sites):
    m = build_model(name, learnact.DualLine, in_channels=1, num_classes=10, image_size=28)
    assert len(m.sites) == n_sites and [s.index for s in m.sites] == list(range(n_sites))
    assert all(s.block is None for s in m.sites)
    assert not any(isinstance(x, nn.BatchNorm2d) for x in m.modules())
    out = m(torch.randn(3, 1, 28, 28))
    out.sum().backward()
    assert out.shape == (3, 10)
    paths = {p for p, _ in m.named_modules()}
    assert all(s.path in paths for s in m.sites)


def test_wrn22_structure_and_smoke():
    m = build_model("wrn22", learnact.DPReLU, in_channels=3, num_classes=10, image_size=32)
    n = sum(p.numel() for p in m.parameters())
    assert 9.5e6 < n < 9.8e6  # fastai's wrn_22 has about 9.7M
    blocks = [(s.block, s.position) for s in m.sites if s.block is not None]
    assert blocks == [(b, p) for b in range(9) for p in (1, 2)]
    assert m.sites[-1].block is None and len(m.sites) == 19
    out = m(torch.randn(2, 3, 32, 32))
    out.sum().backward()
    assert out.shape == (2, 10)


def test_factory_must_make_new_modules():
    shared = nn.ReLU()
    with pytest.raises(ValueError, match="new module on every call"):
        build_model("lenet5", lambda: shared, in_channels=1, num_classes=10, image_size=28)
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        build_model("vgg", nn.ReLU, in_channels=1, num_classes=10, image_size=28)


def test_wrn22_one_epoch_on_tiny_cifar(tmp_path):
    write_cifar_like(tmp_path / "cifar10", per_batch=8)
    data = load_dataset("cifar10", data_dir=tmp_path, download=False)
    m = build_model("wrn22", learnact.DualLine, in_channels=3, num_classes=10, image_size=32)
    hist = fit(m, data, TrainSettings(epochs=1, lr=1e-3, batch_size=20, mixup_alpha=0.4,
                                      augment="flip_crop", precision="bf16"), seed=0)
    assert len(hist) == 1 and math.isfinite(hist[0].train_loss)
    assert 0 <= hist[0].test_accuracy <= 1


@pytest.fixture
def tiny(tmp_path):
    return load_dataset(str(write_npz(tmp_path / "t.npz", n_train=256, n_test=64)))


def test_fit_is_reproducible_and_learns(tiny):
    def once():
        torch.manual_seed(0)
        m = build_model("lenet5", nn.ReLU, in_channels=1, num_classes=10, image_size=28)
        return fit(m, tiny, TrainSettings(epochs=3, lr=3e-3, batch_size=32), seed=7)

    a, b = once(), once()
    assert [(e.train_loss, e.test_accuracy) for e in a] == [(e.train_loss, e.test_accuracy)
                                                            for e in b]
    assert a[-1].test_accuracy > 0.5  # the class band is easy to see
    assert a[-1].train_loss < a[0].train_loss


def test_diverged_on_huge_lr(tiny):
    torch.manual_seed(0)
    m = build_model("lenet5", nn.ReLU, in_channels=1, num_classes=10, image_size=28)
    with pytest.raises(Diverged):
        fit(m, tiny, TrainSettings(epochs=2, lr=1e9, batch_size=32), seed=0)


def test_lr_find_restores_state_and_suggests(tiny):
    torch.manual_seed(0)
    m = build_model("lenet5", learnact.DualLine, in_channels=1, num_classes=10, image_size=28)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    from learnact.data import iterate_batches

    res = lr_find(m, lambda lr: make_optimizer(m, lr, 0.01),
                  lambda: iterate_batches(tiny.x_train, tiny.y_train, 32, shuffle=True),
                  lambda mod, x, y: nn.functional.cross_entropy(mod(x), y), num_it=60)
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert 1e-7 <= res.suggestion <= 10 and len(res.lrs) == len(res.losses) >= 10
    assert res.lrs == sorted(res.lrs)


def test_suggestion_functions_on_a_known_curve():
    lrs = [10 ** (-7 + i * 0.1) for i in range(81)]  # 1e-7 .. 10
    # flat, then falling between 1e-5 and 1e-2 (fastest at 1e-3.5), then blowing up
    losses = [2.0 - 1.5 / (1 + math.exp(-(math.log10(lr) + 3.5) * 3)) + max(0, math.log10(lr)
              + 1.5) ** 2 for lr in lrs]
    s = steep(lrs, losses)
    assert 10 ** -3.7 <= s <= 10 ** -3.3
    lo = min(range(len(losses)), key=losses.__getitem__)
    assert minimum(lrs, losses) == pytest.approx(lrs[lo] / 10)
    # the lowest loss of this curve: d/dx of the rise 2(x+1.5) balances the sigmoid's fall
    assert 10 ** -1.5 <= lrs[lo] <= 10 ** -1.2
    assert minimum3(lrs, losses) == pytest.approx(lrs[lo] / 3)
    assert SUGGESTIONS["minimum3"] is minimum3 and DEFAULT_SUGGESTION == "edge"
    v = valley(lrs, losses)
    assert lrs[0] < v < lrs[lo]
    with pytest.raises(ValueError, match="at least 2"):
        valley([1.0], [1.0])


@pytest.mark.slow
@pytest.mark.skipif(not FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_real_fashion_mnist_lenet5_one_epoch():
    torch.manual_seed(0)
    data = load_dataset("fashion-mnist", download=False)
    assert len(data.y_train) == 60000 and len(data.y_test) == 10000
    m = build_model("lenet5", nn.ReLU, in_channels=1, num_classes=10, image_size=28)
    hist = fit(m, data, TrainSettings(epochs=1, lr=3e-3, batch_size=128), seed=0)
    assert hist[0].test_accuracy >= 0.80, hist


def test_make_optimizer_is_fused_adamw_matching_the_foreach_one():
    from learnact.model_tools import param_groups

    torch.manual_seed(0)
    model = build_model("lenet5", learnact.DualLine, in_channels=1, num_classes=10,
                        image_size=28)
    twin = build_model("lenet5", learnact.DualLine, in_channels=1, num_classes=10,
                       image_size=28)
    twin.load_state_dict(model.state_dict())
    start = {k: v.clone() for k, v in model.state_dict().items()}
    opt = make_optimizer(model, 1e-2, 0.1)
    assert opt.defaults["fused"] is True and opt.defaults["betas"] == (0.9, 0.99)
    ref = torch.optim.AdamW(param_groups(twin, 0.1), lr=1e-2, betas=(0.9, 0.99), foreach=True)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    for m, o in ((model, opt), (twin, ref)):
        for _ in range(3):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
    for (name, a), b in zip(model.named_parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=name)
        assert not torch.equal(a, start[name]), f"{name} did not move"


class _SlowFirstCalls(nn.Module):
    """ReLU whose first two calls stall, as a first kernel load or a busy machine would."""

    def __init__(self, stall: float) -> None:
        super().__init__()
        self.calls, self.stall = 0, stall

    def forward(self, x):
        self.calls += 1
        if self.calls <= 2:
            import time

            time.sleep(self.stall)
        return torch.relu(x)


def test_epoch_seconds_leave_out_the_warm_up_steps(tiny):
    # 256 images at batch 32: 8 steps, of which the first 2 are warm-up
    torch.manual_seed(0)
    slow = _SlowFirstCalls(0.4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 16), slow, nn.Linear(16, 10))
    (first,) = fit(model, tiny, TrainSettings(epochs=1, lr=1e-3, batch_size=32), seed=0)
    assert slow.calls >= 8
    assert first.seconds < 0.4, "the stalled warm-up steps were counted"
    assert first.seconds > 0
    # without warm-up (an epoch of 3 steps) the stall is counted: the test can fail
    slow = _SlowFirstCalls(0.4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 16), slow, nn.Linear(16, 10))
    (whole,) = fit(model, tiny, TrainSettings(epochs=1, lr=1e-3, batch_size=100), seed=0)
    assert whole.seconds >= 0.8


class _StallAt(nn.Module):
    def __init__(self, call: int, stall: float) -> None:
        super().__init__()
        self.call, self.stall, self.calls = call, stall, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.call:
            import time

            time.sleep(self.stall)
        return torch.relu(x)


def test_epoch_seconds_are_the_median_step_so_one_stall_does_not_count(tiny):
    # 8 steps at batch 32; a 0.5 s stall in step 6 (a busy machine) leaves the median alone
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 16), _StallAt(6, 0.5),
                          nn.Linear(16, 10))
    (m,) = fit(model, tiny, TrainSettings(epochs=1, lr=1e-3, batch_size=32), seed=0)
    assert m.seconds < 0.5  # a mean over steps would be >= 0.5 / 8 * 8 = 0.5


@pytest.mark.parametrize("model_name", ["lenet5", "wrn22", "xresnet18"])
def test_a_seed_gives_every_activation_the_same_other_weights(model_name):
    """Pairing by seed: whatever an activation draws at construction, the rest is equal."""
    from learnact.activations.factory import create_activation
    from learnact.activations.registry import list_activations
    from learnact.models import build_model

    def weights(name):
        torch.manual_seed(7)
        model = build_model(model_name, lambda: create_activation(name), in_channels=3,
                            num_classes=10, image_size=32)
        sites = tuple(s.path + "." for s in model.sites)
        return {k: v for k, v in model.state_dict().items() if not k.startswith(sites)}

    reference = weights("relu")
    # frelu holds a conv, probact and slaf draw at construction: the strongest cases
    names = ["dual_line", "frelu", "probact", "slaf"] if model_name != "lenet5" \
        else list_activations()
    for name in names:
        got = weights(name)
        assert got.keys() == reference.keys(), name
        for key, value in reference.items():
            assert torch.equal(got[key], value), (name, key)


def test_a_seed_gives_every_activation_the_same_batches(tiny):
    """Pairing by seed: the batches, their order and their augmentation ignore the activation."""
    seen: dict[str, list[float]] = {}

    class Spy(nn.Module):
        def __init__(self, key):
            super().__init__()
            self.key = key

        def forward(self, x):
            if self.training:
                seen.setdefault(self.key, []).append(float(x.double().sum()))
            return x

    for name in ("relu", "dual_line", "probact"):
        torch.manual_seed(0)
        model = nn.Sequential(Spy(name), build_model(
            "lenet5", lambda n=name: learnact.create_activation(n), in_channels=1,
            num_classes=10, image_size=28))
        fit(model, tiny, TrainSettings(epochs=2, lr=1e-3, batch_size=64, augment="flip_crop"),
            seed=3)
    assert len(seen["relu"]) == 2 * math.ceil(len(tiny.y_train) / 64)
    assert seen["relu"] == seen["dual_line"] == seen["probact"]


def test_grad_clip_bounds_each_step_and_is_a_study_key(tiny):
    """The knob added as one TrainSettings field: fit clips, the study reads it as a key."""
    from learnact.study import StudyConfig
    from learnact.study.worker import expand_runs

    def moved(clip):
        torch.manual_seed(0)
        m = build_model("lenet5", learnact.DualLine, in_channels=1, num_classes=10,
                        image_size=28)
        before = torch.cat([p.detach().flatten().clone() for p in m.parameters()])
        fit(m, tiny, TrainSettings(epochs=1, lr=3e-3, batch_size=32, grad_clip=clip), seed=0)
        after = torch.cat([p.detach().flatten() for p in m.parameters()])
        return (after - before).abs().max().item()

    # Adam's step is about lr * g / (|g| + eps): gradients clipped to a norm of 1e-12 sit
    # far below eps = 1e-8, so the weights barely move
    free, clipped = moved(None), moved(1e-12)
    assert free > 1e-3 and clipped < free / 100
    cfg = StudyConfig.from_settings({"grad_clip": 0.5})
    assert cfg.training.grad_clip == 0.5 and cfg.get("grad_clip") == 0.5
    assert (expand_runs(cfg)[0].run_id
            != expand_runs(StudyConfig.from_settings({}))[0].run_id)
    with pytest.raises(ValueError, match="grad-clip must be a positive finite number"):
        TrainSettings(grad_clip=0)
