"""benchmarks/gpu_check.py's CPU dry run: every section runs and prints one table."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def _dry_run(*extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    return subprocess.run([sys.executable, str(SCRIPT), "--dry-run", *extra],
                          capture_output=True, text=True, timeout=280, env=env)


def _table(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("section"))
    return [line for line in lines[start + 2:] if line.strip()]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("PIL") is None, reason="needs Pillow")
def test_dry_run_prints_one_table_with_every_section():
    out = _dry_run()
    assert out.returncode == 0, out.stdout + out.stderr
    rows = _table(out.stdout)
    sections = {row.split()[0] for row in rows}
    assert {"amp", "wrn22", "xresnet50", "studies"} <= sections, sections
    if importlib.util.find_spec("triton") is not None:
        assert {"triton", "bandwidth"} <= sections
        # 3 modules x 3 dtypes x 2 layouts, each against the reference, all within tolerance
        checks = [r for r in rows if r.startswith("triton") and "section time" not in r]
        assert len(checks) == 18
    assert all("  ok  " in row for row in rows), out.stdout
    assert "FAIL" not in out.stdout
    # a study epoch was really run and stored: seconds and an accuracy
    epoch = next(line for line in out.stdout.splitlines()
                 if line.startswith("wrn22") and "1 epoch" in line)
    assert " s (" in epoch and "test acc" in epoch


def test_without_cuda_and_without_dry_run_it_says_so():
    if importlib.util.find_spec("torch") and __import__("torch").cuda.is_available():
        pytest.skip("a CUDA device is here: the script would run for minutes")
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2
    assert "--dry-run" in out.stderr
