"""The kernel build system: choice of variant, cache keys, failures, locks and killed builds.

These tests never depend on the machine's own extension cache: each one that
builds or locks points ``$TORCH_EXTENSIONS_DIR`` at an empty temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
import torch

import learnact
from learnact.kernels import cpu, dispatch, kernel_mode


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty extension cache and a process that has loaded nothing yet."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    monkeypatch.delenv("LEARNACT_CPU_ISA", raising=False)
    monkeypatch.delenv("LEARNACT_BUILD_TIMEOUT", raising=False)
    cpu.reset()
    yield tmp_path / "ext" / "learnact"
    cpu.reset()


# ---------------------------------------------------------------- choosing a variant


def test_auto_follows_atens_capability_within_what_the_cpu_runs(monkeypatch):
    cpu._auto_isa.cache_clear()
    monkeypatch.delenv("LEARNACT_CPU_ISA", raising=False)
    monkeypatch.setattr(cpu, "cpu_isas", lambda: ("baseline", "avx2"))
    try:
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
        assert cpu.selected_isa() == "avx2"
        cpu._auto_isa.cache_clear()
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
        assert cpu.selected_isa() == "baseline"  # ATen's pick, but this CPU lacks it
        cpu._auto_isa.cache_clear()
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "DEFAULT")
        assert cpu.selected_isa() == "baseline"
    finally:
        cpu._auto_isa.cache_clear()


def test_cpu_isas_reads_the_cpu_flags(monkeypatch):
    import platform

    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(cpu, "_cpuinfo_flags", lambda: frozenset({"sse2", "avx2", "fma"}))
    assert cpu.cpu_isas() == ("baseline",)  # no f16c: ATen's AVX2 code needs it
    monkeypatch.setattr(cpu, "_cpuinfo_flags", lambda: frozenset({"avx2", "fma", "f16c"}))
    assert cpu.cpu_isas() == ("baseline", "avx2")
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert cpu.cpu_isas() == ("baseline",)


def test_bad_isa_variable_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LEARNACT_CPU_ISA", "sse9")
    with pytest.raises(ValueError, match="LEARNACT_CPU_ISA must be one of auto, baseline"):
        cpu.selected_isa()


def test_bad_timeout_variable_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LEARNACT_BUILD_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="LEARNACT_BUILD_TIMEOUT must be a number"):
        cpu._timeout()


def test_a_forced_variant_the_cpu_cannot_run_is_refused_not_run(fresh, monkeypatch):
    monkeypatch.setattr(cpu, "cpu_isas", lambda: ("baseline",))
    monkeypatch.setattr(cpu, "_ensure_built", lambda isa: pytest.fail("must not build"))
    monkeypatch.setenv("LEARNACT_CPU_ISA", "avx512")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # forced: no fallback to another variant
        assert cpu.load() is None
        assert cpu.load() is None
    assert len(caught) == 1 and "cannot execute the avx512 variant" in str(caught[0].message)
    assert "cannot execute the avx512 variant" in cpu.unavailable_reason()
    x = torch.randn(4, requires_grad=True)
    learnact.DualLine()(x).sum().backward()  # auto: the reference path
    with kernel_mode("fused"), pytest.raises(RuntimeError, match="cannot execute the avx512"):
        learnact.DualLine()(x)


# ---------------------------------------------------------------- cache keys


def test_cache_honours_torch_extensions_dir_and_is_keyed_by_content(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    assert cpu.cache_dir() == tmp_path / "learnact"
    names = {isa: cpu.entry_name(isa) for isa in cpu.ISAS}
    assert len(set(names.values())) == 3  # one entry per variant
    # the same sources at another path (another checkout or venv): the same entry
    copy = tmp_path / "copy"
    copy.mkdir()
    for src in cpu.SOURCES + cpu.HEADERS:
        shutil.copy(src, copy / src.name)
    monkeypatch.setattr(cpu, "SOURCES", [copy / s.name for s in cpu.SOURCES])
    monkeypatch.setattr(cpu, "HEADERS", [copy / h.name for h in cpu.HEADERS])
    assert cpu.entry_name("avx2") == names["avx2"]
    # a changed kernel is never loaded stale
    (copy / "recipe_cpu.cpp").write_text((copy / "recipe_cpu.cpp").read_text() + "\n// x\n")
    assert cpu.entry_name("avx2") != names["avx2"]


def test_the_avx2_flags_satisfy_the_compiler_probe(tmp_path):
    # GCC 12 refused the old AVX2 flags (no -mf16c) in ATen's half-precision code
    assert "-mf16c" in cpu.ISA_FLAGS["avx2"]
    assert cpu._probe("avx2", tmp_path) is None


# ---------------------------------------------------------------- failures


def test_a_rejected_variant_is_recorded_and_not_retried(fresh, monkeypatch):
    # the flags of the first release: the compiler probe rejects them on GCC 12
    monkeypatch.setitem(cpu.ISA_FLAGS, "avx2",
                        ["-mavx2", "-mfma", "-mno-f16c", "-DCPU_CAPABILITY=AVX2"])
    probes = []
    real_probe = cpu._probe
    monkeypatch.setattr(cpu, "_probe", lambda isa, d: probes.append(isa) or real_probe(isa, d))
    (res,) = cpu.build(["avx2"])
    assert not res.ok and "rejects avx2" in res.detail and "target specific" in res.detail
    record = json.loads((fresh / f"{cpu.entry_name('avx2')}.failed").read_text())
    assert "rejects avx2" in record["error"] and record["flags"][-1] == "-DCPU_CAPABILITY=AVX2"
    (again,) = cpu.build(["avx2"])  # another process would read the same record
    assert not again.ok and "recorded in" in again.detail and probes == ["avx2"]
    cpu.build(["avx2"], force=True)  # --force retries
    assert probes == ["avx2", "avx2"]
    assert not list(fresh.glob(".build-*"))  # nothing half-written is left


def test_a_failed_isa_build_falls_back_to_the_baseline_silently(fresh, monkeypatch):
    built = []

    def fake(isa, force=False):
        built.append(isa)
        if isa != "baseline":
            raise cpu._BuildFailed(f"the {isa} build failed: boom")
        return Path("baseline.so"), "cached"

    monkeypatch.setattr(cpu, "_ensure_built", fake)
    monkeypatch.setattr(cpu, "_import", lambda so: "baseline module")
    monkeypatch.setattr(cpu, "_auto_isa", lambda: "avx2")
    monkeypatch.setattr(cpu, "cpu_isas", lambda: ("baseline", "avx2"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a working fallback warns about nothing
        assert cpu.load() == "baseline module"
        assert cpu.load() == "baseline module"
    assert built == ["avx2", "baseline"]  # once each per process


def test_no_variant_at_all_warns_once_and_says_why(fresh, monkeypatch):
    def broken(isa, force=False):
        raise cpu._BuildFailed("no working C++ compiler ('c++')")

    monkeypatch.setattr(cpu, "_ensure_built", broken)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cpu.load() is None
        assert cpu.load() is None
        assert dispatch.fused_unavailable_reason(torch.randn(2)) is not None
    assert len([w for w in caught if "unavailable" in str(w.message)]) == 1
    assert "no working C++ compiler" in cpu.unavailable_reason()
    with kernel_mode("fused"), pytest.raises(RuntimeError, match=r"no working C\+\+ compiler"):
        learnact.DualLine()(torch.randn(3))


def test_no_compiler_is_reported_without_recording_a_failure(fresh, monkeypatch):
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    (res,) = cpu.build(["baseline"])
    assert not res.ok and "no working C++ compiler" in res.detail
    assert not fresh.exists() or not list(fresh.glob("*.failed"))  # a fixable environment


# ---------------------------------------------------------------- locks and killed builds

_HOLD_LOCK = textwrap.dedent("""
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(120)
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="flock is POSIX")
def test_a_held_lock_times_out_to_the_reference_path_with_one_warning(fresh, monkeypatch):
    fresh.mkdir(parents=True)
    monkeypatch.setenv("LEARNACT_CPU_ISA", "baseline")
    lock = fresh / f"{cpu.entry_name('baseline')}.lock"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(lock)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        monkeypatch.setenv("LEARNACT_BUILD_TIMEOUT", "1")
        monkeypatch.setattr(cpu, "_compile", lambda isa: pytest.fail("must not build"))
        start = time.monotonic()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert cpu.load() is None
            y = learnact.DualLine()(torch.randn(5))  # the reference path, no second wait
        assert time.monotonic() - start < 10
        assert y.shape == (5,)
        msgs = [str(w.message) for w in caught if "build lock" in str(w.message)]
        assert len(msgs) == 1 and "LEARNACT_BUILD_TIMEOUT" in msgs[0]
    finally:
        holder.kill()
        holder.wait()


_FIRST_CALL = textwrap.dedent("""
    import time, torch, learnact
    from learnact.kernels import kernel_mode
    start = time.monotonic()
    x = torch.randn(1000, requires_grad=True)
    with kernel_mode("fused"):
        learnact.DualLine()(x).sum().backward()
    print(f"first fused call {time.monotonic() - start:.1f} s", flush=True)
""")


@pytest.mark.slow
@pytest.mark.timeout(1500)  # two real builds (one killed), on shared cores
@pytest.mark.skipif(not hasattr(os, "fork"), reason="flock is POSIX")
def test_sigkill_in_the_middle_of_a_build_leaves_nothing_that_blocks_the_next(tmp_path):
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path), "LEARNACT_CPU_ISA": "baseline",
           "LEARNACT_BUILD_TIMEOUT": "250"}
    root = tmp_path / "learnact"
    # its own session, so the compilers a SIGKILL of Python leaves running (as a user's
    # kill -9 would) can be stopped at the end instead of eating the next tests' cores
    victim = subprocess.Popen([sys.executable, "-c", _FIRST_CALL], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    deadline = time.monotonic() + 60
    # wait until the compiler is really at work in the victim's build folder
    while time.monotonic() < deadline and not list(root.glob(".build-*/*.ninja")):
        time.sleep(0.2)
    assert list(root.glob(".build-*/*.ninja")), "the build never started"
    time.sleep(2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    try:
        assert not list(root.glob("learnact_cpu_*/")), "a killed build must not look finished"
        # the next process is not blocked by the dead builder's lock or its debris: it takes
        # the lock and says it is building at once (a held lock would keep it silent for the
        # 250 s of LEARNACT_BUILD_TIMEOUT), then builds to the end however slow the machine
        err_path = tmp_path / "next.err"
        with open(err_path, "w") as err:
            nxt = subprocess.Popen([sys.executable, "-c", _FIRST_CALL], env=env,
                                   stdout=subprocess.PIPE, stderr=err, text=True)
            deadline = time.monotonic() + 60
            while (time.monotonic() < deadline and nxt.poll() is None
                   and "building the fused CPU kernels" not in err_path.read_text()):
                time.sleep(0.2)
            assert "building the fused CPU kernels" in err_path.read_text(), err_path.read_text()
            stdout, _ = nxt.communicate(timeout=1200)
        assert nxt.returncode == 0, err_path.read_text()[-2000:]
        assert "first fused call" in stdout
        assert len(list(root.glob("learnact_cpu_baseline_*/*.so"))) == 1
        # and a third process loads the cached build in well under the 2 s goal's order
        again = subprocess.run([sys.executable, "-c", _FIRST_CALL], env=env, capture_output=True,
                               text=True, timeout=120)
        assert again.returncode == 0 and "first fused call" in again.stdout
        assert float(again.stdout.split()[3]) < 10
    finally:
        try:
            os.killpg(victim.pid, signal.SIGKILL)  # the orphaned compilers, if any are left
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------- the CLI


def test_kernels_info_says_what_will_run(capsys, monkeypatch, tmp_path):
    from learnact.cli import main

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setenv("LEARNACT_CPU_ISA", "baseline")
    assert main(["kernels", "info"]) == 0
    out = capsys.readouterr().out
    assert "selected variant:      baseline (by LEARNACT_CPU_ISA)" in out
    assert str(tmp_path / "learnact") in out
    assert "not built (builds on first use)" in out and "-mf16c" in out


def test_kernels_build_reports_a_failure_as_a_one_line_error(capsys, monkeypatch, tmp_path):
    from learnact.cli import main

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    assert main(["kernels", "build", "--isa", "baseline"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not be built" in err[0]
