"""Expand a study into runs, and the worker that trains them, resumably.

:func:`work_loop` claims and trains runs in this process; :func:`worker_main`
is a ``--jobs`` worker process; :func:`execute_run` trains one run (also on
Ray). :func:`learnact.study.driver.run_study` hands the runs to an executor.

A run is (activation, model, dataset, seed) plus the resolved settings; its
id is a hash of exactly those, so re-running the same command finds the same
ids and skips what is finished. Workers claim runs through the
:class:`~learnact.study.store.Store`, so several processes (``--jobs``, or two
separate study commands) never train or store the same run twice.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import platform
import random
import signal
import sqlite3
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..data.loader import TensorData, load_dataset
from ..errors import ConfigError, StoreError
from ..model_tools import activation_values, param_groups
from ..train.act_stats import probe_indices, site_stats
from ..train.loop import Diverged, fit
from ..train.lr_choice import choose_lr
from ..train.lr_tune import TUNE_CANDIDATES, VAL_FRACTION, TuneResult, tune_lr
from .config import StudyConfig, resolve_activations
from .entries import parse_entry
from .store import LeaseLost, Store
from .types import Event, LRChoiceRecord, LRFindRecord, RunResult, RunSpec

__all__ = ["Event", "RunResult", "RunSpec", "checkpoint_dir", "discard_checkpoint",
           "execute_run", "expand_runs", "models_dir", "work_loop", "worker_main"]

log = logging.getLogger(__name__)

def expand_runs(cfg: StudyConfig) -> list[RunSpec]:
    """Every (activation, seed) run of ``cfg``, in a stable order, with deterministic ids.

    A run's id hashes its activation entry, its seed and
    :meth:`StudyConfig.identity` (declared per field: see :mod:`learnact.settings`),
    so the ids of runs recorded by earlier releases do not change. The order is by
    activation, then seed; with ``tune_scope=study`` it is by seed, then activation,
    so that parallel workers take every activation's seed 0 (which tunes for all
    seeds) before any later seed.
    """
    runs = []
    identity = cfg.identity()
    for activation in resolve_activations(cfg.activations):
        for seed in range(cfg.seeds):
            key = {"activation": activation, "seed": seed, **identity}
            digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()
            runs.append(RunSpec(digest[:16], cfg.name, activation, cfg.model.name,
                                cfg.data.dataset, seed, cfg))
    if cfg.lr_choice.tune_scope == "study":
        runs.sort(key=lambda r: r.seed)  # stable: activations keep their order
    return runs


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without CUDA is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but CUDA is not available")
    return torch.device(name)


@functools.lru_cache(maxsize=1)
def _git_revision() -> str | None:
    """learnact's git revision, asked once per process (not once per run)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=5, check=False,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device) -> dict[str, Any]:
    """learnact and torch versions, device, Python, torch's thread count (CPU results are
    bit-identical only at the same count), and the git revision if any."""
    rev = _git_revision()
    dev = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    env = {"learnact": __version__, "torch": torch.__version__, "device": str(device),
           "device_name": dev or platform.machine(), "python": platform.python_version(),
           "git": rev, "threads": torch.get_num_threads()}
    if device.type == "cpu":
        env["cpu_kernels"] = _cpu_kernel_variant()
    return env


def _cpu_kernel_variant() -> str:
    """Which fused CPU kernel variant this process has loaded, or why none (never builds).

    ``"not used"`` when nothing in the process has called a fused kernel yet:
    a study of fixed activations never loads them.
    """
    import sys

    cpu = sys.modules.get("learnact.kernels.cpu")
    return (cpu.status() if cpu is not None else None) or "not used"


def prepare_kernels(device: torch.device) -> None:
    """Build (or load) the fused CPU kernels once in the driver, before any worker starts.

    Workers (local ``--jobs`` and Ray on this machine) then load the cached
    build instead of racing to compile it. A failure here is not an error: the
    reference path runs, with the kernel's one warning.
    """
    from ..kernels import dispatch

    if device.type == "cpu" and dispatch.get_mode() != "reference":
        dispatch._load_cpu()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _param_rows(model: torch.nn.Module) -> list[tuple]:
    sites = {s.path: s for s in getattr(model, "sites", [])}
    rows = []
    for path, name, value in activation_values(model):
        site = sites.get(path)
        flat = value.detach().float().flatten().cpu().tolist()
        for i, v in enumerate(flat):
            rows.append((site.index if site else -1, path, site.block if site else None,
                         site.position if site else None, name, i, v))
    return rows


class _Heartbeat:
    """Renews a run's lease from a background thread with its own connection.

    ``lost`` turns true when a renewal finds the run taken over; the run then
    stops at its next epoch boundary (:func:`execute_run`'s ``stop``).
    """

    def __init__(self, db: Path, owner: str, run_id: str, lease_s: float) -> None:
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(db, owner, run_id, lease_s),
                                        daemon=True)
        self._thread.start()

    def _loop(self, db: Path, owner: str, run_id: str, lease_s: float) -> None:
        store = Store(db, create=False, lease_s=lease_s, owner=owner)
        try:
            while not self._stop.wait(lease_s / 3):
                if not store.heartbeat(run_id):
                    log.warning("run %s: lease lost; stopping at the next epoch", run_id)
                    self.lost = True
                    return
        finally:
            store.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def checkpoint_dir(db: str | Path) -> Path:
    """Where the runs of database ``db`` keep mid-run checkpoints: ``DB.checkpoints/``
    beside it, one ``<run_id>.pt`` per run (on a path every worker can reach, as the
    database itself must be)."""
    db = Path(db)
    return db.with_name(db.name + ".checkpoints")


def models_dir(checkpoints: Path) -> Path:
    """Where ``--keep-models`` keeps final weights: ``DB.models/`` beside the checkpoint
    folder ``DB.checkpoints/``, one ``<run_id>.pt`` per finished run, holding the run's
    ``activation``, ``model``, ``seed`` and ``state_dict`` (load with
    ``torch.load(path, weights_only=True)``)."""
    return checkpoints.with_name(checkpoints.name.removesuffix(".checkpoints") + ".models")


def discard_checkpoint(db: str | Path, run_id: str) -> None:
    """Remove a run's checkpoint once its result is stored."""
    with contextlib.suppress(OSError):
        (checkpoint_dir(db) / f"{run_id}.pt").unlink()


def _load_checkpoint(path: Path, run: RunSpec) -> dict | None:
    """A run's checkpoint, or ``None`` when there is none or it cannot be used (a
    damaged file is named in a warning, and the run starts over)."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any damage: never trusted, the run starts over
        log.warning("run %s: checkpoint %s is unreadable (%s); starting over", run.run_id,
                    path, exc)
        return None
    if not isinstance(state, dict) or state.get("run_id") != run.run_id:
        log.warning("run %s: %s belongs to another run; starting over", run.run_id, path)
        return None
    return state


def _checkpoint_mismatch(model: torch.nn.Module, fit_state: dict,
                         weight_decay: float) -> str | None:
    """Why a checkpoint's training state cannot continue ``model``, or ``None`` if it can.

    A checkpoint written by another learnact version can hold the same run in another
    parameter layout (0.2's DP ReLU and Dual Line had two and three parameters where 0.3
    packs them into one): its model would load, but the optimizer's state would not.
    """
    try:
        saved, own = fit_state["model"], model.state_dict()
        if set(saved) != set(own) or any(
                tuple(saved[k].shape) != tuple(v.shape) for k, v in own.items()):
            return "its model's parameters are named or shaped differently"
        groups = [len(g["params"]) for g in param_groups(model, weight_decay)]
        if [len(g["params"]) for g in fit_state["optimizer"]["param_groups"]] != groups:
            return "its optimizer holds a different set of parameters"
    except (KeyError, TypeError, AttributeError) as exc:
        return f"it lacks part of a run's state ({exc!r})"
    return None


def _staged_write(path: Path, write: Callable[[Path], object],
                  publish: Callable[[Path, Path], None] = os.replace) -> None:
    """Write ``path`` whole or not at all: ``write`` fills a temporary file beside it
    (named uniquely even across Ray nodes sharing the folder, whose pids can
    coincide), then ``publish`` (a rename; a hard link to never overwrite) puts it in
    place. The temporary file is gone afterwards, also after an error or Ctrl-C,
    which propagate."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        publish(tmp, path)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _save_checkpoint(path: Path, state: dict) -> None:
    """Write atomically (:func:`_staged_write`); a full disk costs the checkpoint, not
    the run."""
    try:
        _staged_write(path, lambda tmp: torch.save(state, tmp))
    except OSError as exc:
        log.warning("run %s: could not write checkpoint %s (%s)", state.get("run_id"), path,
                    exc)


# tune_scope=study: every seed of an activation uses the tuning of this seed
SHARED_TUNE_SEED = 0
# what reading a shared tuning file can raise when it is damaged or foreign
_UNUSABLE = (OSError, ValueError, KeyError, TypeError, AttributeError)


def tuning_dir(checkpoints: Path) -> Path:
    """Where shared tunings (``tune_scope=study``) are kept: ``DB.checkpoints/tuning/``,
    one ``<key>.json`` per activation, settings and data."""
    return checkpoints / "tuning"


def _shared_tuning(run: RunSpec, data: TensorData, build: Callable[[], torch.nn.Module],
                   checkpoints: Path | None, device: torch.device) -> Callable[[], TuneResult]:
    """The tuning the tuned seeds of ``run``'s activation share: successive halving on
    seed :data:`SHARED_TUNE_SEED`'s split and model, computed once and kept in
    :func:`tuning_dir`. The seeds of a study share its settings and data, so each
    computes the same result on the same device and thread count; the file saves the
    work, and the first file published wins, so seeds never train at two rates. A
    file that cannot be read, or was written by another learnact, tuner or device
    type, is computed again (with a warning)."""
    cfg = run.config
    key = hashlib.sha256(json.dumps(
        {"activation": run.activation, "settings": cfg.identity(), "data": data.fingerprint,
         "seed": SHARED_TUNE_SEED}, sort_keys=True, default=str).encode()).hexdigest()[:32]
    path = tuning_dir(checkpoints) / f"{key}.json" if checkpoints is not None else None
    made_by = {"learnact": __version__, "candidates": list(TUNE_CANDIDATES),
               "val_fraction": VAL_FRACTION, "device": device.type}

    def read() -> TuneResult:
        saved = json.loads(path.read_text())
        if saved.get("made_by") != made_by:
            raise ValueError(f"written by {saved.get('made_by')}, not {made_by}")
        lr = float(saved["lr"])
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"its rate {lr!r} is not a positive number")
        return TuneResult(lr, [dict(r) for r in saved["rows"]], int(saved["n_train"]),
                          int(saved["n_val"]))

    def tune() -> TuneResult:
        damaged = False
        if path is not None:
            try:
                return read()
            except FileNotFoundError:
                pass
            except _UNUSABLE as exc:
                log.warning("shared tuning %s cannot be used (%s); tuning again", path, exc)
                damaged = True
        result = tune_lr(build, data, cfg.training, seed=SHARED_TUNE_SEED,
                         seed_everything=_seed_everything)
        if path is None:
            return result
        text = json.dumps({"activation": run.activation, "made_by": made_by, "lr": result.lr,
                           "rows": result.rows, "n_train": result.n_train,
                           "n_val": result.n_val})
        if damaged or not _publish_once(path, text):
            _write_atomically(path, text)  # replaces a damaged file
            return result
        try:
            return read()  # the first published result, which may be another seed's
        except _UNUSABLE:
            return result

    return tune


def _publish_once(path: Path, text: str) -> bool:
    """Write ``path`` only if nobody has yet (a hard link of a complete temporary file);
    ``True`` when a file is there afterwards, ``False`` where links are not possible."""
    try:
        _staged_write(path, lambda tmp: tmp.write_text(text), publish=os.link)
    except FileExistsError:
        return True
    except OSError:
        return False
    return True


def _write_atomically(path: Path, text: str) -> None:
    """``text`` into ``path`` (:func:`_staged_write`); a failed write (a full disk)
    costs only the saving."""
    try:
        _staged_write(path, lambda tmp: tmp.write_text(text))
    except OSError as exc:
        log.warning("could not write %s (%s)", path, exc)


def execute_run(run: RunSpec, data: TensorData, device: torch.device,
                emit: Callable[[Event], None],
                stop: Callable[[], bool] = lambda: False,
                checkpoints: Path | None = None) -> RunResult:
    """Train one run and return everything it produced; writes nothing but checkpoints.

    Args:
        run: the run.
        data: its dataset, on ``device``.
        device: where to train.
        emit: progress events (``epoch``, and ``resume`` when it continues from a
            checkpoint), called in this process.
        stop: polled after the LR finder and after every epoch; when it turns
            true the run stops with :class:`LeaseLost` (its lease went to
            another process, which redoes it).
        checkpoints: a folder (:func:`checkpoint_dir`): after every epoch but the
            last the run writes ``<run_id>.pt`` there, and a run that finds its
            own file continues after that epoch instead of starting over (the
            learning rate is not chosen again). On the CPU, with the same thread
            count, the result equals an uninterrupted run's exactly.

    Returns:
        A :class:`RunResult` with status ``done`` or ``diverged``. Other
        exceptions propagate: the caller records the run as failed.
    """
    cfg = run.config
    entry = parse_entry(run.activation)
    _seed_everything(run.seed)
    c, h, _ = data.image_shape

    def build() -> torch.nn.Module:
        return entry.build_model(run.model, data_sample=data.x_test[:2], swap=cfg.model.swap,
                                 in_channels=c, num_classes=data.num_classes, image_size=h)

    model = build().to(device)
    # the data's content, so a later study can tell if the file changed under this result
    result = RunResult(run.run_id, "done",
                       env={**environment(device), "data_fingerprint": data.fingerprint})

    def check_stop() -> None:
        if stop():
            raise LeaseLost(run.run_id)

    settings = cfg.training  # "auto" precision: fit resolves it for the device
    ckpt = checkpoints / f"{run.run_id}.pt" if checkpoints is not None else None
    resume = _load_checkpoint(ckpt, run) if ckpt is not None else None
    if resume is not None and (why := _checkpoint_mismatch(
            model, resume.get("fit") or {}, settings.weight_decay)) is not None:
        log.warning("run %s: checkpoint %s cannot continue this model (%s; written by "
                    "another learnact version?); starting over", run.run_id, ckpt, why)
        resume = None
    if resume is not None:
        lr = float(resume["lr"])
        result.lr_choice = LRChoiceRecord(**resume["lr_choice"])
        if resume["lr_find"] is not None:
            result.lr_find = LRFindRecord(**resume["lr_find"])
        result.epochs = [dict(m) for m in resume["fit"]["history"]]
        result.params = [(int(e), [tuple(r) for r in rows]) for e, rows in resume["params"]]
        result.act_stats = [tuple(r) for r in resume.get("act_stats", [])]
        result.resumed_after = int(resume["fit"]["epoch"])
        emit(Event("resume", run, {"epoch": result.resumed_after}))
    else:
        shared = (_shared_tuning(run, data, build, checkpoints, device)
                  if cfg.lr_choice.tune_scope == "study" else None)
        choice = choose_lr(build, data, settings, seed=run.seed, lr=cfg.lr_choice.lr,
                           method=cfg.lr_choice.method, seed_everything=_seed_everything,
                           model=model, tune=shared)
        if shared is not None and choice.path == "tune":
            choice.reason += (f"; on seed {SHARED_TUNE_SEED}'s split and model, shared by "
                              "every tuned seed (tune_scope=study)")
        lr = choice.lr
        result.lr_choice = LRChoiceRecord.from_choice(choice)
        if choice.finder is not None:
            found = choice.finder
            result.lr_find = LRFindRecord(found.method, found.suggestion, found.lrs,
                                          found.losses)
        if choice.path != "fixed":
            check_stop()
            _seed_everything(run.seed)
            if choice.path == "tune":  # the candidates drew from the streams: a fresh model
                model = build().to(device)
    result.lr = lr
    settings = replace(settings, lr=lr)

    def save(state: dict) -> None:
        _save_checkpoint(ckpt, {
            "run_id": run.run_id, "lr": lr, "lr_choice": asdict(result.lr_choice),
            "lr_find": asdict(result.lr_find) if result.lr_find is not None else None,
            "params": [[e, [list(r) for r in rows]] for e, rows in result.params],
            "act_stats": [list(r) for r in result.act_stats], "fit": state})

    snapshots = cfg.snapshot_every_epoch
    if snapshots is None:  # auto: per-epoch snapshots when they are cheap
        snapshots = sum(v.numel() for _, _, v in activation_values(model)) <= SNAPSHOT_LIMIT
    probe = None
    if cfg.activation_stats:
        probe = data.x_test[probe_indices(len(data.y_test), run.seed).to(data.x_test.device)]

    def on_epoch(m) -> None:
        result.epochs.append(m.as_dict())
        if probe is not None:
            result.act_stats += [(m.epoch, *row) for row in site_stats(model, probe)]
        if snapshots:
            result.params.append((m.epoch, _param_rows(model)))
        emit(Event("epoch", run, {**m.as_dict(), "lr": lr}))
        check_stop()

    try:
        fit(model, data, settings, seed=run.seed, on_epoch=on_epoch,
            checkpoint=save if ckpt is not None else None,
            resume=resume["fit"] if resume is not None else None)
    except Diverged as exc:
        result.status, result.error = "diverged", exc.reason
    finally:
        # what ran, now that it has: the kernels load on an activation's first fused
        # call, so at the start of a process's first run they were never loaded yet
        if "cpu_kernels" in result.env:
            result.env["cpu_kernels"] = _cpu_kernel_variant()
    if result.status == "diverged":
        return result
    result.params.append((-1, _param_rows(model)))
    if ckpt is not None and cfg.keep_models:
        _save_checkpoint(models_dir(ckpt.parent) / f"{run.run_id}.pt",
                         {"run_id": run.run_id, "activation": run.activation,
                          "model": run.model, "seed": run.seed, "state_dict": model.state_dict()})
    if result.epochs and at_chance(result.epochs[-1]["test_accuracy"], data.y_test,
                                   data.num_classes):
        result.flags.append("chance")
    return result


# per-epoch parameter snapshots are on by default below this many values a snapshot
SNAPSHOT_LIMIT = 4096


def at_chance(accuracy: float, y_test: torch.Tensor, num_classes: int) -> bool:
    """Whether ``accuracy`` is indistinguishable from always guessing the commonest class.

    One-sided binomial test at 1%, normal approximation: at chance when the
    accuracy is below ``p0 + 2.33 * sqrt(p0 (1 - p0) / n)``, where ``p0`` is
    the commonest class's share of the ``n`` test labels. With 10,000 balanced
    labels over 10 classes that is 0.107; with 30 over 2 classes, 0.71.
    """
    n = len(y_test)
    if n == 0:
        return False
    counts = torch.bincount(y_test.detach().cpu().long(), minlength=num_classes)
    p0 = float(counts.max()) / n
    return accuracy < p0 + 2.326 * math.sqrt(p0 * (1 - p0) / n)


def work_loop(runs: list[RunSpec], db: Path, data_dir: str | None, device_name: str,
          emit: Callable[[Event], None], lease_s: float) -> None:
    """Claim and execute runs until none is left."""
    store = Store(db, lease_s=lease_s)
    by_id = {r.run_id: r for r in runs}
    device = resolve_device(device_name)
    data: dict[tuple[str, int | None], TensorData] = {}
    try:
        while True:
            run_id = store.claim(list(by_id))
            if run_id is None:
                return
            run = by_id[run_id]
            key = (run.dataset, run.config.data.train_limit, run.config.data.image_size)
            try:
                if key not in data:
                    data[key] = load_dataset(run.dataset, data_dir=data_dir, device=device,
                                             train_limit=run.config.data.train_limit,
                                             image_size=run.config.data.image_size)
                emit(Event("start", run))
                beat = _Heartbeat(db, store.owner, run_id, lease_s)
                try:
                    result = execute_run(run, data[key], device, emit,
                                         stop=lambda beat=beat: beat.lost,
                                         checkpoints=checkpoint_dir(db))
                finally:
                    beat.stop()
                try:
                    recorded = store.record(result)
                except sqlite3.Error as exc:
                    if not storage_failure(exc):
                        raise  # a bug: the run is recorded as failed, with it
                    # a full disk: not the run's failure
                    raise StoreError(f"{db}: a finished run's results could not be written "
                                     f"({exc}; is the disk full?); runs already stored are "
                                     "kept: free space and rerun the same command") from None
                if not recorded:
                    raise LeaseLost(run_id)
                if result.status in ("done", "diverged"):
                    discard_checkpoint(db, run_id)
                emit(Event(result.status, run, {"error": result.error or ""}))
            except StoreError:  # given back as pending, never stored as failed
                try:
                    store.release(run_id)
                except sqlite3.Error:
                    pass  # the lease expires, or the dead pid frees it, as after kill -9
                raise
            except LeaseLost:  # another process redoes it; write nothing more here
                log.warning("run %s (%s seed %d): another process took it over; stopped",
                            run_id, run.activation, run.seed)
                continue
            except Exception as exc:
                log.error("run %s (%s seed %d) failed:\n%s", run_id, run.activation, run.seed,
                          traceback.format_exc())
                store.record(RunResult.failed(run_id, repr(exc)))
                emit(Event("failed", run, {"error": repr(exc)}))
    except KeyboardInterrupt:
        # every run this process holds: Ctrl-C may also land between a claim's commit
        # and the line that names the run here
        try:
            store.release_held()
        except sqlite3.Error:
            pass  # the dead pid frees them on the next claim, as after kill -9
        raise
    finally:
        store.close()


def _die_with_parent(parent_pid: int) -> None:
    """Make this worker exit when the study's driver dies, even by ``kill -9``.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; then, for the race where the
    parent died before that call, a check that the parent is still ours.
    Elsewhere a watcher thread polls the parent pid. The runs this worker held
    are then reclaimed by the next study as for any dead process.
    """
    import sys

    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="learnact-parent-watch").start()


# a --jobs worker's exit code when results could not be written (e.g. a full disk)
RESULTS_UNWRITABLE = 3
# a --jobs worker's exit code when the driver stopped it (Ctrl-C): its runs are given back
STOPPED = 130


def storage_failure(exc: sqlite3.Error) -> bool:
    """Whether SQLite failed for want of space or of a writable disk, not for a bug.

    ``SQLITE_FULL``, ``SQLITE_IOERR`` (also what a ``ulimit -f`` gives) and
    ``SQLITE_READONLY``; a missing table or a constraint is a bug and keeps its
    traceback.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # raised by hand, or Python 3.10: only the message tells
        text = str(exc).lower()
        return any(w in text for w in ("disk", "full", "readonly", "read-only"))
    return code & 0xFF in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY)


def _stop_requested(signum, frame) -> None:
    """SIGTERM in a ``--jobs`` worker: unwind as Ctrl-C does (the runs are given back)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough
    raise KeyboardInterrupt


def worker_main(runs: list[RunSpec], db: str, data_dir: str | None, device: str,
                 lease_s: float, parent_pid: int | None = None, events=None) -> None:
    """A ``--jobs`` worker process: one torch thread, claims and trains runs until none is
    left. ``events``: the write end of a pipe of its own to the driver, which passes
    every progress event on to the study's callback; a pipe the driver closed only
    stops the events, never the training."""
    # Ctrl-C reaches the driver, which stops its workers with SIGTERM: a terminal's
    # SIGINT to the whole group is ignored here (it was blocked since the driver's
    # fork, see executors._sigint_blocked; one pending is dropped now), and SIGTERM
    # gives the runs held back as Ctrl-C does, then the worker leaves quietly
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGTERM, _stop_requested)
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    torch.set_num_threads(1)
    sending = [events is not None]

    def emit(event: Event) -> None:
        if sending[0]:
            try:
                events.send(event)
            except (OSError, ValueError):  # the driver is gone or closed its end
                sending[0] = False

    try:
        work_loop(runs, Path(db), data_dir, device, emit, lease_s)
    except KeyboardInterrupt:
        raise SystemExit(STOPPED) from None
    except StoreError as exc:  # one line, and an exit code the driver reads
        log.error("%s", exc)
        raise SystemExit(RESULTS_UNWRITABLE) from None
