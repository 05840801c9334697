"""Studies and reports under faults: changed data, dead workers, bad environment values,
colliding dataset names, an output path that is a file, and names that attack terminals
or spreadsheets."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from learnact.cli import main
from learnact.study import Store
from synthetic_data import write_npz


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _study(npz, db, *extra: str, acts: str = "relu") -> list[str]:
    return ["study", "--dataset", str(npz), "--activations", acts, "--seeds", "1",
            "--epochs", "1", "--lr", "0.01", "--db", str(db), *extra]


def _one_line_exit_2(capsys, code: int, match: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    assert match in err[0], err[0]
    return err[0]


# ---------------------------------------------------------------- changed data


def test_data_changed_in_place_never_reuses_old_results(tmp_path, capsys):
    data = write_npz(tmp_path / "d.npz", n_train=128, n_test=32)
    original = data.read_bytes()
    db = tmp_path / "out" / "r.db"
    assert main(_study(data, db)) == 0
    with sqlite3.connect(db) as con:
        (run_id, env), = con.execute("SELECT run_id, env FROM runs").fetchall()
    assert '"data_fingerprint": "sha256:' in env
    # pixels inverted, labels shifted: the same path, other data
    with np.load(data) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["x_train"] = 255 - arrays["x_train"]
    arrays["y_train"] = (arrays["y_train"] + 1) % 10
    np.savez(data, **arrays)
    capsys.readouterr()
    before = _snapshot(tmp_path / "out")
    line = _one_line_exit_2(capsys, main(_study(data, db)),
                            "the data changed since 1 finished run(s) in")
    assert "Restore the data, or study the new data with a new --db" in line
    assert _snapshot(tmp_path / "out") == before  # nothing added, trained or stored
    # a new database studies the new data; the old one is untouched
    assert main(_study(data, tmp_path / "new.db")) == 0
    with sqlite3.connect(tmp_path / "new.db") as con:
        (new_id,), = con.execute("SELECT run_id FROM runs").fetchall()
    assert new_id == run_id  # ids name the data by path, as every release did
    # restored data: the old results are the right ones again
    data.write_bytes(original)
    capsys.readouterr()
    assert main(_study(data, db)) == 0
    assert "1 already finished" in capsys.readouterr().out


def test_runs_of_earlier_releases_without_a_fingerprint_are_kept(tmp_path, capsys):
    data = write_npz(tmp_path / "d.npz", n_train=128, n_test=32)
    db = tmp_path / "r.db"
    assert main(_study(data, db)) == 0
    with sqlite3.connect(db) as con:  # as a release before fingerprints wrote it
        con.execute("UPDATE runs SET env = json_remove(env, '$.data_fingerprint')")
    write_npz(data, n_train=128, n_test=32, seed=5)
    capsys.readouterr()
    assert main(_study(data, db)) == 0  # nothing to compare with: documented
    assert "1 already finished" in capsys.readouterr().out


# ---------------------------------------------------------------- dead workers


def _running_pids(db: Path) -> set[int]:
    try:
        con = sqlite3.connect(db)
        try:
            return {r[0] for r in con.execute(
                "SELECT pid FROM runs WHERE status = 'running' AND pid IS NOT NULL")}
        finally:
            con.close()
    except sqlite3.OperationalError:
        return set()


def _jobs_study(npz, db: Path, epochs: int = 2) -> subprocess.Popen:
    argv = _study(npz, db, "--jobs", "2", acts="relu,gelu")
    argv[argv.index("--epochs") + 1] = str(epochs)
    argv[argv.index("--seeds") + 1] = "2"
    return subprocess.Popen([sys.executable, "-m", "learnact.cli", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_killed_workers_are_replaced_and_the_study_finishes(slow_npz, tmp_path):
    db = tmp_path / "r.db"
    proc = _jobs_study(slow_npz, db)
    deadline = time.time() + 120
    workers: set[int] = set()
    while time.time() < deadline and proc.poll() is None and len(workers) < 2:
        workers = _running_pids(db) - {proc.pid}
        time.sleep(0.05)
    assert len(workers) == 2, "both workers should be training"
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=280)
    assert proc.returncode == 0, err[-3000:]
    assert err.count("died (killed by SIGKILL); starting another") == 2, err
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT status, attempts FROM runs").fetchall()
    assert len(rows) == 4 and all(s == "done" for s, _ in rows)
    assert sorted(a for _, a in rows)[-2:] == [2, 2]  # the two killed runs, redone
    assert "nan" not in out.lower()


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_workers_that_keep_dying_end_the_study_with_exit_1_and_a_reason(slow_npz, tmp_path):
    db = tmp_path / "r.db"
    proc = _jobs_study(slow_npz, db, epochs=3)
    killed: set[int] = set()
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        for pid in _running_pids(db) - {proc.pid} - killed:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("learnact study: error: 6 worker process(es) died (killed by "
                           "SIGKILL) and "), last
    assert "rerun the same command to resume" in last
    assert "nan" not in out.lower()  # no ranking of runs that never finished
    with sqlite3.connect(db) as con:
        statuses = [r[0] for r in con.execute("SELECT status FROM runs")]
    assert "failed" not in statuses and statuses.count("done") < 4


def test_a_full_disk_is_one_line_and_a_trained_run_is_not_stored_as_failed(npz, tmp_path,
                                                                         monkeypatch, capsys):
    db = tmp_path / "r.db"
    real = Store.record

    def disk_full(self, result):
        if result.status == "done":  # the whole result, the largest write, finds no space
            raise sqlite3.OperationalError("database or disk is full")
        return real(self, result)

    monkeypatch.setattr(Store, "record", disk_full)
    line = _one_line_exit_2(capsys, main(_study(npz, db)),
                            "a finished run's results could not be written (database or disk "
                            "is full; is the disk full?)")
    assert "free space and rerun the same command" in line
    with sqlite3.connect(db) as con:
        assert [r[0] for r in con.execute("SELECT status FROM runs")] == ["pending"]
    monkeypatch.setattr(Store, "record", real)  # space again: the rerun finishes it
    assert main(_study(npz, db)) == 0
    with sqlite3.connect(db) as con:
        assert [r[0] for r in con.execute("SELECT status FROM runs")] == ["done"]


def test_a_database_bug_is_not_mistaken_for_a_full_disk(npz, tmp_path, monkeypatch, capsys):
    db = tmp_path / "r.db"
    real = Store.record

    def broken(self, result):
        if result.status == "done":
            self.conn.execute("SELECT * FROM no_such_table")  # a real SQLite error, not I/O
        return real(self, result)

    monkeypatch.setattr(Store, "record", broken)
    assert main(_study(npz, db)) == 1  # the run failed, with its traceback logged
    assert "disk" not in capsys.readouterr().err
    with sqlite3.connect(db) as con:
        ((status, error),) = con.execute("SELECT status, error FROM runs").fetchall()
    assert status == "failed" and "no such table: no_such_table" in error


# ---------------------------------------------------------------- Ctrl-C


def _interrupt_after_claim(monkeypatch, nth: int) -> list[str]:
    """Make the ``nth`` claim commit and then raise KeyboardInterrupt, as a Ctrl-C
    landing between the claim's commit and the caller's bookkeeping would."""
    real = Store.claim
    claimed: list[str] = []

    def claim(self, run_ids):
        run_id = real(self, run_ids)
        claimed.append(run_id)
        if len(claimed) == nth:
            raise KeyboardInterrupt
        return run_id

    monkeypatch.setattr(Store, "claim", claim)
    return claimed


def _statuses(db) -> dict[str, str]:
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT run_id, status FROM runs").fetchall())


@pytest.mark.parametrize("nth", [1, 2])
def test_ctrl_c_right_after_a_claim_gives_the_run_back(npz, tmp_path, monkeypatch, capsys, nth):
    db = tmp_path / "r.db"
    claimed = _interrupt_after_claim(monkeypatch, nth)
    assert main(_study(npz, db, acts="relu,tanh")) == 130
    assert "interrupted" in capsys.readouterr().err
    statuses = _statuses(db)
    assert claimed[-1] is not None and statuses[claimed[-1]] == "pending"
    assert sorted(statuses.values()) == (["pending", "pending"] if nth == 1
                                         else ["done", "pending"])
    monkeypatch.undo()
    assert main(_study(npz, db, acts="relu,tanh")) == 0
    assert set(_statuses(db).values()) == {"done"}


@pytest.mark.slow
@pytest.mark.parametrize("to", ["the group", "the driver"])
def test_ctrl_c_with_jobs_stops_at_once_without_tracebacks(slow_npz, tmp_path, to):
    """A terminal's Ctrl-C signals the whole process group; `kill -INT` the driver
    alone. Either way the study stops within seconds (the driver once waited for its
    workers to finish every run), gives back every held run, and prints one line."""
    db = tmp_path / "r.db"
    argv = _study(slow_npz, db, "--jobs", "2", "--epochs", "2",
                  acts="relu,gelu,tanh,elu,selu,silu")
    proc = subprocess.Popen([sys.executable, "-m", "learnact.cli", *argv],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"},
                            start_new_session=True)
    try:
        deadline = time.time() + 240
        statuses: list[str] = []
        while time.time() < deadline and proc.poll() is None:
            try:
                statuses = list(_statuses(db).values()) if db.exists() else []
            except sqlite3.OperationalError:
                statuses = []
            if "done" in statuses and "running" in statuses:
                break
            time.sleep(0.05)
        assert "done" in statuses and "running" in statuses, "the study never got going"
        if to == "the group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        sent = time.time()
        _, err = proc.communicate(timeout=120)
        took = time.time() - sent
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-3000:]
    assert err.strip().splitlines() == ["learnact study: interrupted; finished runs are saved, "
                                        "rerun the same command to resume"], err[-3000:]
    assert took < 60, f"the study took {took:.0f} s to stop"  # a whole study takes minutes
    after = list(_statuses(db).values())
    assert "running" not in after and "pending" in after, after


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_closed_stdout_neither_fails_nor_stops_the_study(npz, tmp_path, jobs):
    """`learnact study | head`: the reader goes away after one line. The study goes on,
    its output discarded, and stores every run as done (a progress line written to the
    closed pipe used to fail the run it reported on)."""
    db = tmp_path / "r.db"
    proc = subprocess.Popen([sys.executable, "-m", "learnact.cli",
                             *_study(npz, db, "--jobs", jobs, acts="relu,tanh,gelu")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.stdout.readline().startswith("study ")
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait(timeout=300) == 0, err[-3000:]
    assert "Traceback" not in err and "BrokenPipe" not in err, err[-3000:]
    assert list(_statuses(db).values()) == ["done"] * 3


def test_release_held_gives_back_only_this_processes_runs(tmp_path):
    db = tmp_path / "r.db"
    mine, other = Store(db, owner="me"), Store(db, owner="other")
    try:
        ids = ["r1", "r2", "r3"]
        mine.add_runs({"run_id": i, "study": "s", "activation": "relu", "model": "lenet5",
                       "dataset": "d", "seed": 0, "settings": {}} for i in ids)
        a = mine.claim(ids)
        b = other.claim(ids)
        c = mine.claim(ids)
        with sqlite3.connect(db) as con:  # a partial row of a held run is dropped with it
            con.execute("INSERT INTO epochs VALUES (?, 1, 0.5, 0.5, 0.5, 0.9, 1.0)", (a,))
        mine.conn.execute("BEGIN IMMEDIATE")  # Ctrl-C between BEGIN and its try block
        assert mine.release_held() == [a, c]
        statuses = _statuses(db)
        assert statuses[a] == statuses[c] == "pending" and statuses[b] == "running"
        with sqlite3.connect(db) as con:
            assert con.execute("SELECT COUNT(*) FROM epochs").fetchone()[0] == 0
        assert mine.release_held() == []
    finally:
        mine.close()
        other.close()


def test_a_failed_commit_leaves_the_connection_usable(tmp_path):
    """A COMMIT that fails (a full disk; here a deferred constraint) must roll back, or
    every later transaction on the connection fails with 'within a transaction'."""
    store = Store(tmp_path / "r.db")
    try:
        c = store.conn
        c.execute("PRAGMA foreign_keys = ON")
        c.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        c.execute("CREATE TABLE child (pid INTEGER REFERENCES parent (id) "
                  "DEFERRABLE INITIALLY DEFERRED)")
        with pytest.raises(sqlite3.IntegrityError), store.transaction() as t:
            t.execute("INSERT INTO child VALUES (7)")  # checked only at COMMIT
        assert not c.in_transaction
        assert c.execute("SELECT COUNT(*) FROM child").fetchone()[0] == 0
        store.set_meta({"still": "writable"})
    finally:
        store.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_zombie_process_counts_as_dead():
    from learnact._pids import pid_alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.time() + 30
        while pid_alive(child.pid) and time.time() < deadline:  # exits; nobody reaps it yet
            time.sleep(0.05)
        assert not pid_alive(child.pid)
        with open(f"/proc/{child.pid}/stat") as f:
            assert f.read().rsplit(")", 1)[1].split()[0] == "Z"  # still there, as a zombie
    finally:
        child.wait()
    assert pid_alive(os.getpid())


# ---------------------------------------------------------------- the environment


@pytest.mark.parametrize(("var", "value", "match"), [
    ("LEARNACT_KERNELS", "fastest", "LEARNACT_KERNELS must be one of"),
    ("LEARNACT_CPU_ISA", "sse9", "LEARNACT_CPU_ISA must be one of auto"),
    ("LEARNACT_BUILD_TIMEOUT", "nan", "LEARNACT_BUILD_TIMEOUT must be a number of seconds"),
    ("LEARNACT_BUILD_TIMEOUT", "1e999", "LEARNACT_BUILD_TIMEOUT must be a number of seconds"),
    ("LEARNACT_MAX_IMAGE_PIXELS", "many", "LEARNACT_MAX_IMAGE_PIXELS must be an integer"),
])
def test_bad_environment_values_are_refused_before_the_database(var, value, match, tmp_path,
                                                                 npz, monkeypatch, capsys):
    monkeypatch.setenv(var, value)
    before = _snapshot(tmp_path)
    _one_line_exit_2(capsys, main(_study(npz, tmp_path / "r.db")), match)
    assert _snapshot(tmp_path) == before and not (tmp_path / "r.db").exists()


# ---------------------------------------------------------------- reports

pytest.importorskip("pandas")


def test_two_datasets_with_one_file_name_get_their_own_folders(tmp_path):
    from learnact.report import make_report
    from test_report import accuracy, build_db

    db = build_db(tmp_path / "r.db", ["relu", "dual_line"], 2,
                  tasks=(("A/d.npz", "lenet5"), ("B/d.npz", "lenet5")))
    result = make_report(db, tmp_path / "rep")
    folders = sorted(p.name for p in (tmp_path / "rep").iterdir() if p.is_dir())
    assert len(folders) == 2 and all(f.startswith("d_lenet5-") for f in folders)
    on_disk = sorted(p for p in (tmp_path / "rep").rglob("*") if p.is_file())
    assert sorted(result.files) == on_disk  # the count printed is the count written
    page = result.index.read_text()
    anchors = [page.split(f"<h2 id='{f}'>")[1].split("<")[0] for f in folders]
    assert sorted(anchors) == ["A/d.npz / lenet5", "B/d.npz / lenet5"]
    for t, dataset in enumerate(("A/d.npz", "B/d.npz")):
        folder = next(f for f, a in zip(folders, anchors, strict=True) if a.startswith(dataset))
        rows = list(csv.DictReader(open(tmp_path / "rep" / folder / "ranking.csv")))
        relu = next(r for r in rows if r["activation"] == "relu")
        expected = np.mean([accuracy(0, s, t) for s in range(2)])
        assert abs(float(relu["mean_accuracy"]) - expected) < 1e-9


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_report_out_that_is_a_file_is_one_line(where, tmp_path, capsys):
    from test_report import build_db

    db = build_db(tmp_path / "r.db", ["relu"], 1)
    target = tmp_path / "report.html"
    target.write_text("keep me")
    out = target if where == "file" else target / "sub"
    before = _snapshot(tmp_path)
    _one_line_exit_2(capsys, main(["report", "--db", str(db), "--out", str(out)]),
                     f"--out {out}: {target} is a file, not a folder")
    assert _snapshot(tmp_path) == before


EVIL = "=HYPERLINK(\"http://x\")\x1b]0;pwned\x07\nrow"


def test_names_cannot_attack_a_terminal_a_spreadsheet_or_a_markdown_table(tmp_path, capsys):
    from learnact.report import make_report
    from test_report import build_db

    db = build_db(tmp_path / "r.db", ["relu", EVIL], 2, tasks=((f"{EVIL}.npz", "lenet5"),))
    assert main(["results", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    assert "\x1b" not in table and "\x07" not in table
    assert "\\x1b]0;pwned\\x07\\nrow" in table
    assert main(["results", "--db", str(db), "--format", "csv"]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4
    evil_rows = [r for r in rows if r["activation"] != "relu"]
    assert all(r["activation"].startswith("'=HYPERLINK") for r in evil_rows)
    assert all(r["dataset"].startswith("'=HYPERLINK") for r in rows)
    result = make_report(db, tmp_path / "rep")
    for path in result.files:
        if path.suffix in (".csv", ".md", ".html"):
            assert "\x1b" not in path.read_text(), path
    (folder,) = [p for p in (tmp_path / "rep").iterdir() if p.is_dir()]
    ranking = list(csv.DictReader(open(folder / "ranking.csv")))
    assert {r["activation"][:2] for r in ranking} == {"re", "'="}
    for md in (folder / "ranking.md", tmp_path / "rep" / "lr_table.md"):
        table_lines = [ln for ln in md.read_text().splitlines() if ln.strip()]
        body = table_lines[:table_lines.index(next(ln for ln in table_lines
                                                    if ln.startswith("- ")))] \
            if any(ln.startswith("- ") for ln in table_lines) else table_lines
        assert all(ln.startswith("|") for ln in body), body


def test_a_newline_in_a_path_cannot_split_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "x\ny\x1b[2J.npz"
    line = _one_line_exit_2(capsys, main(_study(bad, tmp_path / "r.db")), "does not exist")
    assert "x\\ny\\x1b[2J.npz" in line
    assert not (tmp_path / "r.db").exists()
    Store(tmp_path / "r.db").close()
