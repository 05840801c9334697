"""``run_study``: a study's runs, handed to an executor, counted when they are done.

The imports run one way: ``runner`` (run specs, events and the worker that
trains one run) <- ``executors`` (local processes, Ray) <- this module.

A run's id names its data by path (so that databases of earlier releases keep
their ids), and every run records the content fingerprint of the data it
trained on (:func:`learnact.data.loader.data_fingerprint`). Before a study
adds or trains anything it compares the data on disk with the fingerprints of
its finished runs: data changed in place is :class:`DataChanged` (one line,
exit 2), never old results silently reused. Runs of releases that recorded
no fingerprint cannot be checked and are kept as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import DatasetError
from .config import StudyConfig
from .executors import ExecutorContext, LocalExecutor
from .runner import Event, environment, expand_runs, prepare_kernels, resolve_device
from .store import Store

__all__ = ["DataChanged", "check_data_unchanged", "run_study"]


class DataChanged(DatasetError):
    """The dataset's content differs from the one the study's finished runs trained on."""


def check_data_unchanged(store: Store, cfg: StudyConfig, ids: list[str], db: str | Path,
                         data_dir: str | None = None) -> None:
    """Raise :class:`DataChanged` if finished runs among ``ids`` trained on other data.

    Loads the dataset only when some finished run recorded a fingerprint.
    """
    recorded = {rid: env.get("data_fingerprint")
                for rid, env in store.finished_envs(ids).items()}
    recorded = {rid: fp for rid, fp in recorded.items() if fp}
    if not recorded:
        return
    from ..data.loader import load_dataset

    now = load_dataset(cfg.dataset, data_dir=data_dir, image_size=cfg.image_size,
                       train_limit=cfg.train_limit, progress=False).fingerprint
    stale = sorted({fp for fp in recorded.values() if fp != now})
    if stale:
        count = sum(fp != now for fp in recorded.values())
        raise DataChanged(
            f"{cfg.dataset}: the data changed since {count} finished run(s) in {db} trained "
            f"on it ({stale[0][7:19]}... then, {(now or '')[7:19]}... now); reusing their "
            "results would mix two datasets. Restore the data, or study the new data with "
            "a new --db")


def run_study(
    cfg: StudyConfig,
    db: str | Path,
    *,
    jobs: int = 1,
    data_dir: str | None = None,
    emit: Callable[[Event], None] = lambda e: None,
    poll: Callable[[int, int], None] | None = None,
    lease_s: float = 300.0,
    executor=None,
) -> dict[str, int]:
    """Run every unfinished run of ``cfg``; returns counts by status over the study.

    Args:
        cfg: the study.
        db: the results database (created if needed).
        jobs: parallel worker processes for the default local executor.
        data_dir: searched first for datasets.
        emit: progress callback, called in this process with every run's events:
            this process's own, those of ``--jobs`` workers (each sends them through
            a pipe of its own) and, with Ray, each result's epochs when it arrives.
        poll: ``(finished, total)`` callback, called about once a second while
            local worker processes run (``jobs > 1``).
        lease_s: claim lease; a crashed process's runs are reclaimed after it
            (immediately for dead processes on this host).
        executor: a :class:`~learnact.study.executors.LocalExecutor` (the
            default, with ``jobs``) or :class:`~learnact.study.executors.RayExecutor`.

    Raises:
        DataChanged: the dataset differs from the one its finished runs used.
        WorkersDied: local ``--jobs`` workers died and left runs unfinished.
    """
    executor = executor or LocalExecutor(jobs)
    runs = expand_runs(cfg)
    device = resolve_device(cfg.device)
    store = Store(db, lease_s=lease_s)
    try:
        ids = [r.run_id for r in runs]
        check_data_unchanged(store, cfg, ids, db, data_dir)  # before anything is written
        prepare_kernels(device)
        store.add_runs(r.as_row() for r in runs)
        store.set_meta({"last_study": cfg.to_dict(), "environment": environment(device)})
        retried = store.retry_failed(ids)  # a rerun after fixing the cause tries again
        executor.run(ExecutorContext(runs, Path(db), data_dir, cfg.device, emit, poll, lease_s))
        out = {"total": len(ids), **store.counts(ids)}
        if retried:
            out["failed before, retried"] = retried
        return out
    finally:
        store.close()
