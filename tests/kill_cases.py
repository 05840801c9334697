"""A one-run study killed with SIGKILL between epochs: shared by the checkpoint tests
(a local resume) and the Ray tests (a Ray task resumes it)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


def one_run_study(db: Path, data: str, *extra: str) -> list[str]:
    """The command line of a 3-epoch Dual Line study on ``data`` into ``db``."""
    return [sys.executable, "-m", "learnact.cli", "study", "--dataset", data, "--activations",
            "dual_line", "--epochs", "3", "--lr", "0.003", "--batch-size", "64",
            "--train-limit", "3000", "--db", str(db), *extra]


def last_epoch(db: Path) -> tuple:
    """(train_loss, test_loss, test_accuracy, status) of the study's last stored epoch."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT e.train_loss, e.test_loss, e.test_accuracy, r.status FROM "
                           "epochs e JOIN runs r USING (run_id) ORDER BY epoch DESC").fetchone()
    finally:
        con.close()


def kill_after_first_checkpoint(db: Path, data: str, env: dict) -> Path:
    """Start the study, SIGKILL it once its first checkpoint exists; the checkpoint folder."""
    ckpts = db.with_name(db.name + ".checkpoints")
    proc = subprocess.Popen(one_run_study(db, data), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while not any(ckpts.glob("*.pt")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before its first checkpoint was seen"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert any(ckpts.glob("*.pt"))
    return ckpts
