"""The results database (SQLite): runs, per-epoch metrics, LR-finder curves, parameters.

Concurrency model: every run is a row. A process *claims* a pending run in an
``IMMEDIATE`` transaction and holds a lease on it (``lease_until``) that a
heartbeat renews. A run whose lease has expired, or whose owner process on
this host is gone (``kill -9``), is claimed again and redone from scratch:
its partial rows are deleted in the same transaction. Only ``done`` and
``diverged`` rows count as results. A run's whole result (LR-finder curve,
epochs, parameter snapshots and its final status) is written by
:meth:`Store.record` in one transaction, and only while the writer still holds
the run, so nothing completed is lost, stored twice, or overwritten by a
process that lost its lease.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .._pids import pid_alive
from ..errors import StoreError
from .types import RunResult

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "LeaseLost", "Store", "StoreError",
           "open_readonly", "read_tables"]

# PRAGMA application_id of learnact's databases ("LACT"); files without it are not ours
APPLICATION_ID = 0x4C414354
# meta.schema_version; databases of the first release carry neither mark (version 0).
# Version 2 added runs.flags and the lr_choice and act_stats tables.
SCHEMA_VERSION = 2
_TABLES = {"meta", "runs", "epochs", "lr_find", "act_params", "lr_choice", "act_stats"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    study TEXT NOT NULL,
    activation TEXT NOT NULL,
    model TEXT NOT NULL,
    dataset TEXT NOT NULL,
    seed INTEGER NOT NULL,
    settings TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    owner TEXT, host TEXT, pid INTEGER, lease_until REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lr REAL, error TEXT, env TEXT,
    created REAL NOT NULL, started REAL, finished REAL,
    flags TEXT                          -- comma-separated marks on a result, e.g. 'chance'
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    epoch INTEGER NOT NULL,
    train_loss REAL, test_loss REAL, test_accuracy REAL, test_top5 REAL, seconds REAL,
    PRIMARY KEY (run_id, epoch)
);
CREATE TABLE IF NOT EXISTS lr_find (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id),
    method TEXT, suggestion REAL, lrs TEXT, losses TEXT
);
CREATE TABLE IF NOT EXISTS lr_choice (
    run_id TEXT PRIMARY KEY REFERENCES runs(run_id),
    path TEXT NOT NULL,                 -- fixed, finder, finder-stable or tune
    reason TEXT, problems TEXT, tune TEXT  -- problems and tune: JSON lists
);
CREATE TABLE IF NOT EXISTS act_stats (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    epoch INTEGER NOT NULL,
    site_index INTEGER NOT NULL,
    mean REAL, std REAL, frac_neg REAL, frac_zero_grad REAL,
    hist TEXT,                          -- JSON: below -4, 16 bins of 0.5 over [-4, 4], above 4
    PRIMARY KEY (run_id, epoch, site_index)
);
CREATE TABLE IF NOT EXISTS act_params (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    epoch INTEGER NOT NULL,            -- -1: the snapshot at the end of the run
    site_index INTEGER NOT NULL, path TEXT NOT NULL,
    block INTEGER, position INTEGER,
    param TEXT NOT NULL, idx INTEGER NOT NULL, value REAL,
    PRIMARY KEY (run_id, epoch, site_index, param, idx)
);
"""




class LeaseLost(Exception):
    """This process no longer holds the run (its lease expired and another process took
    it over): it must stop, and write nothing more for it."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"lost the claim on run {run_id}; another process holds it now")
        self.run_id = run_id


def _identify(conn: sqlite3.Connection, path: Path) -> int | None:
    """The schema version of a learnact database, ``None`` for one with no tables yet,
    and ``StoreError`` for anything else.

    Version 0 is a first-release database (learnact's tables, no marks); a file
    with other tables, another program's ``application_id`` or a newer schema is
    refused, so learnact never changes a file it did not create. A file with no
    tables at all (a database being created this instant by another learnact, or
    an empty SQLite file) holds nothing to protect.
    """
    app = conn.execute("PRAGMA application_id").fetchone()[0]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if app == APPLICATION_ID:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path} was written by a newer learnact (schema {version}; this "
                             f"learnact reads schema {SCHEMA_VERSION} and older): upgrade learnact")
        return version
    if app != 0:
        raise StoreError(f"{path} belongs to another program (SQLite application_id "
                         f"{app:#x}); learnact will not touch it")
    if not tables:
        return None
    if {"runs", "meta", "epochs"} <= tables and tables <= _TABLES | {"sqlite_sequence"}:
        return 0
    foreign = ", ".join(sorted(tables - _TABLES)[:5]) or ", ".join(sorted(tables)[:5])
    raise StoreError(f"{path} is not a learnact results database (it holds other tables: "
                     f"{foreign}); learnact will not touch it")


def _quick_check(conn: sqlite3.Connection, path: Path, verb: str) -> None:
    """``StoreError`` naming the first problem ``PRAGMA quick_check`` finds, if any."""
    problems = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
    if problems != ["ok"]:
        first = problems[0].splitlines()[0]
        more = " ..." if len(problems) > 1 else ""
        raise StoreError(f"{path} is corrupt (SQLite quick_check: {first}{more}); learnact "
                         f"will not {verb} it")


# The tables a reader (the report) loads whole, in the store's own words.
READ_TABLES = {"runs": "runs", "epochs": "epochs", "params": "act_params",
               "lr_find": "lr_find", "lr_choice": "lr_choice", "act_stats": "act_stats"}
# columns added after schema 1, with the value they read as in older databases
LATER_COLUMNS = {"runs": {"flags": None}}


# per-row exports: one SELECT each, the run's labels joined in
EXPORT_QUERIES = {
    "epochs": "SELECT r.run_id, r.activation, r.model, r.dataset, r.seed, r.status, "
              "e.epoch, e.train_loss, e.test_loss, e.test_accuracy, e.test_top5, e.seconds "
              "FROM epochs e JOIN runs r USING (run_id) ORDER BY r.dataset, r.model, "
              "r.activation, r.seed, e.epoch",
    "params": "SELECT r.run_id, r.activation, r.model, r.dataset, r.seed, p.epoch, "
              "p.site_index, p.path, p.block, p.position, p.param, p.idx, p.value "
              "FROM act_params p JOIN runs r USING (run_id) ORDER BY r.dataset, r.model, "
              "r.activation, r.seed, p.epoch, p.site_index, p.param, p.idx",
    "stats": "SELECT r.run_id, r.activation, r.model, r.dataset, r.seed, s.epoch, "
             "s.site_index, s.mean, s.std, s.frac_neg, s.frac_zero_grad, s.hist "
             "FROM act_stats s JOIN runs r USING (run_id) ORDER BY r.dataset, r.model, "
             "r.activation, r.seed, s.epoch, s.site_index",
}



def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def _schema_columns(table: str) -> list[str]:
    """The columns :data:`SCHEMA` gives ``table``."""
    mem = sqlite3.connect(":memory:")
    try:
        mem.executescript(SCHEMA)
        return _columns(mem, table)
    finally:
        mem.close()


def read_tables(conn: sqlite3.Connection) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every table a report needs: name -> ``(columns, rows)``, from one connection.

    The queries live here, beside the schema, so a reader never writes its own SQL.
    An older database (read-only, so not migrated) reads as the current schema:
    the ``lr_choice`` table it lacks is empty, a column it lacks is ``NULL``.
    """
    out = {}
    for name, table in READ_TABLES.items():
        have = _columns(conn, table)
        if not have:  # a table this database predates: empty, with today's columns
            out[name] = (_schema_columns(table), [])
            continue
        extra = {c: v for c, v in LATER_COLUMNS.get(table, {}).items() if c not in have}
        cur = conn.execute(f"SELECT * FROM {table}")
        rows = cur.fetchall()
        if extra:
            rows = [(*r, *extra.values()) for r in rows]
        out[name] = ([d[0] for d in cur.description] + list(extra), rows)
    return out


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """A read-only connection that never writes, never changes the journal mode,
    and leaves no ``-wal``/``-shm`` files behind; ``StoreError`` if it is not ours.

    A database with a live ``-wal`` file (a study is writing) is opened with
    ``mode=ro`` to see its latest commits; a closed one with ``immutable=1``,
    which also works in a read-only folder or on a read-only file.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise StoreError(f"no results database at {path}")
    live = Path(str(path) + "-wal").exists()
    uri = path.resolve().as_uri() + ("?mode=ro" if live else "?immutable=1")
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=60.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc
    try:
        if _identify(conn, path) is None:
            raise StoreError(f"{path} holds no learnact results")
        _quick_check(conn, path, "read")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(f"{path}: not a readable SQLite database ({exc})") from exc
    except StoreError:
        conn.close()
        raise
    return conn


class Store:
    """A learnact results database at ``path``.

    Args:
        path: the SQLite file; its directory is created if needed.
        create: create the schema if missing. With ``False`` a missing or
            empty database raises :class:`StoreError`.
        readonly: open for reading only (:func:`open_readonly`): no writes, no
            journal-mode change, nothing left beside the file.
        lease_s: how long a claim is valid without a heartbeat.
        owner: the claim owner this connection acts for (a heartbeat's second
            connection); by default a new one, unique to this object.

    Every learnact database carries ``PRAGMA application_id`` = :data:`APPLICATION_ID`
    and ``meta.schema_version``; other files are refused (:class:`StoreError`).
    """

    def __init__(self, path: str | Path, *, create: bool = True, readonly: bool = False,
                 lease_s: float = 300.0, owner: str | None = None) -> None:
        self.path = Path(path)
        self.lease_s = lease_s
        self.readonly = readonly
        # a second connection acting for the same claims (a heartbeat) passes the owner
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.host = socket.gethostname()
        if readonly:
            self.conn = open_readonly(self.path)
            return
        exists = self.path.is_file() and self.path.stat().st_size > 0
        if not create and not exists:
            raise StoreError(f"no results database at {self.path}")
        if self.path.exists() and not self.path.is_file():
            raise StoreError(f"{self.path} is not a file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for {self.path}: "
                             f"{exc.strerror or exc}") from exc
        try:
            self.conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc
        try:
            self.conn.execute("PRAGMA busy_timeout = 60000")
            version = _identify(self.conn, self.path) if exists else None
            if exists:
                _quick_check(self.conn, self.path, "write into")
            if version is not None and version < SCHEMA_VERSION:
                self._migrate(version)
            self.conn.execute("PRAGMA journal_mode = WAL")
            if version is None and not create:
                raise StoreError(f"{self.path} holds no learnact results")
            if version is None:
                with self.transaction() as conn:
                    for statement in SCHEMA.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                                 (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise StoreError(f"{self.path}: not a readable SQLite database ({exc})") from exc
        except StoreError:
            self.conn.close()
            raise

    def _migrate(self, version: int) -> None:
        """Bring an older database to :data:`SCHEMA_VERSION`, after a backup copy.

        Schema 0 (the first release) gets the marks; schema 1 and older get
        ``runs.flags`` and the ``lr_choice`` and ``act_stats`` tables. Run ids
        never change.
        """
        backup = self.path.with_name(self.path.name + f".schema{version}.bak")
        dest = sqlite3.connect(backup)
        try:
            self.conn.backup(dest)
        finally:
            dest.close()
        with self.transaction() as conn:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            if "flags" not in _columns(conn, "runs"):
                conn.execute("ALTER TABLE runs ADD COLUMN flags TEXT")
            for statement in SCHEMA.split(";"):  # every table it lacks (IF NOT EXISTS)
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                         (str(SCHEMA_VERSION),))

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """An ``IMMEDIATE`` transaction: one writer at a time, all or nothing."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            # also after a failed COMMIT (a full disk): the connection must not stay
            # inside the transaction, or every later BEGIN on it fails
            if self.conn.in_transaction:
                try:
                    self.conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise

    # ------------------------------------------------------------------ setup

    def set_meta(self, values: dict[str, Any]) -> None:
        """Store key/value metadata (e.g. the environment), JSON-encoded."""
        with self.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                          [(k, json.dumps(v)) for k, v in values.items()])

    def add_runs(self, runs: Iterable[dict[str, Any]]) -> int:
        """Insert runs that are not there yet; returns how many were new."""
        now = time.time()
        rows = [(r["run_id"], r["study"], r["activation"], r["model"], r["dataset"], r["seed"],
                 json.dumps(r["settings"], sort_keys=True), now) for r in runs]
        with self.transaction() as c:
            before = c.total_changes
            c.executemany(
                "INSERT OR IGNORE INTO runs (run_id, study, activation, model, dataset, seed, "
                "settings, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            return c.total_changes - before

    # ------------------------------------------------------------------ claims

    def claim(self, run_ids: list[str]) -> str | None:
        """Claim the next runnable run among ``run_ids``; ``None`` when none is left.

        Runnable: pending, or running under an expired lease, or running for a
        process on this host that no longer exists.
        """
        if not run_ids:
            return None
        now = time.time()
        marks = ",".join("?" * len(run_ids))
        with self.transaction() as c:
            rows = c.execute(
                f"SELECT run_id, status, host, pid, lease_until FROM runs "
                f"WHERE run_id IN ({marks}) AND status IN ('pending', 'running') ORDER BY rowid",
                run_ids).fetchall()
            for run_id, status, host, pid, lease_until in rows:
                if status == "running":
                    expired = lease_until is None or lease_until < now
                    dead = host == self.host and pid is not None and not pid_alive(pid)
                    if not (expired or dead):
                        continue
                    self._clear_partial(c, run_id)
                c.execute(
                    "UPDATE runs SET status = 'running', owner = ?, host = ?, pid = ?, "
                    "lease_until = ?, attempts = attempts + 1, started = ?, error = NULL "
                    "WHERE run_id = ?",
                    (self.owner, self.host, os.getpid(), now + self.lease_s, now, run_id))
                return run_id
        return None

    def retry_failed(self, run_ids: list[str]) -> int:
        """Put the ``failed`` runs among ``run_ids`` back to ``pending``; returns how many.

        ``done`` and ``diverged`` runs are results and stay; ``attempts`` keeps
        counting, so a run that failed twice before and succeeds shows 3.
        """
        if not run_ids:
            return 0
        marks = ",".join("?" * len(run_ids))
        with self.transaction() as c:
            failed = [r[0] for r in c.execute(
                f"SELECT run_id FROM runs WHERE run_id IN ({marks}) AND status = 'failed'",
                run_ids)]
            for run_id in failed:
                self._clear_partial(c, run_id)
                c.execute("UPDATE runs SET status = 'pending', owner = NULL, pid = NULL, "
                          "lease_until = NULL WHERE run_id = ?", (run_id,))
        return len(failed)

    @staticmethod
    def _clear_partial(c: sqlite3.Connection, run_id: str) -> None:
        for table in ("epochs", "lr_find", "act_params", "lr_choice", "act_stats"):
            c.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))
        c.execute("UPDATE runs SET flags = NULL WHERE run_id = ?", (run_id,))

    def heartbeat(self, run_id: str) -> bool:
        """Extend the lease on ``run_id``; ``False`` if this process no longer holds it."""
        with self.transaction() as c:
            cur = c.execute(
                "UPDATE runs SET lease_until = ? WHERE run_id = ? AND owner = ? "
                "AND status = 'running'", (time.time() + self.lease_s, run_id, self.owner))
            return cur.rowcount == 1

    def counts(self, run_ids: list[str]) -> dict[str, int]:
        """How many of ``run_ids`` are in each status (``pending``, ``running``, ``done``, ...)."""
        if not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        return dict(self.conn.execute(
            f"SELECT status, COUNT(*) FROM runs WHERE run_id IN ({marks}) GROUP BY status",
            run_ids).fetchall())

    def finished(self, run_ids: list[str]) -> set[str]:
        """The subset of ``run_ids`` that is done or diverged."""
        if not run_ids:
            return set()
        marks = ",".join("?" * len(run_ids))
        return {r[0] for r in self.conn.execute(
            f"SELECT run_id FROM runs WHERE run_id IN ({marks}) AND status IN ('done', 'diverged')",
            run_ids)}

    def finished_envs(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The recorded ``env`` of each done or diverged run among ``run_ids``."""
        if not run_ids:
            return {}
        marks = ",".join("?" * len(run_ids))
        rows = self.conn.execute(
            f"SELECT run_id, env FROM runs WHERE run_id IN ({marks}) "
            "AND status IN ('done', 'diverged')", run_ids).fetchall()
        out = {}
        for run_id, env in rows:
            try:
                value = json.loads(env) if env else {}
            except ValueError:
                value = {}
            out[run_id] = value if isinstance(value, dict) else {}
        return out

    # ------------------------------------------------------------------ results

    def _hold(self, c: sqlite3.Connection, run_id: str) -> None:
        """Inside a write transaction: ``LeaseLost`` unless this process holds ``run_id``."""
        row = c.execute("SELECT 1 FROM runs WHERE run_id = ? AND owner = ? AND status = 'running'",
                        (run_id, self.owner)).fetchone()
        if row is None:
            raise LeaseLost(run_id)

    def record(self, result: RunResult) -> bool:
        """Write a held run's whole result in one transaction, its status last.

        Returns ``False`` (and writes nothing) when this process no longer
        holds the run: another process took it over and redoes it.
        """
        if result.status not in ("done", "diverged", "failed"):
            raise ValueError(f"bad status {result.status!r}")
        run_id = result.run_id
        with self.transaction() as c:
            try:
                self._hold(c, run_id)
            except LeaseLost:
                return False
            self._clear_partial(c, run_id)
            if result.lr_find is not None:
                f = result.lr_find
                c.execute("INSERT INTO lr_find VALUES (?, ?, ?, ?, ?)",
                          (run_id, f.method, f.suggestion, json.dumps(f.lrs),
                           json.dumps(f.losses)))
            c.executemany(
                "INSERT INTO epochs VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(run_id, m["epoch"], m["train_loss"], m["test_loss"], m["test_accuracy"],
                  m["test_top5"], m["seconds"]) for m in result.epochs])
            c.executemany("INSERT OR REPLACE INTO act_params VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          [(run_id, epoch, *r) for epoch, rows in result.params for r in rows])
            c.executemany("INSERT OR REPLACE INTO act_stats VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                          [(run_id, e, i, m, sd, neg, zero, json.dumps(h))
                           for e, i, m, sd, neg, zero, h in result.act_stats])
            if result.lr_choice is not None:
                ch = result.lr_choice
                c.execute("INSERT INTO lr_choice VALUES (?, ?, ?, ?, ?)",
                          (run_id, ch.path, ch.reason, json.dumps(ch.problems),
                           json.dumps(ch.tune)))
            c.execute(
                "UPDATE runs SET status = ?, lr = ?, env = ?, error = ?, finished = ?, "
                "flags = ?, lease_until = NULL "
                "WHERE run_id = ? AND owner = ? AND status = 'running'",
                (result.status, result.lr, json.dumps(result.env), result.error, time.time(),
                 ",".join(result.flags) or None, run_id, self.owner))
        return True

    def release(self, run_id: str) -> None:
        """Give a held run back (pending) after an interruption, dropping partial rows."""
        with self.transaction() as c:
            cur = c.execute("UPDATE runs SET status = 'pending', lease_until = NULL "
                            "WHERE run_id = ? AND owner = ? AND status = 'running'",
                            (run_id, self.owner))
            if cur.rowcount:
                self._clear_partial(c, run_id)

    def release_held(self) -> list[str]:
        """Give back every run this process still holds (pending), dropping partial rows.

        The safety net of an interruption: Ctrl-C can land between a claim's commit
        and the caller's bookkeeping, or while a finished run is being read back, so
        the caller's own list of held runs may miss one. Returns the run ids given back.
        """
        if self.conn.in_transaction:  # interrupted between BEGIN and its try block
            self.conn.execute("ROLLBACK")
        with self.transaction() as c:
            held = [r[0] for r in c.execute(
                "SELECT run_id FROM runs WHERE owner = ? AND status = 'running' ORDER BY rowid",
                (self.owner,))]
            for run_id in held:
                c.execute("UPDATE runs SET status = 'pending', lease_until = NULL "
                          "WHERE run_id = ?", (run_id,))
                self._clear_partial(c, run_id)
        return held

    def export(self, what: str) -> tuple[list[str], list[tuple]]:
        """``(columns, rows)`` of one export: ``epochs`` (one row per run and epoch),
        ``params`` (every learned activation parameter value; ``epoch = -1`` is the
        end of the run) or ``stats`` (activation statistics per epoch and site; none
        in databases older than schema 2)."""
        if what not in EXPORT_QUERIES:
            raise ValueError(f"unknown export {what!r}; choose one of {', '.join(EXPORT_QUERIES)}")
        if what == "stats" and not _columns(self.conn, "act_stats"):
            return _schema_columns("act_stats"), []
        cur = self.conn.execute(EXPORT_QUERIES[what])
        return [d[0] for d in cur.description], cur.fetchall()

    def results(self) -> list[dict[str, Any]]:
        """One dict per run with its last epoch's metrics (``None`` when it has none),
        its ``flags`` and how its rate was chosen (``lr_path``, ``lr_reason``)."""
        flags = "r.flags" if "flags" in _columns(self.conn, "runs") else "NULL"
        have_choice = bool(_columns(self.conn, "lr_choice"))
        choice = ("(SELECT path FROM lr_choice c WHERE c.run_id = r.run_id)",
                  "(SELECT reason FROM lr_choice c WHERE c.run_id = r.run_id)"
                  ) if have_choice else ("NULL", "NULL")
        query = f"""
            SELECT r.run_id, r.study, r.activation, r.model, r.dataset, r.seed, r.status,
                   {flags} AS flags, {choice[0]} AS lr_path, {choice[1]} AS lr_reason,
                   (SELECT COUNT(*) FROM epochs e WHERE e.run_id = r.run_id) AS epochs,
                   r.lr, e.test_accuracy, e.test_top5, e.test_loss, e.train_loss,
                   (SELECT AVG(seconds) FROM epochs e2 WHERE e2.run_id = r.run_id)
                       AS epoch_seconds,
                   r.error
            FROM runs r
            LEFT JOIN epochs e ON e.run_id = r.run_id
                 AND e.epoch = (SELECT MAX(epoch) FROM epochs e3 WHERE e3.run_id = r.run_id)
            ORDER BY r.dataset, r.model, r.activation, r.seed
        """
        cur = self.conn.execute(query)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
