"""Bad flags and foreign, newer, corrupt or read-only databases: one line, exit 2, no change.

Every case checks the exit code, that exactly one line goes to stderr, and the
sha256 of every file in the database's folder before and after (so a refused
command creates, changes and leaves nothing, ``-wal``/``-shm`` files included).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch

from learnact.cli import main
from learnact.study.store import APPLICATION_ID, SCHEMA_VERSION


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(capsys, folder: Path, argv: list[str], match: str) -> str:
    """Run the CLI; assert exit 2, one stderr line containing ``match``, no file changed."""
    before = _snapshot(folder)
    with pytest.raises(SystemExit) as info:
        raise SystemExit(main(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2, err
    assert len(err) == 1, err
    assert match in err[0], err[0]
    assert _snapshot(folder) == before
    return err[0]


def _study(npz, db, *extra):
    return ["study", "--dataset", npz, "--activations", "relu", "--seeds", "1", "--epochs", "1",
            "--lr", "0.01", "--db", str(db), *extra]


@pytest.fixture(scope="module")
def made_db(tmp_path_factory, npz):
    """A real results database from a one-run study (closed, so no -wal file)."""
    folder = tmp_path_factory.mktemp("made")
    db = folder / "results.db"
    assert main(_study(npz, db)) == 0
    assert not Path(str(db) + "-wal").exists()
    return db


# ---------------------------------------------------------------- flags


@pytest.mark.parametrize(("extra", "match"), [
    (["--activations", ""], "activations is empty"),
    (["--epochs", "three"], "epochs must be a positive integer, got 'three'"),
    (["--activations", " , ,"], "activations is empty"),
    (["--lr", "inf"], "lr must be a positive finite number"),
    (["--lr", "nan"], "lr must be a positive finite number"),
    (["--lr", "0"], "lr must be a positive finite number"),
    (["--precision", "fp16", "--device", "cpu"], "precision fp16 needs CUDA"),
])
def test_bad_study_flags_touch_nothing(capsys, tmp_path, npz, extra, match):
    argv = _study(npz, tmp_path / "x.db")
    for flag, value in zip(extra[::2], extra[1::2], strict=True):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    _refused(capsys, tmp_path, argv, match)
    assert not (tmp_path / "x.db").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_is_refused_before_the_database(capsys, tmp_path, npz):
    _refused(capsys, tmp_path, [*_study(npz, tmp_path / "x.db"), "--device", "cuda"],
             "CUDA is not available")
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize(("argv", "match"), [
    (["study", "--jobs", "three"], "invalid int value: 'three'"),
    (["study", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    (["results", "--format", "xml"], "invalid choice: 'xml'"),
    (["nosuchcommand"], "invalid choice: 'nosuchcommand'"),
])
def test_argparse_errors_are_one_line_with_a_help_hint(capsys, tmp_path, argv, match):
    line = _refused(capsys, tmp_path, argv, match)
    assert line.endswith("--help)")


# ---------------------------------------------------------------- databases not ours


def _foreign(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO users VALUES (1, 'ada')")
    con.commit()
    con.close()
    return path


def test_a_foreign_sqlite_file_is_never_written(capsys, tmp_path, npz):
    db = _foreign(tmp_path / "app.sqlite")
    _refused(capsys, tmp_path, _study(npz, db), "not a learnact results database")
    _refused(capsys, tmp_path, ["results", "--db", str(db)], "not a learnact results database")
    _refused(capsys, tmp_path, ["report", "--db", str(db), "--out", str(tmp_path / "r")],
             "not a learnact results database")


def test_another_programs_application_id_is_refused(capsys, tmp_path, npz):
    db = tmp_path / "other.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA application_id = 1234")
    con.execute("CREATE TABLE runs (x)")
    con.commit()
    con.close()
    _refused(capsys, tmp_path, _study(npz, db), "belongs to another program")


@pytest.mark.parametrize("content", [b"", b"not a database at all" * 100],
                         ids=["empty", "garbage"])
def test_empty_and_garbage_files_for_reading(capsys, tmp_path, content):
    db = tmp_path / "x.db"
    db.write_bytes(content)
    match = "no results database" if not content else "not a readable SQLite database"
    _refused(capsys, tmp_path, ["results", "--db", str(db)], match)


def test_garbage_file_is_not_overwritten_by_a_study(capsys, tmp_path, npz):
    db = tmp_path / "x.db"
    db.write_bytes(b"\x00garbage" * 512)
    _refused(capsys, tmp_path, _study(npz, db), "not a readable SQLite database")


def test_a_corrupt_learnact_database_is_never_written(capsys, tmp_path, npz, made_db):
    db = tmp_path / "results.db"
    shutil.copy(made_db, db)
    data = bytearray(db.read_bytes())
    page = 4096
    for i in range(2 * page + 8, 2 * page + 400):  # scribble over a b-tree page's cells
        data[i] = 0x5A
    db.write_bytes(bytes(data))
    _refused(capsys, tmp_path, _study(npz, db), str(db))


def test_unwritable_db_path_is_one_line(capsys, tmp_path, npz):
    _refused(capsys, tmp_path, _study(npz, "/proc/nope/x.db"), "/proc/nope/x.db")


# ---------------------------------------------------------------- reading never writes


def test_reading_leaves_no_trace_and_works_on_a_read_only_folder(capsys, tmp_path, made_db):
    folder = tmp_path / "ro"
    folder.mkdir()
    db = folder / "results.db"
    shutil.copy(made_db, db)
    before = _snapshot(folder)
    db.chmod(0o444)
    folder.chmod(0o555)
    try:
        assert main(["results", "--db", str(db)]) == 0
        assert "relu" in capsys.readouterr().out
    finally:
        folder.chmod(0o755)
    assert _snapshot(folder) == before  # no -wal/-shm, no journal-mode change
    header = db.read_bytes()[:20]
    assert header[18] == header[19] == 2  # still WAL, as the study left it


def test_a_newer_schema_is_named_and_refused(capsys, tmp_path, npz, made_db):
    db = tmp_path / "results.db"
    shutil.copy(made_db, db)
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    line = _refused(capsys, tmp_path, ["results", "--db", str(db)], "newer learnact")
    assert "schema 99" in line and f"schema {SCHEMA_VERSION}" in line
    _refused(capsys, tmp_path, _study(npz, db), "newer learnact")


def test_a_first_release_database_is_read_as_is_and_migrated_with_a_backup(
        capsys, tmp_path, npz, made_db):
    db = tmp_path / "results.db"
    shutil.copy(made_db, db)
    con = sqlite3.connect(db)
    con.execute("PRAGMA application_id = 0")
    con.execute("DELETE FROM meta WHERE key = 'schema_version'")
    con.commit()
    con.close()
    before = _snapshot(tmp_path)
    assert main(["results", "--db", str(db)]) == 0  # read as is
    assert _snapshot(tmp_path) == before
    capsys.readouterr()
    assert main(_study(npz, db)) == 0  # the run is already done; the file is migrated
    backup = tmp_path / "results.db.schema0.bak"
    assert backup.is_file()
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == (
        str(SCHEMA_VERSION))
    con.close()
    con = sqlite3.connect(backup)
    assert con.execute("PRAGMA application_id").fetchone()[0] == 0
    con.close()


def test_new_databases_carry_learnacts_marks(made_db):
    con = sqlite3.connect(f"{made_db.resolve().as_uri()}?immutable=1", uri=True)
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == (
        str(SCHEMA_VERSION))
    con.close()


# ---------------------------------------------------------------- data that would crash training


def _npz(path: Path, **over) -> str:
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 255, (40, 28, 28), dtype=np.uint8),
              "y_train": np.arange(40) % 4,
              "x_test": rng.integers(0, 255, (12, 28, 28), dtype=np.uint8),
              "y_test": np.arange(12) % 4}
    arrays.update(over)
    np.savez(path, **arrays)
    return str(path)


def _nan_test():
    x = np.random.default_rng(1).random((12, 28, 28)).astype(np.float32)
    x[3, 4, 5] = np.nan
    return x


@pytest.mark.parametrize(("over", "match"), [
    ({"x_train": np.zeros((0, 28, 28), np.uint8), "y_train": np.zeros(0, np.int64)},
     "the train split is empty"),
    ({"x_test": np.zeros((0, 28, 28), np.uint8), "y_test": np.zeros(0, np.int64)},
     "the test split is empty"),
    ({"x_train": np.zeros((40, 4, 4), np.uint8), "x_test": np.zeros((12, 4, 4), np.uint8)},
     "lenet5 cannot take 1x4x4 images"),
    ({"x_train": np.zeros((40, 0, 0), np.uint8), "x_test": np.zeros((12, 0, 0), np.uint8)},
     "H, W, C >= 1"),
    ({"x_train": np.zeros((40, 28, 28, 0), np.uint8),
      "x_test": np.zeros((12, 28, 28, 0), np.uint8)}, "H, W, C >= 1"),
    ({"y_train": np.arange(40) % 4 - 1}, "train label -1 is out of range"),
    ({"y_test": np.full(12, 10**12)}, "test label 1000000000000 is out of range"),
    ({"y_train": np.full(40, 2**64 - 1, dtype=np.uint64)},
     "train label 18446744073709551615 is out of range"),
    ({"y_train": (np.arange(40) % 2) * 3}, "class(es) 1, 2 of 0..3 have no training examples"),
    ({"x_test": _nan_test()}, "1 test pixel(s) are NaN or infinite"),
    ({"x_train": np.full((40, 28, 28), np.inf, np.float32)}, "train pixel(s) are NaN or infinite"),
    ({"x_train": np.full((40, 28, 28), 1e300)}, "train pixels exceed float32's range"),
    ({"x_test": np.ones((12, 28, 28), np.complex64)}, "test pixels must be real numbers"),
    ({"y_train": (np.arange(40) % 4).astype(np.float32)}, "train labels must be integers"),
], ids=["empty-train", "empty-test", "4x4", "0x0", "0-channels", "negative", "1e12", "uint64-max",
        "missing-classes", "nan-test", "inf-train", "float64-overflow", "complex", "float-labels"])
def test_data_that_would_crash_training_is_refused_before_the_database(
        capsys, tmp_path, over, match):
    data = tmp_path / "data"
    data.mkdir()
    path = _npz(data / "bad.npz", **over)
    db = tmp_path / "db" / "x.db"
    db.parent.mkdir()
    _refused(capsys, tmp_path, _study(path, db), match)
    assert not db.exists()


# ---------------------------------------------------------------- corrupt databases


def _corrupt(data: bytearray, how: str) -> bytes:
    page = 4096
    if how == "magic":
        data[0:16] = b"Not SQLite fmt\0\0"
    elif how == "page-size":
        data[16:18] = b"\x03\x03"
    elif how == "zero-page-2":
        data[page:2 * page] = bytes(page)
    elif how == "cells-page-3":
        data[2 * page + 8:2 * page + 400] = b"\x5a" * 392
    elif how == "half":
        data = data[:len(data) // 2]
    elif how == "100-bytes":
        data = data[:100]
    elif how == "zero-page-1":
        data[0:page] = bytes(page)
    elif how == "schema-record":
        data[page - 600:page] = b"\xff" * 600  # sqlite_master's cells sit at page 1's end
    return bytes(data)


CORRUPTIONS = ["magic", "page-size", "zero-page-2", "cells-page-3", "half", "100-bytes",
               "zero-page-1", "schema-record"]


@pytest.mark.parametrize("how", CORRUPTIONS)
def test_every_command_gives_one_line_on_a_corrupt_database(capsys, tmp_path, npz, made_db, how):
    db = tmp_path / "results.db"
    db.write_bytes(_corrupt(bytearray(made_db.read_bytes()), how))
    for argv in (["results", "--db", str(db)],
                 ["report", "--db", str(db), "--out", str(tmp_path / "rep")],
                 _study(npz, db)):
        _refused(capsys, tmp_path, argv, str(db))


# ---------------------------------------------------------------- Ray addresses


@pytest.mark.parametrize(("address", "match"), [
    ("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1"),
    ("ray://127.0.0.1:1", "cannot reach the Ray cluster at ray://127.0.0.1:1"),
    ("nonsense", "--address must be auto, HOST:PORT or ray://HOST:PORT"),
    ("127.0.0.1:99999", "--address must be auto"),
])
def test_a_bad_ray_address_fails_fast_before_the_database(capsys, tmp_path, npz, address, match):
    pytest.importorskip("ray")
    import time

    start = time.monotonic()
    _refused(capsys, tmp_path,
             [*_study(npz, tmp_path / "x.db"), "--executor", "ray", "--address", address], match)
    assert time.monotonic() - start < 30
    assert not (tmp_path / "x.db").exists()
