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

The study's default is :func:`minimum3`, a third of the rate at the lowest
smoothed loss. ``benchmarks/lr_choice.py`` chose it: over the quick preset's 8
activations on Fashion-MNIST (1 epoch) and on digits (5 epochs), trained from
scratch, it landed on average -0.02 points of accuracy from the best rate of a
6-point grid (worst case 1.0 point) on seed 0, and 0.21 (2.3, within digits'
noise) on seed 1, where ``valley`` was 11.5 and 5.9 points off on average,
``minimum`` (a tenth) 0.85 and 0.89, and ``steep`` 16 and 11.
``valley`` and ``minimum`` suit fine-tuning, where a smaller rate is safer.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

__all__ = ["DEFAULT_SUGGESTION", "SUGGESTIONS", "LRFindResult", "lr_find", "minimum", "minimum3",
           "steep", "valley"]


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


SUGGESTIONS: dict[str, Callable[[list[float], list[float]], float]] = {
    "minimum3": minimum3, "valley": valley, "steep": steep, "minimum": minimum,
}
DEFAULT_SUGGESTION = "minimum3"


def _check(lrs: list[float], losses: list[float]) -> None:
    if len(lrs) != len(losses) or len(lrs) < 2:
        raise ValueError(f"need at least 2 (lr, loss) points of equal count, got "
                         f"{len(lrs)} and {len(losses)}")


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
