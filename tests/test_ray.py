"""The Ray executor: same results as local, SIGKILL of the driver, and a started cluster.

All Ray use is in this file; the suite runs with ``--dist loadfile`` so these
tests share one worker and never race another test's Ray processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kill_cases import kill_after_first_checkpoint, last_epoch, one_run_study
from learnact.cli import main

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

ACTS = "relu,tanh,dual_line,gelu"
RAY_BIN = str(Path(sys.executable).with_name("ray"))


def args(npz, db, *extra, epochs=1):
    return ["study", "--dataset", npz, "--activations", ACTS, "--epochs", str(epochs),
            "--lr", "0.003", "--batch-size", "64", "--db", str(db), *extra]


def results(db):
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT r.run_id, r.activation, r.status, r.attempts, e.epoch, e.test_accuracy, "
            "e.test_loss, e.train_loss FROM runs r LEFT JOIN epochs e USING (run_id) "
            "ORDER BY r.run_id, e.epoch").fetchall()
    finally:
        con.close()


@pytest.fixture(autouse=True)
def _no_leftover_ray():
    yield
    ray.shutdown()  # a client left connected would use a dead cluster in the next test
    subprocess.run([RAY_BIN, "stop", "--force"], capture_output=True, check=False, timeout=60)


@pytest.mark.slow
def test_ray_matches_local(npz, tmp_path, capsys):
    local, remote = tmp_path / "local.db", tmp_path / "ray.db"
    # 1 torch thread per run on both sides, so CPU results are bit-identical
    assert main(args(npz, local, "--jobs", "2")) == 0
    start = time.perf_counter()
    assert main(args(npz, remote, "--executor", "ray", "--jobs", "2")) == 0
    ray_seconds = time.perf_counter() - start
    out = capsys.readouterr().out
    assert "4 runs: 4 done" in out
    a, b = results(local), results(remote)
    assert len(a) == 4 and a == b
    print(f"ray study wall time: {ray_seconds:.1f}s")
    # the same command again is a no-op for Ray too
    assert main(args(npz, remote, "--executor", "ray", "--jobs", "2")) == 0
    assert "4 already finished" in capsys.readouterr().out
    assert results(remote) == b


@pytest.mark.slow
def test_ray_driver_sigkill_then_rerun(slow_npz, tmp_path):
    db = tmp_path / "r.db"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "learnact.cli",
                             *args(slow_npz, db, "--executor", "ray", "--jobs", "2", epochs=2)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 240
    killed = False
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                done = [r for r in results(db) if r[2] == "done"]
            except sqlite3.OperationalError:
                done = []
            if done:
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
        time.sleep(0.1)
    proc.wait()
    assert killed, "the study finished before the driver could be killed"
    subprocess.run([RAY_BIN, "stop", "--force"], capture_output=True, check=False, timeout=60)
    assert main(args(slow_npz, db, "--executor", "ray", "--jobs", "2", epochs=2)) == 0
    rows = results(db)
    runs = {r[0]: r for r in rows}
    assert len(runs) == 4 and all(r[2] == "done" for r in runs.values())
    assert len(rows) == 4 * 2 and len({(r[0], r[4]) for r in rows}) == 8  # no duplicate epochs


@pytest.mark.slow
def test_ray_ctrl_c_gives_runs_back_and_resumes(slow_npz, tmp_path):
    db = tmp_path / "r.db"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "learnact.cli",
                             *args(slow_npz, db, "--executor", "ray", "--jobs", "2", epochs=2)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 240
    sent = False
    while time.time() < deadline and proc.poll() is None:
        try:
            statuses = [r[2] for r in results(db)] if db.exists() else []
        except sqlite3.OperationalError:
            statuses = []
        if "done" in statuses and "running" in statuses:
            proc.send_signal(signal.SIGINT)
            sent = True
            break
        time.sleep(0.1)
    _, err = proc.communicate(timeout=120)
    assert sent, "the study finished before Ctrl-C"
    assert proc.returncode == 130 and "interrupted" in err, err[-2000:]
    statuses = {r[0]: r[2] for r in results(db)}
    assert "running" not in statuses.values()  # in-flight runs were given back
    assert main(args(slow_npz, db, "--executor", "ray", "--jobs", "2", epochs=2)) == 0
    rows = results(db)
    assert {r[2] for r in rows} == {"done"} and len(rows) == 8


@pytest.mark.slow
@pytest.mark.parametrize("where", ["after a claim", "reading a result"])
def test_ray_ctrl_c_anywhere_in_the_driver_gives_every_held_run_back(npz, tmp_path, monkeypatch,
                                                                    where):
    """Ctrl-C lands where the driver's list of submitted tasks misses a held run: between
    a claim's commit and the task's submission, or while a finished task's result is
    read back (CI once saw a run left 'running' after Ctrl-C)."""
    from learnact.study import Store

    db = tmp_path / "r.db"
    if where == "after a claim":
        real_claim, calls = Store.claim, []

        def claim(self, run_ids):
            run_id = real_claim(self, run_ids)
            calls.append(run_id)
            if len(calls) == 2:  # the first run's task is submitted, the second's is not
                raise KeyboardInterrupt
            return run_id

        monkeypatch.setattr(Store, "claim", claim)
    else:
        calls = []

        def get(*a, **k):
            calls.append(a)
            raise KeyboardInterrupt

        monkeypatch.setattr(ray, "get", get)
    assert main(args(npz, db, "--executor", "ray", "--jobs", "2")) == 130
    assert len(calls) == (2 if where == "after a claim" else 1)  # the interrupt was reached
    statuses = {r[0]: r[2] for r in results(db)}
    # given back as pending, so the next command takes them at once (resuming is tested
    # above and in test_study_faults)
    assert "running" not in statuses.values() and "pending" in statuses.values(), statuses


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(not Path(RAY_BIN).exists() and shutil.which("ray") is None,
                    reason="needs the ray command")
def test_ray_cluster_by_address(npz, tmp_path, capsys):
    """A cluster `ray start` began, with token authentication (Ray's default where a
    token exists), studied by address; a client without the token gets an error
    naming the fix, no traceback; a study without --address starts a Ray of its own."""
    port = _free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    plain = {**clean, "RAY_USAGE_STATS_ENABLED": "0"}
    # the cluster and the subprocess clients take the token from the environment (an
    # in-process local Ray, as in other tests, may still create ~/.ray/auth_token)
    authed = {**plain, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(16).hex()}
    start = subprocess.run(
        [RAY_BIN, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1",
         "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats"],
        capture_output=True, text=True, env=authed, timeout=120, check=False)
    assert start.returncode == 0, start.stderr[-2000:]

    def study(db, env, *extra):
        return subprocess.run([sys.executable, "-m", "learnact.cli",
                               *args(npz, db, "--executor", "ray", *extra)],
                              capture_output=True, text=True, env=env, timeout=300, check=False)

    try:
        db = tmp_path / "r.db"
        ok = study(db, authed, "--address", f"127.0.0.1:{port}")
        assert ok.returncode == 0 and "4 runs: 4 done" in ok.stdout, ok.stderr[-2000:]
        refused = study(tmp_path / "no-token.db", plain, "--address", f"127.0.0.1:{port}")
        # Ray's own retry warnings come first (its C++ client writes them); ours is last
        err = refused.stderr.strip().splitlines()
        assert refused.returncode == 2, refused.stderr[-3000:]
        assert err[-1].startswith("learnact study: error: the Ray cluster at 127.0.0.1:")
        assert "token authentication: set RAY_AUTH_MODE=token" in err[-1]
        assert "Traceback" not in refused.stderr
        # without --address the study starts a Ray of its own: it neither joins the
        # cluster `ray start` left behind (which fails, as num_cpus is given) nor stops it
        assert main(args(npz, tmp_path / "own.db", "--executor", "ray", "--jobs", "2")) == 0
        assert "4 runs: 4 done" in capsys.readouterr().out
        assert subprocess.run(["pgrep", "-f", f"gcs_server.*{port}"], capture_output=True,
                              check=False).returncode == 0, "the started cluster was stopped"
    finally:
        subprocess.run([RAY_BIN, "stop", "--force"], capture_output=True, env=plain, timeout=120,
                       check=False)
    assert {r[2] for r in results(db)} == {"done"}
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", f"gcs_server.*{port}"], capture_output=True, text=True,
                          check=False).stdout.strip()
    assert not left, f"Ray processes left behind: {left}"


def test_ray_connect_failures_read_as_one_line():
    from learnact.study.executors import _connect_failure

    try:
        try:
            raise RuntimeError("Failed to connect to GCS.\nray.exceptions.AuthenticationError: "
                               "RPC error: InvalidAuthToken: missing")
        except RuntimeError as inner:
            raise ConnectionError("Failed to connect to Ray cluster at 10.0.0.1:6379") from inner
    except ConnectionError as exc:
        auth = _connect_failure("10.0.0.1:6379", exc)
    assert auth.startswith("the Ray cluster at 10.0.0.1:6379 asks for token authentication")
    other = _connect_failure("h:1", ConnectionError("\nno route to host\nmore detail"))
    assert other == "cannot connect to the Ray cluster at h:1 (no route to host)"
    assert _connect_failure("h:1", TimeoutError()) == (
        "cannot connect to the Ray cluster at h:1 (TimeoutError)")


def test_ray_missing_is_a_one_line_error(npz, tmp_path, capsys, monkeypatch):
    from learnact.study import executors

    def missing():
        raise executors.RayMissing("--executor ray needs Ray: pip install 'learnact[ray]'")

    monkeypatch.setattr(executors.RayExecutor, "import_ray", staticmethod(missing))
    assert main(args(npz, tmp_path / "r.db", "--executor", "ray")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'learnact[ray]'" in err[0]
    assert not (tmp_path / "r.db").exists()


def test_ray_flags_need_ray(npz, tmp_path, capsys):
    assert main(args(npz, tmp_path / "r.db", "--address", "auto")) == 2
    assert "need --executor ray" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_continues_a_killed_run_from_its_checkpoint(slow_npz, tmp_path):
    """Checkpoints sit beside the database (DB.checkpoints/), where Ray tasks read them:
    a run killed between epochs by a local study is continued by a Ray task, to the
    uninterrupted result (one torch thread everywhere)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = tmp_path / "whole.db"
    subprocess.run(one_run_study(whole, slow_npz), env=env, check=True, capture_output=True,
                   timeout=300)
    db = tmp_path / "killed.db"
    ckpts = kill_after_first_checkpoint(db, slow_npz, env)
    out = subprocess.run(one_run_study(db, slow_npz, "--executor", "ray", "--cpus-per-run", "1"),
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "resume dual_line seed 0 from its checkpoint after epoch" in out.stdout
    assert last_epoch(db) == last_epoch(whole) and last_epoch(db)[3] == "done"
    assert not any(ckpts.glob("*.pt"))
