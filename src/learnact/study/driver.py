"""The driver: the process that starts a study. :func:`prepare_study` checks
everything before anything is written; :func:`run_study` hands the runs to an
executor and counts them when they are done.

The imports run one way: ``worker`` (run specs, events and the worker that
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
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError, DatasetError, LearnactError
from .config import StudyConfig
from .executors import ExecutorContext, LocalExecutor
from .store import Store
from .worker import Event, RunSpec, environment, expand_runs, prepare_kernels, resolve_device

__all__ = ["DataChanged", "StudyPlan", "check_data_unchanged", "check_environment",
           "check_model_fits", "prepare_study", "run_study"]


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

    now = load_dataset(cfg.data.dataset, data_dir=data_dir, image_size=cfg.data.image_size,
                       train_limit=cfg.data.train_limit, progress=False).fingerprint
    stale = sorted({fp for fp in recorded.values() if fp != now})
    if stale:
        count = sum(fp != now for fp in recorded.values())
        raise DataChanged(
            f"{cfg.data.dataset}: the data changed since {count} finished run(s) in {db} trained "
            f"on it ({stale[0][7:19]}... then, {(now or '')[7:19]}... now); reusing their "
            "results would mix two datasets. Restore the data, or study the new data with "
            "a new --db")


def check_environment() -> None:
    """Refuse bad ``LEARNACT_*`` values before a command creates any file.

    ``LEARNACT_KERNELS``, ``LEARNACT_CPU_ISA``, ``LEARNACT_BUILD_TIMEOUT``,
    ``LEARNACT_MAX_DATA_MB`` and ``LEARNACT_MAX_IMAGE_PIXELS``: each error
    names its variable.
    """
    from ..data.formats import max_data_bytes
    from ..data.images import max_image_pixels
    from ..kernels import cpu, dispatch

    dispatch.get_mode()
    cpu.check_environment()
    max_data_bytes()
    max_image_pixels()


def check_model_fits(model_name: str, data, swap: str = "ReLU") -> None:
    """A dry forward of ``model_name`` on two test images of ``data``.

    Raises:
        ConfigError: the model cannot take the data's images (one line, with why).
    """
    from ..models import build_model

    c, h, w = data.image_shape
    try:
        model = build_model(model_name, torch.nn.ReLU, in_channels=c, swap=swap,
                            num_classes=data.num_classes, image_size=h).eval()
        with torch.no_grad():
            model(data.x_test[:2])
    except LearnactError:
        raise
    except (RuntimeError, ValueError, TypeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{data.name}: {model_name} cannot take {c}x{h}x{w} images "
                          f"({reason})") from None


@dataclass
class StudyPlan:
    """What :func:`prepare_study` found: the runs, how many are finished, and the data."""

    runs: list[RunSpec]
    already: int
    data: object


def prepare_study(cfg: StudyConfig, db: str | Path, *, data_dir: str | None = None,
                  executor=None) -> StudyPlan:
    """Every check a study can make before it trains, in the order that leaves no trace.

    The device (CUDA when asked for, fp16 only on CUDA), the ``LEARNACT_*``
    variables, the executor's cluster address, the data (found and parsed) and a
    dry forward of the model all come before the database is opened; then the
    database is opened (created if needed) to count finished runs.

    Raises:
        LearnactError: a one-line reason (a bad device, variable, address, dataset,
            model or database).
    """
    device = resolve_device(cfg.device)
    if cfg.training.precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision fp16 needs CUDA (its gradient scaler is CUDA-only); "
                          "use bf16 or fp32 on the CPU")
    check_address = getattr(executor, "check_address", None)
    if check_address is not None:
        check_address()  # a bad cluster address leaves no database behind
    check_environment()
    runs = expand_runs(cfg)
    from ..data import load_dataset

    data = load_dataset(cfg.data.dataset, data_dir=data_dir, train_limit=cfg.data.train_limit,
                        image_size=cfg.data.image_size)
    check_model_fits(cfg.model.name, data, cfg.model.swap)
    store = Store(db, create=True)
    try:
        already = len(store.finished([r.run_id for r in runs]))
    finally:
        store.close()
    return StudyPlan(runs, already, data)


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
