"""A learning-rate range test and pure suggestion functions.

The sweep follows Smith (arXiv:1506.01186) with fastai's defaults for the sweep
itself: the learning rate grows exponentially from ``start`` to ``end`` over
``num_it`` steps, the loss is smoothed with an exponential moving average
(debiased), the sweep stops once the smoothed loss exceeds ``stop_div`` times
the best, and the model and optimizer state are restored afterwards.

The suggestions are learnact's own and differ from fastai's: they read the whole
smoothed curve (fastai drops the first tenth and the last five points first),
and :func:`valley` takes the point two thirds down the longest descending run
(fastai's index rule is not used). They are functions of ``(lrs, losses)`` only,
separate from any plotting.

The study's default is :func:`edge`: two thirds of the rate where the smoothed
curve first comes within 5% of its minimum. ``benchmarks/lr_choice.py`` (seed 0, the
quick preset's 8 activations on Fashion-MNIST and digits) put it 0.17 points of
accuracy from the best rate of a 6-point grid on average (worst 1.33), where
:func:`minimum3` (a third of the lowest point's rate, the previous default) was -0.02
(1.00), ``minimum`` 0.85, ``valley`` 11.5 and ``steep`` 16.9; but between 1 and 2
torch threads ``minimum3``'s pick moved by up to 75% and ``edge``'s by 15%.
:func:`check_curve` says when a curve cannot choose at all
(:mod:`learnact.train.lr_choice` then tunes). ``valley`` and ``minimum`` suit
fine-tuning, where a smaller rate is safer.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = ["ADAM_LR_CAP", "DEFAULT_SUGGESTION", "SUGGESTIONS", "CurveCheck", "LRFindResult",
           "check_curve", "edge", "lr_find", "minimum", "minimum3", "steep", "valley"]


def valley(lrs: list[float], losses: list[float]) -> float:
    """A point two thirds down the longest descending stretch of the curve.

    The stretch is the longest (not necessarily contiguous) decreasing
    subsequence of the smoothed losses; its first and last indices bound it.
    """
    _check(lrs, losses)
    n = len(losses)
    best_len = [1] * n
    prev = [-1] * n
    for i in range(n):
        for j in range(i):
            if losses[j] > losses[i] and best_len[j] + 1 > best_len[i]:
                best_len[i], prev[i] = best_len[j] + 1, j
    end = max(range(n), key=lambda i: best_len[i])
    start = end
    while prev[start] != -1:
        start = prev[start]
    return lrs[start + (end - start) * 2 // 3]


def steep(lrs: list[float], losses: list[float]) -> float:
    """The learning rate where the loss falls fastest against log(lr)."""
    _check(lrs, losses)
    slopes = [(losses[i + 1] - losses[i]) / (math.log(lrs[i + 1]) - math.log(lrs[i]))
              for i in range(len(lrs) - 1)]
    return lrs[min(range(len(slopes)), key=slopes.__getitem__)]


def minimum(lrs: list[float], losses: list[float]) -> float:
    """One tenth of the learning rate at the lowest loss."""
    _check(lrs, losses)
    return lrs[min(range(len(losses)), key=losses.__getitem__)] / 10


def minimum3(lrs: list[float], losses: list[float]) -> float:
    """The default: one third of the learning rate at the lowest smoothed loss.

    Fitted to training from scratch under the one-cycle schedule (see the
    module's docstring for the measurement).
    """
    _check(lrs, losses)
    return lrs[min(range(len(losses)), key=losses.__getitem__)] / 3


# the bottom of a finder curve: within this share of the lowest smoothed loss
EDGE_TOLERANCE = 0.05
# the edge of that bottom is divided by this, to land where minimum3 lands on average
EDGE_DIVISOR = 1.5


def edge(lrs: list[float], losses: list[float]) -> float:
    """The default: two thirds of the rate where the curve first comes within 5% of its minimum.

    The crossing is found on the descent left of the lowest smoothed loss and
    interpolated linearly in log(lr) between the two sweep steps around it, so
    the pick moves smoothly with the curve. Why not the lowest point itself:
    the bottom of a finder curve is flat to within 1-2% for several steps, and
    which step is lowest is numeric noise. On the quick preset's 8 activations
    (Fashion-MNIST), 1 and 2 torch threads moved ``minimum3``'s pick by up to
    75%, and this rule's by at most 7%; on average it picks 0.29x the
    lowest point's rate (``minimum3``: 0.33x).
    """
    _check(lrs, losses)
    low = min(range(len(losses)), key=losses.__getitem__)
    level = losses[low] + EDGE_TOLERANCE * abs(losses[low])
    i = low
    while i > 0 and losses[i - 1] <= level:
        i -= 1
    if i == 0:
        return lrs[0] / EDGE_DIVISOR
    hi, lo = losses[i - 1], losses[i]  # hi > level >= lo
    t = (hi - level) / (hi - lo)
    log_lr = math.log(lrs[i - 1]) + t * (math.log(lrs[i]) - math.log(lrs[i - 1]))
    return math.exp(log_lr) / EDGE_DIVISOR


SUGGESTIONS: dict[str, Callable[[list[float], list[float]], float]] = {
    "edge": edge, "minimum3": minimum3, "valley": valley, "steep": steep, "minimum": minimum,
}
DEFAULT_SUGGESTION = "edge"


def _check(lrs: list[float], losses: list[float]) -> None:
    if len(lrs) != len(losses) or len(lrs) < 2:
        raise ValueError(f"need at least 2 (lr, loss) points of equal count, got "
                         f"{len(lrs)} and {len(losses)}")


# The largest rate the study trusts from a finder curve for Adam-family optimisers
# under one-cycle: every best rate of benchmarks/lr_choice.py's grid was 0.01 or
# 0.03, and 0.1 was never best. A pick above it means the curve was still falling
# where Adam no longer trains from scratch.
ADAM_LR_CAP = 0.05
# a sweep that sees each training batch more often than this (fewer than 10 batches
# for the 100-step sweep) learns that handful of batches, not the data: its curve
# keeps falling at rates that diverge on real training. With 12 batches (digits,
# benchmarks/lr_choice.py) the curve still chose well; with 8 (1,000 digits) and 1
# (60 images) it did not.
MAX_BATCH_REUSE = 10.0
# "no clear descent": the lowest smoothed loss is less than this share below the first
MIN_DESCENT = 0.10
# relative noise on the smoothed curve for the stability check, and the largest
# relative move of the pick under it that still counts as stable
NOISE = 0.01
MAX_PICK_MOVE = 0.25


@dataclass
class CurveCheck:
    """What :func:`check_curve` found: ``problems`` (empty when the curve is usable).

    Attributes:
        problems: short codes, each with a sentence in ``reasons``:
            ``end`` (the lowest loss is at or next to the end of the sweep),
            ``flat`` (no clear descent), ``reuse`` (a handful of batches seen
            many times), ``cap`` (the pick is above :data:`ADAM_LR_CAP`),
            ``unstable`` (the pick moves by more than :data:`MAX_PICK_MOVE` when
            the curve is perturbed by :data:`NOISE`).
        reasons: one sentence per problem.
        stable_pick: the median of the rule's picks over the perturbed curves.
        pick_spread: the relative move of the pick under perturbation that 3 in 4
            perturbed curves stay within.
    """

    problems: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    stable_pick: float = float("nan")
    pick_spread: float = 0.0

    def add(self, code: str, reason: str) -> None:
        """Record one problem."""
        self.problems.append(code)
        self.reasons.append(reason)


def check_curve(lrs: list[float], losses: list[float], method: str = DEFAULT_SUGGESTION, *,
                batches_per_epoch: int | None = None, num_it: int = 100,
                draws: int = 32, seed: int = 0) -> CurveCheck:
    """Say whether a finder curve can be trusted to choose a rate, and why not.

    A pure function of the curve (and of how many distinct batches fed it). The
    perturbation draws use their own seeded generator, so the check never moves
    the caller's random streams.

    Args:
        lrs, losses: the sweep's rates and smoothed losses.
        method: the suggestion rule whose pick is checked.
        batches_per_epoch: distinct training batches; ``None`` skips the reuse check.
        num_it: the sweep's planned length.
        draws: perturbed copies of the curve for the stability check.
        seed: the perturbations' seed.
    """
    import numpy as np

    out = CurveCheck()
    if len(lrs) < 2:
        out.add("flat", f"the sweep stopped after {len(lrs)} step(s): the loss was not "
                        "finite from the start")
        return out
    rule = SUGGESTIONS[method]
    n = len(losses)
    low = min(range(n), key=losses.__getitem__)
    if low >= n - 3:
        out.add("end", f"the lowest smoothed loss is at the end of the sweep (lr "
                       f"{lrs[low]:.3g}, step {low + 1} of {n}): the curve never turned up")
    first = losses[0]
    if not (first > 0 and losses[low] < (1 - MIN_DESCENT) * first):
        out.add("flat", f"no clear descent: the lowest smoothed loss {losses[low]:.4g} is "
                        f"less than {MIN_DESCENT:.0%} below the first {first:.4g}")
    if batches_per_epoch is not None and num_it / max(batches_per_epoch, 1) > MAX_BATCH_REUSE:
        out.add("reuse", f"{batches_per_epoch} training batch(es) per epoch: the "
                         f"{num_it}-step sweep sees each about {num_it / batches_per_epoch:.0f} "
                         "times, so its curve measures memorising them")
    pick = rule(lrs, losses)
    rng = np.random.default_rng(seed)
    base = np.asarray(losses, dtype=float)
    picks = [rule(lrs, (base * np.exp(NOISE * _smooth_noise(rng, n))).tolist())
             for _ in range(draws)]
    out.stable_pick = float(np.exp(np.median(np.log(picks))))
    out.pick_spread = float(np.quantile([abs(p / pick - 1) for p in picks], 0.75))
    if out.pick_spread > MAX_PICK_MOVE:
        out.add("unstable", f"the pick {pick:.3g} moves by {out.pick_spread:.0%} or more in "
                            f"1 of 4 draws when "
                            f"the curve is perturbed by {NOISE:.0%} noise (the size a "
                            "different thread count causes)")
    if pick > ADAM_LR_CAP:
        out.add("cap", f"the pick {pick:.3g} is above {ADAM_LR_CAP}, more than Adam-family "
                       "optimisers tolerate when training from scratch")
    return out


def _smooth_noise(rng, n: int):
    """Unit-std noise correlated over about 10 steps, like the gap between two smoothed
    finder curves whose training drifted apart (measured: up to 1.4% near the minimum
    between 1 and 2 torch threads)."""
    import numpy as np

    z = rng.standard_normal(n + 30)
    out = np.empty_like(z)
    acc = 0.0
    for i, v in enumerate(z):
        acc = 0.9 * acc + v
        out[i] = acc
    out = out[30:]
    return out / (out.std() or 1.0)


@dataclass
class LRFindResult:
    """The sweep: learning rates, smoothed losses and the suggestion."""

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    suggestion: float = float("nan")
    method: str = DEFAULT_SUGGESTION


def lr_find(
    model: nn.Module,
    make_optimizer: Callable[[float], torch.optim.Optimizer],
    batches: Callable[[], Iterator[tuple[Tensor, Tensor]]],
    loss_fn: Callable[[nn.Module, Tensor, Tensor], Tensor],
    *,
    start: float = 1e-7,
    end: float = 10.0,
    num_it: int = 100,
    beta: float = 0.98,
    stop_div: float = 4.0,
    method: str = DEFAULT_SUGGESTION,
) -> LRFindResult:
    """Run the range test and return the curve and a suggested learning rate.

    The model's parameters, buffers and training mode are restored afterwards.

    Args:
        model: the model to probe.
        make_optimizer: ``lr -> optimizer`` over the model's parameters.
        batches: a callable returning a fresh iterator of training batches;
            called again when an epoch runs out before ``num_it`` steps.
        loss_fn: ``(model, x, y) -> scalar loss``.
        method: one of :data:`SUGGESTIONS`.
    """
    if method not in SUGGESTIONS:
        raise ValueError(f"unknown suggestion {method!r}; choose one of {', '.join(SUGGESTIONS)}")
    if not 0 < start < end or num_it < 2:
        raise ValueError("need 0 < start < end and num_it >= 2")
    state = copy.deepcopy(model.state_dict())
    was_training = model.training
    model.train()
    opt = make_optimizer(start)
    ratio = (end / start) ** (1 / (num_it - 1))
    result = LRFindResult(method=method)
    avg, best = 0.0, math.inf
    it = batches()
    try:
        for step in range(num_it):
            lr = start * ratio**step
            for group in opt.param_groups:
                group["lr"] = lr
            try:
                x, y = next(it)
            except StopIteration:
                it = batches()
                x, y = next(it)
            loss = loss_fn(model, x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                break
            avg = beta * avg + (1 - beta) * value
            smoothed = avg / (1 - beta ** (step + 1))
            result.lrs.append(lr)
            result.losses.append(smoothed)
            best = min(best, smoothed)
            if step > 0 and smoothed > stop_div * best:
                break
    finally:
        model.load_state_dict(state)
        model.train(was_training)
    if len(result.lrs) >= 2:
        result.suggestion = SUGGESTIONS[method](result.lrs, result.losses)
    return result
