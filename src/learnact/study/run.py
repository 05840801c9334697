"""``run_study``: a study's runs, handed to an executor, counted when they are done.

The imports run one way: ``runner`` (run specs, events and the worker that
trains one run) <- ``executors`` (local processes, Ray) <- this module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .config import StudyConfig
from .executors import ExecutorContext, LocalExecutor
from .runner import Event, environment, expand_runs, prepare_kernels, resolve_device
from .store import Store

__all__ = ["run_study"]


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
        emit: progress callback (runs in this process, and Ray results).
        poll: ``(finished, total)`` callback, called about once a second while
            local worker processes run (``jobs > 1``).
        lease_s: claim lease; a crashed process's runs are reclaimed after it
            (immediately for dead processes on this host).
        executor: a :class:`~learnact.study.executors.LocalExecutor` (the
            default, with ``jobs``) or :class:`~learnact.study.executors.RayExecutor`.
    """
    executor = executor or LocalExecutor(jobs)
    runs = expand_runs(cfg)
    device = resolve_device(cfg.device)
    prepare_kernels(device)
    store = Store(db, lease_s=lease_s)
    try:
        store.add_runs(r.as_row() for r in runs)
        store.set_meta({"last_study": cfg.to_dict(), "environment": environment(device)})
        ids = [r.run_id for r in runs]
        retried = store.retry_failed(ids)  # a rerun after fixing the cause tries again
        executor.run(ExecutorContext(runs, Path(db), data_dir, cfg.device, emit, poll, lease_s))
        out = {"total": len(ids), **store.counts(ids)}
        if retried:
            out["failed before, retried"] = retried
        return out
    finally:
        store.close()
