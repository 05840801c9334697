"""Choosing a learning rate by training: successive halving on a validation split.

The LR finder reads a rate off one short sweep; on small data that sweep sees
the same few batches many times and its curve says little (see
:func:`learnact.train.lr_find.check_curve`). :func:`tune_lr` instead trains
short versions of the real run at a few rates and keeps the better half at
each rung (successive halving, Jamieson & Talwalkar, AISTATS 2016; Li et al.,
"Hyperband", JMLR 2018), scoring each on a validation split carved from the
*training* set. The test split is never read.

Every candidate trains with the run's own recipe (:func:`learnact.train.fit`:
the one-cycle schedule, weight decay, augmentation), only shorter; the last
rung trains the whole number of epochs. The model is rebuilt from the same
seed for every candidate, so candidates differ in their rate only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from ..data.loader import TensorData, crop_batch
from .loop import Diverged, TrainSettings, fit

__all__ = ["TUNE_CANDIDATES", "TuneResult", "split_validation", "tune_lr"]

# a log grid over the rates Adam-family optimisers train well from scratch with
# under one-cycle (benchmarks/lr_choice.py: every best rate of its grid was 0.01 or 0.03)
TUNE_CANDIDATES = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)
# share of the training set held out to score candidates
VAL_FRACTION = 0.2
# the rate when no class has two training images to split (Adam's usual default)
NO_VALIDATION_LR = 1e-3


@dataclass
class TuneResult:
    """What :func:`tune_lr` tried and what it chose.

    Attributes:
        lr: the chosen rate.
        rows: one dict per (rung, candidate): ``rung``, ``epochs``, ``lr``,
            ``val_accuracy``, ``val_loss`` (``nan`` for a diverged candidate),
            ``kept`` (it went on to the next rung, or won the last).
        n_train, n_val: the sizes of the split the candidates used.
    """

    lr: float
    rows: list[dict] = field(default_factory=list)
    n_train: int = 0
    n_val: int = 0


def split_validation(data: TensorData, seed: int, fraction: float = VAL_FRACTION
                     ) -> TensorData:
    """A copy of ``data`` whose test split is a seeded, class-stratified share of its
    training set (and whose training set is the rest).

    Each class gives ``round(fraction * count)`` images, at least one where it
    has two or more. Image-folder canvases are centre-cropped to the model's
    size for validation, as :func:`learnact.data.loader.train_batches` does
    without augmentation.
    """
    gen = torch.Generator().manual_seed(10_007 + seed)
    y = data.y_train.cpu()
    val_idx = []
    for c in range(data.num_classes):
        members = (y == c).nonzero().flatten()
        if len(members) < 2:
            continue
        take = min(len(members) - 1, max(1, round(fraction * len(members))))
        val_idx.append(members[torch.randperm(len(members), generator=gen)[:take]])
    val = torch.cat(val_idx).sort().values if val_idx else torch.empty(0, dtype=torch.long)
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[val] = False
    train = keep.nonzero().flatten()
    dev = data.x_train.device
    train, val = train.to(dev), val.to(dev)
    x_val = data.x_train[val]
    hw = data.train_hw
    if hw is not None and len(val):
        x_val = crop_batch(x_val, hw[val], data.image_shape[1], random=False)
    return TensorData(data.name, data.x_train[train], data.y_train[train], x_val,
                      data.y_train[val], data.num_classes,
                      hw[train] if hw is not None else None, data.classes)


def _rung_epochs(epochs: int, rungs: int) -> list[int]:
    """Epoch budgets ending at ``epochs``, halving backwards, without repeats."""
    out: list[int] = []
    for k in range(rungs - 1, -1, -1):
        e = max(1, math.ceil(epochs / 2**k))
        if not out or e > out[-1]:
            out.append(e)
    return out


def tune_lr(build: Callable[[], nn.Module], data: TensorData, settings: TrainSettings, *,
            seed: int, candidates: tuple[float, ...] = TUNE_CANDIDATES,
            seed_everything: Callable[[int], None] = torch.manual_seed) -> TuneResult:
    """Successive halving over ``candidates`` on a validation split of the training set.

    Rungs train for ``epochs/4``, ``epochs/2`` and ``epochs`` (rounded up,
    repeats dropped); after each rung the better half (rounded up) goes on.
    A candidate's score is its validation accuracy, ties broken by the lower
    validation loss; a diverged candidate scores worst. When no class has two
    training images there is nothing to validate on: the result is
    :data:`NO_VALIDATION_LR` with no rows. With one epoch the
    single rung trains every candidate for the whole run.

    Args:
        build: a new model for each candidate (called after ``seed_everything``).
        data: the run's data; only its training split is used.
        settings: the run's training recipe; ``lr`` and ``epochs`` are replaced.
        seed: the run's seed (the split, the model and the batches).
        candidates: the rates to try.
        seed_everything: reseeds every random stream before a candidate is built.
    """
    if not candidates:
        raise ValueError("tune_lr needs at least one candidate rate")
    split = split_validation(data, seed)
    result = TuneResult(lr=float("nan"), n_train=len(split.y_train), n_val=len(split.y_test))
    if result.n_val == 0:  # no class has two images: nothing to score on
        result.lr = NO_VALIDATION_LR
        return result
    alive = list(candidates)
    scores: dict[float, tuple[float, float]] = {}
    for rung, epochs in enumerate(_rung_epochs(settings.epochs, 3)):
        rows = []
        for lr in alive:
            seed_everything(seed)
            model = build().to(data.x_train.device)
            try:
                hist = fit(model, split, replace(settings, lr=lr, epochs=epochs), seed=seed)
                acc, loss = hist[-1].test_accuracy, hist[-1].test_loss
            except Diverged:
                acc, loss = -1.0, math.nan
            scores[lr] = (acc, loss)
            rows.append({"rung": rung, "epochs": epochs, "lr": lr,
                         "val_accuracy": acc if acc >= 0 else math.nan, "val_loss": loss,
                         "kept": False})
        ranked = sorted(alive, key=lambda r: (-scores[r][0],
                                              scores[r][1] if math.isfinite(scores[r][1])
                                              else math.inf, r))
        keep = ranked[:math.ceil(len(ranked) / 2)] if epochs < settings.epochs else ranked[:1]
        for row in rows:
            row["kept"] = row["lr"] in keep
        result.rows += rows
        alive = keep
    result.lr = float(alive[0])
    return result
