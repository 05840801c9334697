"""Where a study's runs execute: local processes (default) or a Ray cluster.

Both executors go through the same results database on the machine that runs
``learnact study``: runs are claimed there, so finished runs are skipped and
none is trained twice, whichever executor ran them.

- :class:`LocalExecutor`: this process (``jobs=1``) or ``jobs`` spawned worker
  processes that claim runs from the database themselves. A worker that dies
  (``kill -9``, the OOM killer, a crash) is replaced while runs are left, up
  to ``2 * jobs`` times; its run is reclaimed at once by the replacement. If
  runs are still unfinished when no worker is left, :class:`WorkersDied` says
  how many and why, rather than a study that looks finished.
- :class:`RayExecutor`: the driver claims runs and submits each as a Ray task
  (with ``num_cpus``/``num_gpus`` per run, fractional GPUs allowed). Workers
  train without touching the database and return a
  :class:`~learnact.study.types.RunResult`; the driver writes it with
  :meth:`~learnact.study.store.Store.record` in one transaction, so a driver
  killed by SIGKILL loses no completed run and its in-flight runs are redone
  on the next invocation.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import socket
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import ConfigError, StoreError
from .types import Event, RunResult
from .worker import (
    RESULTS_UNWRITABLE,
    STOPPED,
    checkpoint_dir,
    discard_checkpoint,
    execute_run,
    resolve_device,
    work_loop,
    worker_main,
)

__all__ = ["ExecutorContext", "LocalExecutor", "RayExecutor", "RayMissing", "WorkersDied"]

log = logging.getLogger(__name__)


class RayMissing(ImportError):
    """``--executor ray`` without Ray installed."""


class WorkersDied(RuntimeError):
    """``--jobs`` workers died and left runs unfinished; a rerun resumes them."""

    def __init__(self, deaths: list[str], unfinished: int, total: int) -> None:
        shown = ", ".join(sorted(set(deaths)))
        super().__init__(f"{len(deaths)} worker process(es) died ({shown}) and {unfinished} "
                         f"of {total} runs did not finish; finished runs are kept: rerun the "
                         "same command to resume")
        self.deaths, self.unfinished, self.total = deaths, unfinished, total


def _how(exitcode: int | None) -> str:
    """``killed by SIGKILL`` or ``exit code 1``: how a worker process ended."""
    if exitcode == STOPPED:
        return "stopped by SIGTERM; its runs were given back"
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


@dataclass
class ExecutorContext:
    """What an executor needs to run a study's runs."""

    runs: list          # RunSpec
    db: Path
    data_dir: str | None
    device: str
    emit: Callable
    poll: Callable[[int, int], None] | None
    lease_s: float


class LocalExecutor:
    """Runs in this process (``jobs=1``) or in ``jobs`` spawned processes."""

    def __init__(self, jobs: int = 1) -> None:
        if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
            raise ConfigError(f"jobs must be a positive integer, got {jobs!r}")
        self.jobs = jobs

    def run(self, ctx: ExecutorContext) -> None:
        from .store import Store

        if self.jobs == 1:
            work_loop(ctx.runs, ctx.db, ctx.data_dir, ctx.device, ctx.emit, ctx.lease_s)
            return
        ids = [r.run_id for r in ctx.runs]
        spawn = mp.get_context("spawn")

        readers: list = []  # one pipe per worker: a worker killed mid-event hurts only its own

        def start():
            # workers die with this process (kill -9 included): see worker._die_with_parent
            recv, send = spawn.Pipe(duplex=False)
            p = spawn.Process(target=worker_main, args=(ctx.runs, str(ctx.db), ctx.data_dir,
                                                        ctx.device, ctx.lease_s, os.getpid(),
                                                        send))
            # a terminal's Ctrl-C goes to the whole process group: the workers start with
            # SIGINT blocked (inherited through exec) and then ignore it; this process
            # stops them with SIGTERM instead, so none dies mid-import with a traceback.
            # A Ctrl-C during the start is delivered here once it is unblocked.
            with _sigint_blocked():
                p.start()
                procs.append(p)
                send.close()  # the worker holds the only write end: its death is EOF here
                readers.append(recv)

        def forward(timeout: float) -> None:
            """Pass the workers' progress events to ``ctx.emit`` for up to ``timeout`` s."""
            end = time.monotonic() + timeout
            while readers:
                left = end - time.monotonic()
                ready = mp.connection.wait(readers, timeout=max(left, 0))
                if not ready:
                    return
                for r in ready:
                    try:
                        ctx.emit(r.recv())
                    except (EOFError, OSError):  # that worker is gone
                        readers.remove(r)
                        r.close()

        procs: list = []
        store = None
        deaths: list[str] = []
        unwritable = False
        replacements = 2 * self.jobs
        try:
            for _ in range(self.jobs):
                start()
            store = Store(ctx.db, lease_s=ctx.lease_s)
            while procs:
                for p in [p for p in procs if not p.is_alive()]:
                    p.join()  # reaped: its pid is gone, so its run can be reclaimed at once
                    procs.remove(p)
                    if p.exitcode == 0:
                        continue
                    if p.exitcode == RESULTS_UNWRITABLE:  # a full disk: another would fail too
                        unwritable = True
                        continue
                    deaths.append(_how(p.exitcode))
                    if _unfinished(store, ids) and replacements > 0:
                        replacements -= 1
                        log.warning("learnact: worker process %d died (%s); starting another, "
                                    "which redoes its run", p.pid, deaths[-1])
                        start()
                    else:
                        log.warning("learnact: worker process %d died (%s)", p.pid, deaths[-1])
                if ctx.poll is not None:
                    ctx.poll(len(store.finished(ids)), len(ids))
                if procs:
                    forward(1.0)
            forward(0.0)  # what the last workers sent before they exited
            if unwritable:
                raise StoreError(f"{ctx.db}: finished runs' results could not be written (is "
                                 "the disk full?); runs already stored are kept: free space "
                                 "and rerun the same command")
            left = _unfinished(store, ids)
            if deaths and left:
                raise WorkersDied(deaths, left, len(ids))
        except BaseException:  # Ctrl-C (to this process alone or to the group), ...
            for p in procs:
                if p.is_alive():
                    p.terminate()  # each gives its runs back and exits (worker.STOPPED)
            raise
        finally:
            for p in procs:
                p.join(60)
                if p.is_alive():  # stuck where SIGTERM cannot reach (C code): its runs
                    p.kill()      # are reclaimed as after kill -9 (its pid is gone)
                    p.join()
            for r in readers:
                r.close()
            if store is not None:
                store.close()


@contextlib.contextmanager
def _sigint_blocked():
    """SIGINT blocked in this thread while a child process starts: the child inherits
    the mask through fork and exec (a ``--jobs`` worker then ignores SIGINT), and a
    Ctrl-C that arrives meanwhile is delivered here when the block ends, not lost."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no masks, no process groups
        yield
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _unfinished(store, ids: list[str]) -> int:
    """How many of ``ids`` are pending or running."""
    counts = store.counts(ids)
    return counts.get("pending", 0) + counts.get("running", 0)


@lru_cache(maxsize=4)
def _cached_data(dataset: str, data_dir: str | None, train_limit: int | None,
                 image_size: int | None, device: str):
    from ..data.loader import load_dataset

    return load_dataset(dataset, data_dir=data_dir, device=resolve_device(device),
                        train_limit=train_limit, image_size=image_size, progress=False)


def _remote_train(run, data_dir: str | None, device: str, threads: int,
                  checkpoints: str | None = None) -> RunResult:
    """Body of one Ray task: train ``run`` and return its result (never raises).

    ``checkpoints``: the database's checkpoint folder, which a task on another
    node reaches only on a shared file system; a task that cannot write there
    still trains (each failed write is a warning) but cannot resume.
    """
    import traceback

    import torch

    torch.set_num_threads(max(1, threads))
    try:
        data = _cached_data(run.dataset, data_dir, run.config.data.train_limit,
                            run.config.data.image_size, device)
        return execute_run(run, data, resolve_device(device), lambda e: None,
                           checkpoints=Path(checkpoints) if checkpoints else None)
    except Exception as exc:
        log.error("run %s failed in a Ray worker:\n%s", run.run_id, traceback.format_exc())
        return RunResult.failed(run.run_id, repr(exc))


def _connect_failure(address: str, exc: BaseException) -> str:
    """One line on why ``ray.init(address=...)`` failed, naming the fix for token auth.

    Ray (2.52 and later) turns token authentication on for clusters started where a
    token exists, but a client given an explicit address sends its token only when
    ``RAY_AUTH_MODE=token`` is set, so it is refused with a long traceback.
    """
    text, cause = "", exc
    while cause is not None and len(text) < 20_000:
        text += f"{type(cause).__name__}: {cause}\n"
        cause = cause.__cause__ or cause.__context__
    if "InvalidAuthToken" in text or "AuthenticationError" in text:
        return (f"the Ray cluster at {address} asks for token authentication: set "
                "RAY_AUTH_MODE=token, with the cluster's token in $RAY_AUTH_TOKEN, "
                "$RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token")
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()),
                 type(exc).__name__)
    return f"cannot connect to the Ray cluster at {address} ({first[:300]})"


class RayExecutor:
    """Runs each run as a Ray task and writes the results on the driver.

    Args:
        address: ``None`` starts a new local Ray with ``num_cpus`` (never joining a
            cluster already running on the machine); otherwise
            ``auto``, ``HOST:PORT`` or ``ray://HOST:PORT`` of a running cluster.
        num_cpus: CPUs of the local Ray started when ``address`` is ``None``.
        cpus_per_run: CPUs each task reserves (and its torch thread count).
        gpus_per_run: GPUs each task reserves; fractions share a GPU.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 cpus_per_run: int = 1, gpus_per_run: float = 0.0) -> None:
        if isinstance(cpus_per_run, bool) or not isinstance(cpus_per_run, int) or cpus_per_run < 1:
            raise ConfigError(f"cpus-per-run must be a positive integer, got {cpus_per_run!r}")
        if not gpus_per_run >= 0:
            raise ConfigError(f"gpus-per-run must be >= 0, got {gpus_per_run!r}")
        self.address, self.num_cpus = address, num_cpus
        self.cpus_per_run, self.gpus_per_run = cpus_per_run, float(gpus_per_run)

    def check_address(self, timeout: float = 30.0) -> None:
        """Fail fast, before any database is touched, when ``address`` cannot be a cluster.

        ``HOST:PORT`` and ``ray://HOST:PORT`` must accept a TCP connection within
        ``timeout`` seconds (Ray's own client retries for minutes); ``auto``
        needs ``$RAY_ADDRESS`` or a cluster started on this machine. Raises
        ``ValueError`` with one line saying which and why.
        """
        address = self.address
        if address is None:
            return
        if address == "auto":
            if os.environ.get("RAY_ADDRESS") or Path("/tmp/ray/ray_current_cluster").exists():
                return
            raise ConfigError("--address auto found no running Ray cluster on this machine "
                             "(start one with `ray start --head`, or give HOST:PORT)")
        hostport = address.removeprefix("ray://")
        host, sep, port = hostport.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--address must be auto, HOST:PORT or ray://HOST:PORT, "
                             f"got {address!r}")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            if isinstance(exc, TimeoutError) or isinstance(exc, socket.timeout):
                reason = f"no answer within {timeout:g} s"
            raise ConfigError(f"cannot reach the Ray cluster at {address} ({reason})") from None

    @staticmethod
    def import_ray():
        """Import Ray, with usage stats off unless the user chose otherwise."""
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            import ray
        except ImportError as exc:
            raise RayMissing("--executor ray needs Ray: pip install 'learnact[ray]'") from exc
        return ray

    def run(self, ctx: ExecutorContext) -> None:
        from .store import Store

        ray = self.import_ray()
        started = False
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False,
                      "configure_logging": False}
            if self.address is None:
                # "local": a new Ray of our own, never a cluster that `ray start` or
                # $RAY_ADDRESS left on this machine (joining one with num_cpus fails)
                ray.init(address="local", num_cpus=self.num_cpus or os.cpu_count(), **kwargs)
            else:
                try:
                    ray.init(address=self.address, **kwargs)
                except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ...
                    raise ConfigError(_connect_failure(self.address, exc)) from exc
            started = True
        store = None
        try:
            remote = ray.remote(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                                max_retries=0)(_remote_train)
            by_id = {r.run_id: r for r in ctx.runs}
            ids = list(by_id)
            store = Store(ctx.db, lease_s=ctx.lease_s)
            capacity = max(1, int(ray.cluster_resources().get("CPU", 1) // self.cpus_per_run))
            self._drive(ctx, ray, remote, store, by_id, ids, capacity)
        finally:
            if store is not None:
                store.close()
            if started:
                ray.shutdown()

    def _drive(self, ctx: ExecutorContext, ray, remote, store, by_id: dict, ids: list[str],
               capacity: int) -> None:
        """Submit claimed runs, at most ``capacity`` at once, and record their results."""
        pending: dict = {}
        unfinished: list = []  # every submitted task not yet read back, even before ``pending``
        try:
            while True:
                while len(pending) < capacity:
                    run_id = store.claim(ids)
                    if run_id is None:
                        break
                    run = by_id[run_id]
                    unfinished.append(remote.remote(run, ctx.data_dir, ctx.device,
                                                    self.cpus_per_run,
                                                    str(checkpoint_dir(ctx.db))))
                    pending[unfinished[-1]] = run
                    ctx.emit(Event("start", run))
                if not pending:
                    return
                done, _ = ray.wait(list(pending), num_returns=1, timeout=ctx.lease_s / 3)
                for run in pending.values():
                    store.heartbeat(run.run_id)
                for ref in done:
                    run = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:  # worker died, task error, ...
                        result = RunResult.failed(run.run_id, repr(exc))
                    unfinished.remove(ref)
                    if result.resumed_after is not None:
                        ctx.emit(Event("resume", run, {"epoch": result.resumed_after}))
                    for metrics in result.epochs:
                        ctx.emit(Event("epoch", run, {**metrics, "lr": result.lr}))
                    if store.record(result):
                        if result.status in ("done", "diverged"):
                            discard_checkpoint(ctx.db, run.run_id)
                        ctx.emit(Event(result.status, run, {"error": result.error or ""}))
                    else:
                        log.warning("run %s: its lease was lost; another process redoes it",
                                    run.run_id)
        except BaseException:  # Ctrl-C, SIGTERM's SystemExit, a store or cluster error
            for ref in unfinished:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # a task that already ended, a cluster going down
                    pass
            # every run this driver holds, not only those in ``pending``: an interrupt may
            # land between a claim and its task's submission, or while a result is read back
            try:
                store.release_held()
            except sqlite3.Error:
                pass  # the lease expires, or the dead pid frees them, as after kill -9
            raise
