"""How a study run gets its learning rate: fixed, from a checked finder curve, or tuned.

:func:`choose_lr` is the one place that decides, and it records which path it
took and why (:class:`LRChoice`), so a result can always say where its rate
came from:

- ``fixed``: the rate was given.
- ``finder``: the LR finder's curve passed every check of
  :func:`~learnact.train.lr_find.check_curve` and its rule's pick is used.
- ``finder-stable``: the curve is usable, but the pick moved under noise of the
  size a different thread count causes; the median pick over perturbed curves
  is used instead.
- ``tune``: the curve cannot choose a rate (its lowest point is the end of the
  sweep, it never clearly descends, it reuses a handful of batches many times,
  or it points above :data:`~learnact.train.lr_find.ADAM_LR_CAP`), or tuning
  was asked for: successive halving on a validation split of the training set
  (:func:`~learnact.train.lr_tune.tune_lr`). On small data this costs a few
  short trainings; on large data about four runs' worth, which is why the
  finder is tried first.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.loader import TensorData, train_batches
from .loop import TrainSettings, make_optimizer
from .lr_find import ADAM_LR_CAP, DEFAULT_SUGGESTION, CurveCheck, LRFindResult, check_curve, lr_find
from .lr_tune import TuneResult, tune_lr

__all__ = ["LR_PATHS", "LRChoice", "choose_lr", "finder_sweep"]

LR_PATHS = ("fixed", "finder", "finder-stable", "tune")
# curve problems that make the finder's pick meaningless: the run is tuned instead
_USELESS = {"end", "flat", "reuse", "cap"}


@dataclass
class LRChoice:
    """A run's learning rate and how it was chosen.

    Attributes:
        lr: the rate to train with.
        path: one of :data:`LR_PATHS`.
        reason: one sentence for people (why this path).
        finder: the finder's sweep, when one ran.
        check: what :func:`check_curve` found on it.
        tune: the successive-halving table, when the run was tuned.
    """

    lr: float
    path: str
    reason: str
    finder: LRFindResult | None = None
    check: CurveCheck | None = None
    tune: TuneResult | None = None


def finder_sweep(model: nn.Module, data: TensorData, settings: TrainSettings, *, seed: int,
                 method: str = DEFAULT_SUGGESTION) -> tuple[LRFindResult, CurveCheck]:
    """The LR finder's sweep of ``model`` (restored afterwards) on the training batches
    of ``seed``, and the check of its curve (:func:`~learnact.train.lr_find.check_curve`)."""
    found = lr_find(
        model, lambda v: make_optimizer(model, v, settings.weight_decay),
        lambda: train_batches(data, settings.batch_size,
                              generator=torch.Generator().manual_seed(seed)),
        lambda m, x, y: F.cross_entropy(m(x), y), method=method)
    per_epoch = math.ceil(len(data.y_train) / settings.batch_size)
    return found, check_curve(found.lrs, found.losses, method, batches_per_epoch=per_epoch)


def choose_lr(build: Callable[[], nn.Module], data: TensorData, settings: TrainSettings, *,
              seed: int, lr: float | str = "find", method: str = DEFAULT_SUGGESTION,
              seed_everything: Callable[[int], None] = torch.manual_seed,
              model: nn.Module | None = None,
              tune: Callable[[], TuneResult] | None = None) -> LRChoice:
    """Choose the learning rate of one run (see the module docstring for the paths).

    Args:
        build: a new model (for tuning; called after ``seed_everything(seed)``).
        data: the run's data (only its training split is read).
        settings: the run's training recipe.
        seed: the run's seed: the finder's batches, the tuning split and models.
        lr: a positive number (fixed), ``"find"`` (the finder, checked, tuned
            when its curve is useless) or ``"tune"`` (always tune).
        method: the finder's suggestion rule.
        seed_everything: reseeds every random stream.
        model: the model to sweep with ``"find"`` (restored afterwards); by
            default one from ``build``.
        tune: what tuning gives when the run is tuned; by default
            :func:`~learnact.train.lr_tune.tune_lr` on ``seed`` (a study can tune
            once on one seed and share the result, ``tune_scope=study``).
    """
    if not isinstance(lr, str):
        return LRChoice(float(lr), "fixed", "the rate was given")
    if lr not in ("find", "tune"):
        raise ValueError(f"lr must be a number, 'find' or 'tune', got {lr!r}")

    def tuned(reason: str, finder=None, check=None) -> LRChoice:
        result = (tune() if tune is not None else
                  tune_lr(build, data, settings, seed=seed, seed_everything=seed_everything))
        return LRChoice(result.lr, "tune", reason, finder, check, result)

    if lr == "tune":
        return tuned("tuning was asked for (--lr tune)")
    if model is None:
        seed_everything(seed)
        model = build().to(data.x_train.device)
    found, check = finder_sweep(model, data, settings, seed=seed, method=method)
    useless = [r for p, r in zip(check.problems, check.reasons, strict=True) if p in _USELESS]
    if useless or not math.isfinite(found.suggestion):
        why = "; ".join(useless) or "the finder's loss was not finite"
        return tuned(f"the finder's curve cannot choose a rate ({why}); tuned by successive "
                     "halving on a validation split of the training set", found, check)
    if "unstable" in check.problems:
        reason = check.reasons[check.problems.index("unstable")]
        return LRChoice(min(check.stable_pick, ADAM_LR_CAP), "finder-stable",
                        f"{reason}; the median pick over the perturbed curves is used",
                        found, check)
    return LRChoice(float(found.suggestion), "finder",
                    f"the {method} rule on a curve that passed every check", found, check)
