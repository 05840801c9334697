"""The study's plain data types: a run to train, a progress event, a run's result.

A leaf module: the worker, the executors and the store all use these types,
and this module imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: this module stays a leaf
    from .config import StudyConfig

__all__ = ["Event", "LRChoiceRecord", "LRFindRecord", "RunResult", "RunSpec"]


@dataclass(frozen=True)
class RunSpec:
    """One training run of a study: an activation entry and a seed under a study's
    typed configuration (``config``), with the id :func:`~learnact.study.worker.expand_runs`
    derived from them."""

    run_id: str
    study: str
    activation: str
    model: str
    dataset: str
    seed: int
    config: StudyConfig = field(hash=False, compare=False)

    @property
    def settings(self) -> dict[str, Any]:
        """What the store keeps with the run: every setting that can be part of its
        identity, and the whole study configuration under ``study_config``."""
        return {**self.config.run_settings(), "study_config": self.config.to_dict()}

    def as_row(self) -> dict[str, Any]:
        """The fields the store needs."""
        return {"run_id": self.run_id, "study": self.study, "activation": self.activation,
                "model": self.model, "dataset": self.dataset, "seed": self.seed,
                "settings": self.settings}


@dataclass
class Event:
    """A progress event: ``kind`` is ``start``, ``resume`` (continuing from a checkpoint;
    ``data["epoch"]`` is the last epoch it holds), ``epoch``, ``done``, ``diverged`` or
    ``failed``."""

    kind: str
    run: RunSpec
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class LRFindRecord:
    """The LR finder's sweep for one run: the rule, its pick and the smoothed curve."""

    method: str
    suggestion: float
    lrs: list[float]
    losses: list[float]


@dataclass
class LRChoiceRecord:
    """How a run's learning rate was chosen (:class:`learnact.train.lr_choice.LRChoice`).

    Attributes:
        path: ``fixed``, ``finder``, ``finder-stable`` or ``tune``.
        reason: one sentence: why this path.
        problems: the finder-curve check's codes (``end``, ``flat``, ``reuse``,
            ``cap``, ``unstable``), empty when it passed or did not run.
        tune: successive halving's rows (rung, epochs, lr, val_accuracy,
            val_loss, kept), when the run was tuned.
    """

    path: str
    reason: str
    problems: list[str] = field(default_factory=list)
    tune: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_choice(cls, choice: Any) -> LRChoiceRecord:
        """The record of an :class:`~learnact.train.lr_choice.LRChoice`."""
        return cls(choice.path, choice.reason,
                   list(choice.check.problems) if choice.check is not None else [],
                   list(choice.tune.rows) if choice.tune is not None else [])


@dataclass
class RunResult:
    """Everything one run produced; :meth:`Store.record` writes it in one transaction.

    Attributes:
        run_id: the run.
        status: ``done``, ``diverged`` or ``failed``.
        lr: the learning rate trained with (``None`` when none was reached).
        env: versions, device and kernels (see ``worker.environment``).
        error: why a run diverged or failed.
        lr_find: the finder's sweep, when the rate was found.
        epochs: one metrics dict per finished epoch
            (:meth:`learnact.train.EpochMetrics.as_dict`).
        params: ``(epoch, rows)`` snapshots of the activation parameters;
            ``epoch = -1`` is the end of the run. Rows are ``(site_index,
            path, block, position, param, idx, value)``.
        lr_choice: how the rate was chosen.
        act_stats: per epoch and site, the activation's output statistics on the
            probe batch: ``(epoch, site_index, mean, std, frac_neg,
            frac_zero_grad, hist)`` (:func:`learnact.train.act_stats.site_stats`).
        flags: marks on a ``done`` run that keep it out of rankings:
            ``chance`` (test accuracy indistinguishable from guessing the
            commonest class; see :func:`learnact.study.worker.at_chance`).
        resumed_after: the epoch of the checkpoint the run continued from, or
            ``None`` when it started from scratch (so a driver that only sees
            results, as with Ray, can say so).
    """

    run_id: str
    status: str
    lr: float | None = None
    env: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    lr_find: LRFindRecord | None = None
    epochs: list[dict[str, float]] = field(default_factory=list)
    params: list[tuple[int, list[tuple]]] = field(default_factory=list)
    lr_choice: LRChoiceRecord | None = None
    flags: list[str] = field(default_factory=list)
    act_stats: list[tuple] = field(default_factory=list)
    resumed_after: int | None = None

    @classmethod
    def failed(cls, run_id: str, error: str) -> RunResult:
        """The result of a run that raised."""
        return cls(run_id, "failed", error=error)
