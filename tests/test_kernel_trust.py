"""The kernel cache trusts only itself: planted, shared, damaged and forced entries.

A planted library is a real shared object whose constructor writes a marker
file when it is loaded; every case checks that the marker was never written,
that the study's forward pass still gives Dual Line's values (the reference
path), and that exactly one warning names the path and the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from learnact.kernels import cpu

PLANTED_C = textwrap.dedent("""
    #include <stdio.h>
    #include <stdlib.h>
    __attribute__((constructor)) static void planted(void) {
        const char *path = getenv("LEARNACT_TEST_MARKER");
        if (path) { FILE *f = fopen(path, "w"); if (f) { fputs("ran\\n", f); fclose(f); } }
    }
""")

# the forward pass a study makes; prints the largest error against Dual Line's formula
FORWARD = textwrap.dedent("""
    import torch, learnact
    x = torch.linspace(-3, 3, 13)
    y = learnact.DualLine()(x)
    expected = torch.where(x >= 0, x, 0.01 * x) - 0.22
    print("max error", float((y - expected).abs().max()))
""")

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to plant a library")
needs_root = pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0,
                                reason="files of another owner need root to make")


@pytest.fixture(scope="module")
def planted_so(tmp_path_factory) -> Path:
    """A library whose constructor writes ``$LEARNACT_TEST_MARKER``, shown to do so."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    folder = tmp_path_factory.mktemp("planted")
    (folder / "planted.c").write_text(PLANTED_C)
    so = folder / "planted.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(so), str(folder / "planted.c")],
                   check=True)
    # the control: loading it really runs its code
    marker = folder / "control"
    subprocess.run([sys.executable, "-c", f"import ctypes; ctypes.CDLL({str(so)!r})"],
                   env={**os.environ, "LEARNACT_TEST_MARKER": str(marker)}, check=True)
    assert marker.read_text() == "ran\n"
    return so


def _env(ext: Path, marker: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEARNACT_")}
    return {**env, "TORCH_EXTENSIONS_DIR": str(ext), "LEARNACT_CPU_ISA": "baseline",
            "LEARNACT_TEST_MARKER": str(marker), **extra}


def _plant(root: Path, planted: Path, monkeypatch, cxx: str | None = None) -> Path:
    """Put ``planted`` where the baseline variant's library is looked for; returns the entry."""
    if cxx is not None:
        monkeypatch.setenv("CXX", cxx)
    name = cpu.entry_name("baseline")  # computable by anyone: sources, flags, versions
    entry = root / name
    entry.mkdir(parents=True)
    shutil.copy(planted, entry / f"{name}.so")
    return entry


def _forward(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", FORWARD], env=env, capture_output=True,
                          text=True, timeout=300)


def _one_warning(stderr: str) -> str:
    warned = [ln for ln in stderr.splitlines() if "RuntimeWarning" in ln]
    assert len(warned) == 1, stderr
    return warned[0]


def _chown_tree(path: Path, uid: int) -> None:
    for p in (path, *path.rglob("*")):
        os.lchown(p, uid, uid)


@pytest.mark.slow
@needs_gcc
@pytest.mark.parametrize("case", [
    pytest.param("shared-cache-of-another-user", marks=needs_root),
    "world-writable-entry-in-a-sticky-folder",
    "world-writable-folder-on-the-path",
    "symlinked-library",
])
def test_a_planted_library_never_runs(case, planted_so, tmp_path, monkeypatch):
    ext = tmp_path / "shared"
    ext.mkdir()
    root = ext / "learnact"
    marker = tmp_path / "marker"
    os.chmod(ext, 0o1777)  # like /tmp
    if case == "shared-cache-of-another-user":
        entry = _plant(root, planted_so, monkeypatch)
        (entry / cpu.DIGEST_FILE).write_text(json.dumps(
            {"sha256": hashlib.sha256(planted_so.read_bytes()).hexdigest()}))
        _chown_tree(root, 65534)  # the other user got there first
        why = f"{root} belongs to {cpu._owner_name(65534)}, not to you"
    elif case == "world-writable-entry-in-a-sticky-folder":
        entry = _plant(root, planted_so, monkeypatch)
        os.chmod(root, 0o755)
        os.chmod(entry, 0o777)
        (entry / cpu.DIGEST_FILE).write_text(json.dumps(
            {"sha256": hashlib.sha256(planted_so.read_bytes()).hexdigest()}))
        why = f"{entry} is writable by every user (mode 777)"
    elif case == "world-writable-folder-on-the-path":
        entry = _plant(root, planted_so, monkeypatch)
        os.chmod(ext, 0o777)  # no sticky bit: anyone may rename our folder away
        why = f"{ext} is writable by every user (mode 777)"
    else:
        name = cpu.entry_name("baseline")
        entry = root / name
        entry.mkdir(parents=True)
        os.chmod(ext, 0o755)
        (entry / f"{name}.so").symlink_to(planted_so)
        why = "is not a regular file (a link?)"
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if not p.is_symlink()}
    out = _forward(_env(ext, marker))
    assert out.returncode == 0, out.stderr
    assert not marker.exists(), "the planted library's code ran"
    assert "max error 0.0" in out.stdout
    warning = _one_warning(out.stderr)
    assert why in warning and "the pure-PyTorch path" in warning
    # nothing of the planted entry was built over or removed
    assert {p: p.stat().st_mtime_ns for p in before} == before


@pytest.mark.slow
@needs_gcc
@pytest.mark.parametrize("digest", ["none", "wrong"])
def test_a_library_without_its_recorded_digest_is_never_loaded(digest, planted_so, tmp_path,
                                                                monkeypatch):
    ext = tmp_path / "private"
    marker = tmp_path / "marker"
    broken_cxx = str(tmp_path / "no-compiler")  # so that it cannot be rebuilt either
    entry = _plant(ext / "learnact", planted_so, monkeypatch, cxx=broken_cxx)
    if digest == "wrong":
        (entry / cpu.DIGEST_FILE).write_text(json.dumps({"sha256": "0" * 64}))
    out = _forward(_env(ext, marker, CXX=broken_cxx))
    assert out.returncode == 0, out.stderr
    assert not marker.exists(), "the planted library's code ran"
    assert "max error 0.0" in out.stdout
    warning = _one_warning(out.stderr)
    why = "has no digest" if digest == "none" else "does not match the SHA-256"
    assert why in warning and "cannot be rebuilt: no working C++ compiler" in warning


@needs_root
def test_kernels_info_shows_the_check(tmp_path, monkeypatch, capsys):
    from learnact.cli import main

    ext = tmp_path / "ext"
    ext.mkdir()
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(ext))
    monkeypatch.setenv("LEARNACT_CPU_ISA", "baseline")
    assert main(["kernels", "info"]) == 0
    assert "cache check:           private" in capsys.readouterr().out
    (ext / "learnact").mkdir()
    os.chown(ext / "learnact", 65534, 65534)
    assert main(["kernels", "info"]) == 0
    out = capsys.readouterr().out
    assert f"NOT TRUSTED, nothing is loaded from it: the kernel cache is not private: " \
           f"{ext / 'learnact'} belongs to" in out
    assert out.count("not loaded: the cache is not trusted") == 3
    # and a build into it is refused, as one line
    assert main(["kernels", "build", "--isa", "baseline"]) == 2
    err = capsys.readouterr()
    assert "belongs to" in err.out and len(err.err.strip().splitlines()) == 1
    assert not list((ext / "learnact").iterdir())


def _fake_compile(calls: list[str]):
    """A stand-in for the compiler: a sealed entry with a small file as its library."""
    def compile_(isa: str) -> Path:
        calls.append(isa)
        root = Path(os.path.realpath(cpu.cache_dir()))
        tmp = root / f".build-fake-{os.getpid()}-x"
        tmp.mkdir()
        so = tmp / cpu._so_path(isa).name
        so.write_bytes(b"\x7fELF not really" + os.urandom(8))
        cpu._seal(tmp, so)
        os.rename(tmp, root / cpu.entry_name(isa))
        return root / cpu.entry_name(isa) / so.name
    return compile_


def test_force_rebuilds_even_a_verified_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    calls: list[str] = []
    monkeypatch.setattr(cpu, "_compile", _fake_compile(calls))
    assert [r.status for r in cpu.build(["baseline"])] == ["built"]
    so = cpu._so_path("baseline")
    first = so.read_bytes()
    assert [r.status for r in cpu.build(["baseline"])] == ["cached"]
    (res,) = cpu.build(["baseline"], force=True)
    assert res.status == "built" and calls == ["baseline", "baseline"]
    assert so.read_bytes() != first  # a new library, not the old one called "cached"
    assert cpu._entry_state("baseline", Path(os.path.realpath(cpu.cache_dir())))[0] == "ok"
    assert not list((tmp_path / "learnact").glob(".build-*"))


@pytest.mark.parametrize("value", ["nan", "1e999", "inf", "-inf", "-1"])
def test_a_non_finite_build_timeout_is_refused_not_waited_on(value, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setenv("LEARNACT_CPU_ISA", "baseline")
    root = tmp_path / "learnact"
    root.mkdir()
    lock = root / f"{cpu.entry_name('baseline')}.lock"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import fcntl, os, sys, time
        fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(120)
    """), str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        monkeypatch.setenv("LEARNACT_BUILD_TIMEOUT", value)
        cpu.reset()
        start = time.monotonic()
        with pytest.raises(ValueError, match=r"LEARNACT_BUILD_TIMEOUT must be a number of "
                                             r"seconds \(finite, >= 0\), got"):
            cpu.load()
        with pytest.raises(ValueError, match="LEARNACT_BUILD_TIMEOUT"):
            cpu.check_environment()
        assert time.monotonic() - start < 10
    finally:
        holder.kill()
        holder.wait()
        cpu.reset()


def test_kernels_info_refuses_a_non_finite_timeout_in_one_line(tmp_path, monkeypatch, capsys):
    from learnact.cli import main

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.setenv("LEARNACT_BUILD_TIMEOUT", "nan")
    assert main(["kernels", "info"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "LEARNACT_BUILD_TIMEOUT must be a number" in err[0]


_FUSED_CALL = textwrap.dedent("""
    import torch, learnact
    from learnact.kernels import cpu, kernel_mode
    x = torch.linspace(-3, 3, 1001, requires_grad=True)
    with kernel_mode("fused"):
        y = learnact.DualLine()(x)
        y.sum().backward()
    expected = torch.where(x >= 0, x, 0.01 * x) - 0.22
    print("fused", cpu.loaded_isa(cpu.load()), float((y - expected).abs().max()))
""")


def _verified_entry_to_copy() -> tuple[str, Path] | None:
    """A verified entry of the machine's own cache this CPU runs, to save the test a build."""
    from torch.utils.cpp_extension import get_default_build_root

    env_root = os.environ.pop("TORCH_EXTENSIONS_DIR", None)
    try:
        root = Path(os.path.realpath(Path(get_default_build_root()) / "learnact"))
        for isa in reversed(cpu.cpu_isas()):
            try:
                if cpu._entry_state(isa, root)[0] == "ok":
                    return isa, root / cpu.entry_name(isa)
            except cpu._Untrusted:
                continue
        return None
    finally:
        if env_root is not None:
            os.environ["TORCH_EXTENSIONS_DIR"] = env_root


@pytest.mark.slow
@pytest.mark.timeout(1500)  # one or two real builds, on shared cores
@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX")
def test_a_truncated_library_is_rebuilt_never_loaded(tmp_path):
    found = _verified_entry_to_copy()
    isa = found[0] if found else "baseline"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LEARNACT_")},
           "TORCH_EXTENSIONS_DIR": str(tmp_path), "LEARNACT_CPU_ISA": isa}

    def cli(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "learnact.cli", *argv], env=env,
                              capture_output=True, text=True, timeout=700)

    if found:  # a copy of a verified build: only the rebuild below is paid for
        (tmp_path / "learnact").mkdir(mode=0o755)
        shutil.copytree(found[1], tmp_path / "learnact" / found[1].name)
    else:
        first = cli("kernels", "build")
        assert first.returncode == 0 and f"{isa:<9} built in" in first.stdout, first.stderr
    (so,) = (tmp_path / "learnact").glob(f"learnact_cpu_{isa}_*/*.so")
    size = so.stat().st_size
    assert size > 8192
    assert f"{isa:<9} built (SHA-256" in cli("kernels", "info").stdout
    os.truncate(so, 4096)  # `truncate -s 4096`: loading this would die of SIGBUS
    info = cli("kernels", "info")
    assert "damaged, rebuilt on next use" in info.stdout
    assert "does not match the SHA-256 recorded when it was built (4,096 bytes" in info.stdout
    run = subprocess.run([sys.executable, "-c", _FUSED_CALL], env=env, capture_output=True,
                         text=True, timeout=700)
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])  # -7 would be SIGBUS
    word, loaded, error = run.stdout.split()
    assert (word, loaded) == ("fused", isa) and float(error) < 1e-6  # FMA may round last bits
    # the build says so, once, on stderr, before the silence: why, once per machine, how long
    (line,) = [ln for ln in run.stderr.splitlines() if "building the fused" in ln]
    assert "does not match the SHA-256" in line and "; rebuilding the fused CPU kernels" in line
    assert "once per machine" in line and "about a minute" in line
    assert so.stat().st_size > 8192
    assert f"{isa:<9} built (SHA-256" in cli("kernels", "info").stdout
