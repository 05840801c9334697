"""The study runner and its database: resume, kill -9, concurrency, divergence, bad input."""

from __future__ import annotations

import csv
import io
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

from learnact._pids import pid_alive
from learnact.cli import main
from learnact.study import Store, StudyConfig, expand_runs, load_preset
from learnact.study.store import LeaseLost, StoreError
from learnact.study.types import RunResult

ACTS = "relu,tanh,dual_line,gelu"


def study_args(npz, db, acts=ACTS, epochs=2, extra=()):
    return ["study", "--dataset", npz, "--model", "lenet5", "--activations", acts,
            "--epochs", str(epochs), "--lr", "0.003", "--batch-size", "64", "--db", str(db),
            *extra]


def rows(db):
    con = sqlite3.connect(db)
    try:
        runs = con.execute("SELECT run_id, activation, seed, status, attempts FROM runs").fetchall()
        epochs = con.execute("SELECT run_id, epoch FROM epochs").fetchall()
        return runs, epochs
    finally:
        con.close()


def test_presets_load_and_quick_is_the_default():
    quick = load_preset("quick")
    assert quick.data.dataset == "fashion-mnist" and quick.model.name == "lenet5"
    assert quick.activations == ("relu", "leaky_relu", "prelu", "gelu", "swish", "mish",
                                 "dp_relu", "dual_line")
    wrn = load_preset("paper-wrn-cifar10")
    t = wrn.training
    assert (t.batch_size, t.epochs, t.mixup_alpha, t.augment) == (512, 24, 0.4, "flip_crop")
    for name in ("paper-lenet5-mnist", "paper-lenet4-mnist", "fashion-lenet5"):
        assert load_preset(name).seeds == 5
    with pytest.raises(ValueError, match="unknown preset 'nope'; choose one of"):
        load_preset("nope")


def test_run_ids_are_deterministic_and_distinct():
    cfg = StudyConfig.from_settings(dict(activations=("relu", "dual_*"), seeds=2))
    a, b = expand_runs(cfg), expand_runs(cfg)
    assert [r.run_id for r in a] == [r.run_id for r in b]
    assert len({r.run_id for r in a}) == len(a) == 6
    changed = expand_runs(StudyConfig.from_settings(
        dict(activations=("relu", "dual_*"), seeds=2, epochs=2)))
    assert not {r.run_id for r in a} & {r.run_id for r in changed}
    on_gpu = expand_runs(StudyConfig.from_settings(
        dict(activations=("relu", "dual_*"), seeds=2, device="cuda")))
    assert [r.run_id for r in on_gpu] == [r.run_id for r in a]


@pytest.mark.slow
def test_study_stores_everything_and_resumes(npz, tmp_path, capsys):
    db = tmp_path / "r.db"
    assert main(study_args(npz, db, acts="relu,dual_line", extra=["--seeds", "2"])) == 0
    out = capsys.readouterr().out
    assert "4 runs: 4 done" in out and "rank" in out and "dual_line" in out
    runs, epochs = rows(db)
    assert len(runs) == 4 and {r[3] for r in runs} == {"done"}
    assert len(epochs) == 8
    con = sqlite3.connect(db)
    params = con.execute("SELECT DISTINCT path, param, site_index FROM act_params "
                         "WHERE epoch = -1 ORDER BY site_index, param").fetchall()
    env = con.execute("SELECT env FROM runs LIMIT 1").fetchone()[0]
    con.close()
    assert len(params) == 4 * 3  # 4 sites x (pos_slope, neg_slope, mean_shift)
    assert params[0][0] == "features.1"
    assert '"torch"' in env and '"learnact"' in env
    # the same command again trains nothing: every run keeps its attempt count
    assert main(study_args(npz, db, acts="relu,dual_line", extra=["--seeds", "2"])) == 0
    assert "4 already finished" in capsys.readouterr().out
    assert rows(db)[0] == runs


def test_results_csv_columns(npz, tmp_path, capsys):
    db = tmp_path / "r.db"
    main(study_args(npz, db, acts="relu", epochs=1))
    capsys.readouterr()
    assert main(["results", "--db", str(db), "--format", "csv"]) == 0
    table = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(table[0]) == ["activation", "model", "dataset", "seed", "status", "flags",
                              "epochs", "lr", "lr_path", "test_accuracy", "test_top5",
                              "test_loss", "train_loss", "epoch_seconds", "lr_reason", "error"]
    assert table[0]["activation"] == "relu" and table[0]["status"] == "done"
    assert float(table[0]["lr"]) == 0.003 and table[0]["epochs"] == "1"


@pytest.mark.slow
def test_lr_find_is_recorded(slow_npz, tmp_path):
    # 6,000 images: 47 batches an epoch, enough for the finder's curve to be trusted
    db = tmp_path / "r.db"
    args = study_args(slow_npz, db, acts="dual_line", epochs=1)
    args[args.index("--lr") + 1] = "find"
    assert main(args) == 0
    con = sqlite3.connect(db)
    method, suggestion, lrs = con.execute(
        "SELECT method, suggestion, lrs FROM lr_find").fetchone()
    run_lr = con.execute("SELECT lr FROM runs").fetchone()[0]
    path, problems = con.execute("SELECT path, problems FROM lr_choice").fetchone()
    con.close()
    assert method == "edge" and len(lrs) > 10
    assert (path, problems) == ("finder", "[]") and suggestion == run_lr


def test_nan_gives_diverged_and_the_study_goes_on(npz, tmp_path, capsys):
    db = tmp_path / "r.db"
    args = study_args(npz, db, acts="relu,tanh", epochs=2)
    args[args.index("--lr") + 1] = "1e9"
    assert main(args) == 0
    runs, _ = rows(db)
    assert sorted(r[3] for r in runs) == ["diverged", "diverged"]
    con = sqlite3.connect(db)
    errors = [r[0] for r in con.execute("SELECT error FROM runs")]
    con.close()
    assert all("not finite" in e for e in errors)
    assert "2 diverged" in capsys.readouterr().out


def _study_proc(npz, db, acts=ACTS, epochs=2):
    """A study in a subprocess; its stderr goes to a file (``proc.err``), never to a pipe
    nobody reads while the test polls, which would block a talkative child."""
    err = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "learnact.cli",
                             *study_args(npz, db, acts=acts, epochs=epochs)],
                            stdout=subprocess.DEVNULL, stderr=err,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    proc.err = err
    return proc


def _stderr(proc) -> str:
    proc.err.seek(0)
    return proc.err.read().decode(errors="replace")[-3000:]


@pytest.mark.slow
def test_kill_9_mid_study_then_resume(slow_npz, tmp_path):
    db = tmp_path / "r.db"
    proc = _study_proc(slow_npz, db)
    deadline = time.time() + 120
    killed_while_running = False
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                runs, epochs = rows(db)
            except sqlite3.OperationalError:
                runs, epochs = [], []
            done = [r for r in runs if r[3] == "done"]
            running = [r for r in runs if r[3] == "running"]
            if done and running:
                os.kill(proc.pid, signal.SIGKILL)
                killed_while_running = True
                break
        time.sleep(0.05)
    proc.wait()
    assert killed_while_running, "the study finished before it could be killed"
    runs, _ = rows(db)
    assert any(r[3] == "running" for r in runs)
    # the next invocation reclaims the dead process's run at once and redoes it cleanly
    assert main(study_args(slow_npz, db)) == 0
    runs, epochs = rows(db)
    assert len(runs) == 4 and all(r[3] == "done" for r in runs)
    assert len(epochs) == len(set(epochs)) == 4 * 2
    assert max(r[4] for r in runs) == 2  # the killed run was attempted twice


@pytest.mark.slow
def test_two_concurrent_studies_share_the_work(slow_npz, tmp_path):
    db = tmp_path / "r.db"
    Store(db).close()  # both start on an existing database
    procs = [_study_proc(slow_npz, db, epochs=1) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, _stderr(p)
    runs, epochs = rows(db)
    assert len(runs) == 4 and all(r[3] == "done" for r in runs)
    assert all(r[4] == 1 for r in runs), "a run was trained twice"
    assert len(epochs) == 4


@pytest.mark.slow
def test_jobs_runs_in_parallel_processes(npz, tmp_path, capsys):
    db = tmp_path / "r.db"
    assert main(study_args(npz, db, epochs=1, extra=["--jobs", "2"])) == 0
    runs, epochs = rows(db)
    assert len(runs) == 4 and all(r[3] == "done" and r[4] == 1 for r in runs)
    assert len(epochs) == 4


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--preset", "nope"], "unknown preset 'nope'; choose one of"),
        (["--activations", "reluu"], "unknown activation 'reluu'; closest: relu"),
        (["--model", "vgg"], "model must be one of lenet4, lenet5"),
        (["--dataset", "imagenet"], "dataset must be one of cifar10"),
        (["--seeds", "0"], "seeds must be a positive integer"),
        (["--epochs", "-1"], "epochs must be a positive integer"),
        (["--batch-size", "0"], "batch-size must be a positive integer"),
        (["--lr", "fast"], "lr must be a positive finite number, 'find' or 'tune', got 'fast'"),
        (["--jobs", "0"], "jobs must be a positive integer, got 0"),
    ],
)
def test_bad_input_one_line_exit_2_db_untouched(flags, message, tmp_path, capsys):
    db = tmp_path / "r.db"
    with pytest.raises(SystemExit) if "invalid choice" in message else _nothing():
        code = main(["study", "--db", str(db), *flags])
        assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    if "invalid choice" not in message:
        assert len(err) == 1
    assert not db.exists()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_missing_or_corrupt_dataset_is_exit_2_before_the_db(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    db = tmp_path / "r.db"
    assert main(["study", "--db", str(db), "--dataset", str(tmp_path / "none.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    assert main(["study", "--db", str(db), "--dataset", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.npz: not a readable .npz" in err[0]
    assert not db.exists()


def test_unreadable_database(npz, tmp_path, capsys):
    db = tmp_path / "r.db"
    db.write_bytes(b"this is not sqlite" * 100)
    before = db.read_bytes()
    assert main(["study", "--db", str(db), "--activations", "relu", "--dataset", npz]) == 2
    assert "not a readable SQLite database" in capsys.readouterr().err
    assert main(["results", "--db", str(db)]) == 2
    assert db.read_bytes() == before
    assert main(["results", "--db", str(tmp_path / "missing.db")]) == 2
    assert "no results database" in capsys.readouterr().err
    with pytest.raises(StoreError):
        Store(db)


def test_lease_expiry_lets_another_process_reclaim(tmp_path):
    db = tmp_path / "r.db"
    a = Store(db, lease_s=60)
    run = expand_runs(StudyConfig.from_settings(dict(activations=("relu",))))[0]
    a.add_runs([run.as_row()])
    assert a.claim([run.run_id]) == run.run_id
    b = Store(db, lease_s=60)
    b.host = "another-host"  # cannot check the owner's pid: must wait for the lease
    assert b.claim([run.run_id]) is None
    with sqlite3.connect(db) as con:  # the lease runs out (no sleep: a slow disk cannot race it)
        con.execute("UPDATE runs SET lease_until = ? WHERE run_id = ?",
                    (time.time() - 1, run.run_id))
    assert b.claim([run.run_id]) == run.run_id
    assert not a.heartbeat(run.run_id)  # a lost it
    # the process that lost its lease cannot overwrite the new owner's rows
    assert not a.record(_result(run.run_id, 0.0))
    assert b.record(RunResult(run.run_id, "done", lr=0.1, epochs=[
        {"epoch": 0, "train_loss": 1.0, "test_loss": 1.0, "test_accuracy": 0.5,
         "test_top5": 0.9, "seconds": 1.0}]))
    assert not a.record(_result(run.run_id, 0.0))
    con = sqlite3.connect(db)
    assert con.execute("SELECT test_accuracy FROM epochs").fetchall() == [(0.5,)]
    assert con.execute("SELECT COUNT(*) FROM act_params").fetchone()[0] == 0
    assert con.execute("SELECT COUNT(*) FROM lr_find").fetchone()[0] == 0
    con.close()
    a.close()
    b.close()


@pytest.mark.slow
def test_kill_9_of_the_driver_takes_its_jobs_workers_down(slow_npz, tmp_path):
    db = tmp_path / "r.db"
    proc = subprocess.Popen([sys.executable, "-m", "learnact.cli",
                             *study_args(slow_npz, db, epochs=3, extra=("--jobs", "2"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.time() + 120
    workers: set[int] = set()
    while time.time() < deadline and proc.poll() is None and len(workers) < 2:
        if db.exists():
            try:
                con = sqlite3.connect(db)
                workers = {r[0] for r in con.execute(
                    "SELECT pid FROM runs WHERE status = 'running' AND pid IS NOT NULL")}
                con.close()
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    assert len(workers) == 2, "both workers should be training"
    assert proc.pid not in workers
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(pid_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(pid_alive(pid) for pid in workers), "orphaned workers kept training"


@pytest.mark.slow
def test_a_rerun_retries_failed_runs_and_counts_the_attempt(npz, tmp_path, capsys):
    db = tmp_path / "r.db"
    args = study_args(npz, db, acts="relu,dual_line", epochs=1)
    assert main(args) == 0
    con = sqlite3.connect(db)
    failed_id = con.execute("SELECT run_id FROM runs WHERE activation = 'relu'").fetchone()[0]
    # as a run that failed (bad data, since fixed) leaves it
    con.execute("UPDATE runs SET status = 'failed', error = 'RuntimeError()' WHERE run_id = ?",
                (failed_id,))
    con.execute("DELETE FROM epochs WHERE run_id = ?", (failed_id,))
    con.commit()
    con.close()
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "1 failed before, retried" in out
    runs, epochs = rows(db)
    status = {r[0]: (r[3], r[4]) for r in runs}
    assert status[failed_id] == ("done", 2)  # attempted twice
    assert all(s == "done" for s, _ in status.values())
    assert len(epochs) == 2


def _result(run_id: str, acc: float):
    from learnact.study.types import LRFindRecord, RunResult

    return RunResult(
        run_id, "done", lr=0.01, env={"torch": "x"},
        lr_find=LRFindRecord("valley", 0.01, [1e-3, 1e-2], [2.3, 2.0]),
        epochs=[{"epoch": e, "train_loss": 1.0, "test_loss": 1.1, "test_accuracy": acc,
                 "test_top5": 0.9, "seconds": 1.0} for e in range(2)],
        params=[(-1, [(0, "act", None, None, "pos_slope", 0, 1.5)])])


def test_record_writes_a_whole_result_only_while_the_run_is_held(tmp_path):
    db = tmp_path / "r.db"
    a = Store(db, lease_s=0.2)
    run = expand_runs(StudyConfig.from_settings(dict(activations=("relu",))))[0]
    a.add_runs([run.as_row()])
    assert a.claim([run.run_id]) == run.run_id
    with sqlite3.connect(db) as con:  # a partial row, as an older release could leave one
        con.execute("INSERT INTO epochs VALUES (?, 0, 1.0, 1.0, 0.1, 0.9, 1.0)", (run.run_id,))
    b = Store(db, lease_s=0.2)
    b.host = "another-host"
    time.sleep(0.3)
    assert b.claim([run.run_id]) == run.run_id
    assert not a.record(_result(run.run_id, 0.0))  # lost its lease: writes nothing
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 0  # cleared on reclaim
    assert b.record(_result(run.run_id, 0.75))
    assert con.execute("SELECT epoch, test_accuracy FROM epochs ORDER BY epoch").fetchall() == [
        (0, 0.75), (1, 0.75)]
    assert con.execute("SELECT method, suggestion FROM lr_find").fetchall() == [("valley", 0.01)]
    assert con.execute("SELECT value FROM act_params").fetchall() == [(1.5,)]
    assert con.execute("SELECT status, lr FROM runs").fetchall() == [("done", 0.01)]
    assert not b.record(_result(run.run_id, 0.5))  # finished: no longer held


def test_a_run_whose_lease_is_lost_stops_at_the_next_epoch(npz):
    from torch import device as torch_device

    from learnact.data import load_dataset
    from learnact.study.worker import execute_run

    cfg = StudyConfig.from_settings(dict(activations=("relu",), epochs=3, lr=0.01, dataset=npz))
    run = expand_runs(cfg)[0]
    data = load_dataset(npz)
    seen = []
    with pytest.raises(LeaseLost):
        execute_run(run, data, torch_device("cpu"), lambda e: seen.append(e.kind),
                    stop=lambda: len(seen) >= 1)
    assert seen == ["epoch"]  # stopped after the first of three epochs


@pytest.mark.slow
def test_the_learning_rate_is_chosen_without_the_test_split(npz):
    """A planted test split (noise, shuffled labels) leaves the chosen rate unchanged."""
    import dataclasses

    import torch

    from learnact.data import load_dataset
    from learnact.study.worker import execute_run

    run = expand_runs(StudyConfig.from_settings(
        dict(activations=("dual_line",), dataset=npz, epochs=1)))[0]
    assert run.settings["lr"] == "find" and run.settings["lr_method"] == "edge"
    data = load_dataset(npz)
    g = torch.Generator().manual_seed(1)
    planted = dataclasses.replace(
        data, x_test=torch.randn(data.x_test.shape, generator=g) * 50,
        y_test=data.y_test[torch.randperm(len(data.y_test), generator=g)])
    a = execute_run(run, data, torch.device("cpu"), lambda e: None)
    b = execute_run(run, planted, torch.device("cpu"), lambda e: None)
    assert a.lr_find.suggestion == b.lr_find.suggestion and a.lr == b.lr
    assert a.lr_find.losses == b.lr_find.losses
    # tiny data: the finder's curve is not trusted and the rate is tuned, on a split of
    # the training set, so the tuning table is unchanged by the plant too
    assert a.lr_choice.path == "tune" and a.lr_choice.tune == b.lr_choice.tune
    assert a.epochs[0]["test_accuracy"] != b.epochs[0]["test_accuracy"]  # the plant took


def test_env_records_the_kernel_variant_a_run_used(npz):
    # a worker's first run loads the kernels on its first fused call: the record is
    # written after training, so it names the variant that ran, not "not loaded yet"
    import torch

    from learnact.data import load_dataset
    from learnact.kernels import cpu, dispatch
    from learnact.study.worker import execute_run

    if dispatch.fused_unavailable_reason(torch.zeros(1)) is not None:
        pytest.skip("no fused CPU kernel on this machine")
    data = load_dataset(npz)
    relu, dual = expand_runs(StudyConfig.from_settings(
        dict(activations=("relu", "dual_line"), dataset=npz, epochs=1, seeds=1, lr=0.01)))
    cpu.reset()  # this process as a fresh worker: nothing loaded
    try:
        assert execute_run(relu, data, torch.device("cpu"), lambda e: None).env[
            "cpu_kernels"] == "not used"
        result = execute_run(dual, data, torch.device("cpu"), lambda e: None)
        assert result.env["cpu_kernels"] == cpu.loaded_isa(cpu.load()) in cpu.ISAS
    finally:
        cpu.reset()
