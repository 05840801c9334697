"""Build (once per machine) and load the C++ CPU kernels, one variant per instruction set.

Variants (``ISAS``): ``baseline`` (portable x86-64/any CPU), ``avx2`` and
``avx512``. By default the variant is ATen's own choice for this CPU
(``torch.backends.cpu.get_cpu_capability()``, which honours
``$ATEN_CPU_CAPABILITY``); ``$LEARNACT_CPU_ISA`` (``auto``, ``baseline``,
``avx2``, ``avx512``) forces one. A forced variant the CPU cannot execute is
refused with the reason, never run.

The build cache is built so that a user never waits on it twice and it can
never hang:

- it lives in ``$TORCH_EXTENSIONS_DIR/learnact`` (else torch's own default,
  ``~/.cache/torch_extensions/learnact``), one entry per variant, named by a
  hash of the sources, flags, compiler, torch and Python versions (not the
  checkout's path, so one machine builds each variant once);
- a build runs in a private temporary folder that is renamed into place when
  it is complete, so a killed build leaves nothing half-written;
- builders take ``fcntl.flock`` on a lock file (the kernel drops it when the
  holder dies, so a lock is never stale); waiters give up after
  ``$LEARNACT_BUILD_TIMEOUT`` seconds (default 600) and use the reference path
  with one warning;
- a failed build is recorded (``<entry>.failed``), so other processes do not
  retry it; ``learnact kernels build --force`` forgets failures;
- before an ISA variant is built, a tiny probe using the intrinsics the kernels
  need checks that the compiler accepts its flags;
- a build announces itself with one line on stderr (it happens once per
  machine and takes about a minute).

The cache trusts only itself, because loading a library runs its code:

- every folder from ``/`` down to the cache folder must belong to you (or
  root) and be writable by no one else; a world-writable folder with the
  sticky bit (``/tmp``) is allowed only above a folder of yours, since no one
  else can then rename or replace that folder;
- an entry (its folder and its library) must belong to you, be writable by no
  one else, and not be a symbolic link;
- each build records the library's SHA-256 beside it (``digest.json``); a
  library whose digest does not match (truncated, damaged, or from an older
  learnact that recorded none) is rebuilt, never loaded;
- anything else is not loaded: one warning says which path and why, and the
  pure-PyTorch path runs. ``learnact kernels info`` shows the checks.

Nothing is compiled at ``import learnact``; ``learnact kernels build`` builds
ahead of time and ``learnact kernels info`` says what will run.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.machinery
import importlib.util
import json
import logging
import math
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .._environ import environ_get
from .._pids import pid_alive
from ..errors import ConfigError

__all__ = [
    "ISAS",
    "ISA_FLAGS",
    "BuildResult",
    "build",
    "cache_dir",
    "check_environment",
    "cpu_isas",
    "info",
    "load",
    "loaded_isa",
    "reset",
    "selected_isa",
    "status",
    "unavailable_reason",
]

log = logging.getLogger(__name__)

SOURCES = [Path(__file__).with_name(name) for name in ("dual_line_cpu.cpp", "recipe_cpu.cpp")]
HEADERS = [Path(__file__).with_name(name) for name in ("kernel_common.h", "simd.h")]
ISAS = ("baseline", "avx2", "avx512")
# at::parallel_for only runs threads when the extension itself is built with OpenMP
CFLAGS = ["-O3", "-fopenmp"]
# Per variant. -mf16c is part of ATen's AVX2 set (its Vectorized<Half> converts with
# _cvtss_sh); without it GCC 12 refuses the AVX2 build ("inlining failed ... target
# specific option mismatch"). -mavx512f implies F16C, but it is listed for clarity.
ISA_FLAGS = {
    "baseline": ["-DCPU_CAPABILITY=DEFAULT"],
    "avx2": ["-mavx2", "-mfma", "-mf16c", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"],
    "avx512": ["-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512bw", "-mavx512vl",
               "-mavx512dq", "-DCPU_CAPABILITY=AVX512", "-DCPU_CAPABILITY_AVX512"],
}
# /proc/cpuinfo flags a variant needs to execute
_CPU_FLAGS = {
    "avx2": {"avx2", "fma", "f16c"},
    "avx512": {"avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq"},
}
# the intrinsics the kernels (and ATen's Vectorized headers) use, per variant
_PROBES = {
    "avx2": """#include <immintrin.h>
float f(const float* p) {
  __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(p), _mm256_set1_ps(2.f), _mm256_set1_ps(1.f));
  __m128i h = _mm256_cvtps_ph(v, 0);
  __m256 b = _mm256_blendv_ps(v, _mm256_cvtph_ps(h), _mm256_cmp_ps(v, v, _CMP_LT_OQ));
  return _mm_cvtss_f32(_mm256_castps256_ps128(b)) + _cvtsh_ss(_cvtss_sh(1.f, 0));
}
""",
    "avx512": """#include <immintrin.h>
float f(const float* p) {
  __m512 v = _mm512_fmadd_ps(_mm512_loadu_ps(p), _mm512_set1_ps(2.f), _mm512_set1_ps(1.f));
  __mmask16 m = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
  __m256i h = _mm512_cvtps_ph(_mm512_mask_blend_ps(m, v, _mm512_setzero_ps()), 0);
  __m512i w = _mm512_add_epi16(_mm512_setzero_si512(), _mm512_setzero_si512());
  __m256d d = _mm256_cvtps_pd(_mm_loadu_ps(p));
  return _mm512_reduce_add_ps(_mm512_cvtph_ps(h)) + (float)_mm512_reduce_add_epi32(w)
         + (float)_mm256_cvtsd_f64(d) + _cvtsh_ss(_cvtss_sh(1.f, 0));
}
""",
}
_DEFAULT_TIMEOUT = 600.0
_lock = threading.Lock()


@dataclass(frozen=True)
class BuildResult:
    """The outcome of :func:`build` for one variant."""

    isa: str
    ok: bool
    #: ``cached`` (already built), ``built``, ``failed`` (now or before) or ``skipped``
    status: str
    path: Path | None
    detail: str = ""
    seconds: float = 0.0


# ------------------------------------------------------------------ machine facts


def cpu_isas() -> tuple[str, ...]:
    """The variants this CPU can execute, from ``/proc/cpuinfo`` (else ATen's capability)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return ("baseline",)
    flags = _cpuinfo_flags()
    if flags is None:  # no /proc (macOS, Windows): trust ATen's own detection
        import torch

        cap = torch.backends.cpu.get_cpu_capability()
        top = {"AVX512": ("avx2", "avx512"), "AVX2": ("avx2",)}.get(cap, ())
        return ("baseline", *top)
    return ("baseline", *(isa for isa in ("avx2", "avx512") if _CPU_FLAGS[isa] <= flags))


@functools.lru_cache(maxsize=1)
def _cpuinfo_flags() -> frozenset[str] | None:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return None


def selected_isa() -> str:
    """The variant this process uses: ``$LEARNACT_CPU_ISA``, else ATen's choice for this CPU.

    Raises ``ValueError`` for a ``$LEARNACT_CPU_ISA`` that names no variant.
    """
    forced = os.environ.get("LEARNACT_CPU_ISA", "auto").strip().lower() or "auto"
    if forced != "auto":
        if forced not in ISAS:
            raise ConfigError(f"LEARNACT_CPU_ISA must be one of auto, {', '.join(ISAS)}, "
                             f"got {forced!r}")
        return forced
    return _auto_isa()


@functools.lru_cache(maxsize=1)
def _auto_isa() -> str:
    import torch

    cap = torch.backends.cpu.get_cpu_capability()
    isa = {"AVX512": "avx512", "AVX2": "avx2"}.get(cap, "baseline")
    return isa if isa in cpu_isas() else "baseline"


def _forced() -> bool:
    return os.environ.get("LEARNACT_CPU_ISA", "auto").strip().lower() not in ("", "auto")


def cache_dir() -> Path:
    """Where built variants live: ``$TORCH_EXTENSIONS_DIR/learnact`` or torch's default root."""
    root = os.environ.get("TORCH_EXTENSIONS_DIR")
    if not root:
        from torch.utils.cpp_extension import get_default_build_root

        root = get_default_build_root()
    return Path(root) / "learnact"


def _compiler() -> str:
    return os.environ.get("CXX", "c++")


@functools.lru_cache(maxsize=4)
def _compiler_version(cxx: str) -> str | None:
    """The compiler's first ``--version`` line, or ``None`` when there is no such compiler."""
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.splitlines()[0].strip() if out.returncode == 0 and out.stdout else None


def _flags(isa: str) -> list[str]:
    return CFLAGS + ISA_FLAGS[isa]


def entry_name(isa: str) -> str:
    """The cache entry (and Python module) name of a variant: a hash of everything that matters.

    Sources, flags, compiler, torch and Python versions; not the checkout's path,
    so two checkouts (or venvs) on one machine share one build per variant.
    """
    import torch

    key = hashlib.sha256()
    for src in SOURCES + HEADERS:
        key.update(src.name.encode() + b"\0" + src.read_bytes() + b"\0")
    key.update(" ".join(_flags(isa)).encode())
    key.update(f"|{_compiler_version(_compiler())}|{torch.__version__}|".encode())
    key.update(f"{sys.implementation.cache_tag}|{platform.machine()}".encode())
    return f"learnact_cpu_{isa}_{key.hexdigest()[:16]}"


def _so_path(isa: str) -> Path:
    name = entry_name(isa)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[-1]  # ".so" / ".pyd", as torch names it
    return cache_dir() / name / f"{name}{suffix if suffix in ('.so', '.pyd') else '.so'}"


def _failure_path(isa: str) -> Path:
    return cache_dir() / f"{entry_name(isa)}.failed"


def _read_failure(isa: str) -> str | None:
    try:
        return json.loads(_failure_path(isa).read_text())["error"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _unbuildable(isa: str) -> str | None:
    """Why ``isa`` cannot be built here at all (cheap checks, never cached on disk)."""
    if isa != "baseline" and platform.machine().lower() not in ("x86_64", "amd64"):
        return f"{isa} is an x86-64 instruction set and this machine is {platform.machine()}"
    if _compiler_version(_compiler()) is None:
        return f"no working C++ compiler ({_compiler()!r}; set $CXX to choose one)"
    _ninja_on_path()
    if shutil.which("ninja") is None:
        return "ninja is not installed (pip install ninja)"
    return None


def _ninja_on_path() -> None:
    bindir = str(Path(sys.executable).parent)
    if shutil.which("ninja") is None and bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


# ------------------------------------------------------------------ trust


class _Untrusted(Exception):
    """A cache folder or entry that someone else could have written: never loaded."""


DIGEST_FILE = "digest.json"


def _owner_name(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def _private_group(gid: int) -> bool:
    """Whether ``gid`` is this user's own group (the user-private-group scheme, umask 002)."""
    try:
        import grp

        me = _owner_name(os.geteuid())
        group = grp.getgrgid(gid)
    except (ImportError, KeyError):
        return False
    return gid == os.getegid() and group.gr_name == me and all(m == me for m in group.gr_mem)


def _stat_problem(path: Path, st: os.stat_result, *, sticky_ok: bool) -> str | None:
    """Why ``path`` (with stat ``st``) could have been written by another user, or ``None``."""
    if not hasattr(os, "geteuid"):  # Windows: no POSIX owners or modes to check
        return None
    if st.st_uid not in (os.geteuid(), 0):
        return f"{path} belongs to {_owner_name(st.st_uid)}, not to you"
    by_all = st.st_mode & stat.S_IWOTH
    by_group = st.st_mode & stat.S_IWGRP and not _private_group(st.st_gid)
    if not (by_all or by_group):
        return None
    if sticky_ok and stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
        return None  # like /tmp: others cannot rename or replace what is ours inside
    who = "every user" if by_all else "its group"
    return f"{path} is writable by {who} (mode {stat.S_IMODE(st.st_mode):o})"


def _folder_problem(root: Path) -> str | None:
    """Why the folders from ``/`` down to ``root`` (resolved) cannot be trusted, or ``None``.

    Folders that do not exist yet are fine: this process creates them, privately.
    """
    chain = [*reversed(root.parents), root]
    for i, folder in enumerate(chain):
        try:
            st = os.stat(folder)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"{folder} cannot be checked ({exc.strerror or exc})"
        if not stat.S_ISDIR(st.st_mode):
            return f"{folder} is not a folder"
        # a sticky shared folder is allowed above a folder of ours, never as the cache itself
        problem = _stat_problem(folder, st, sticky_ok=i < len(chain) - 1)
        if problem is not None:
            return problem
    return None


def _trusted_root(create: bool) -> Path:
    """The resolved cache folder, checked (and created privately when ``create``).

    Raises ``_Untrusted`` naming the folder and why.
    """
    root = Path(os.path.realpath(cache_dir()))
    problem = _folder_problem(root)
    if problem is None and create and not root.is_dir():
        missing = [p for p in (*reversed(root.parents), root) if not p.exists()]
        for folder in missing:
            with contextlib.suppress(FileExistsError):
                os.mkdir(folder, 0o755)  # the umask can only take bits away
        problem = _folder_problem(root)  # again: one of them may have been made by another
    if problem is not None:
        raise _Untrusted(f"the kernel cache is not private: {problem}; set "
                         "TORCH_EXTENSIONS_DIR to a folder of yours")
    return root


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _entry_state(isa: str, root: Path) -> tuple[str, str]:
    """``("ok", sha256)``, ``("missing", "")`` or ``("damaged", why)`` for a variant's entry.

    Raises ``_Untrusted`` for an entry someone else could have written.
    """
    name = entry_name(isa)
    entry = root / name
    so = entry / _so_path(isa).name
    try:
        st = os.lstat(entry)
    except FileNotFoundError:
        return "missing", ""
    if not stat.S_ISDIR(st.st_mode):
        raise _Untrusted(f"{entry} is not a folder (a link?); not loading it")
    so_st = _lstat_or_none(so)
    if so_st is None:
        return "damaged", f"{so} is missing"
    if not stat.S_ISREG(so_st.st_mode):
        raise _Untrusted(f"{so} is not a regular file (a link?); not loading it")
    for path, path_st in ((entry, st), (so, so_st)):
        problem = _stat_problem(path, path_st, sticky_ok=False)
        if problem is not None:
            raise _Untrusted(f"{problem}; not loading it (`learnact kernels build --force` "
                             "rebuilds it)")
    try:
        recorded = json.loads((entry / DIGEST_FILE).read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return "damaged", f"{entry} has no digest of its library (an older or unfinished build)"
    actual = _sha256(so)
    if actual != recorded:
        return "damaged", (f"{so} does not match the SHA-256 recorded when it was built "
                           f"({os.lstat(so).st_size:,} bytes; truncated or changed)")
    return "ok", actual


def _lstat_or_none(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def _discard_entry(isa: str, root: Path) -> None:
    """Move a variant's entry out of the way (under the build lock) and delete it.

    Renaming, never truncating or overwriting: a process that has the old
    library mapped keeps a whole file.
    """
    entry = root / entry_name(isa)
    if not os.path.lexists(entry):
        return
    aside = root / f".build-{entry.name}-{os.getpid()}-old"
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(entry, aside)
    shutil.rmtree(aside, ignore_errors=True)


# ------------------------------------------------------------------ building


@contextlib.contextmanager
def _build_lock(isa: str, timeout: float) -> Iterator[bool]:
    """Hold the variant's build lock; yields ``False`` if it was not had within ``timeout``.

    ``flock`` locks die with their holder, so a killed build never leaves a stale
    lock behind. Where ``fcntl`` does not exist, builds are not serialised (the
    rename into place keeps them safe; at worst two processes build once each).
    """
    try:
        import fcntl
    except ImportError:  # Windows
        yield True
        return
    path = Path(os.path.realpath(cache_dir())) / f"{entry_name(isa)}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.1)
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _timeout() -> float:
    raw = os.environ.get("LEARNACT_BUILD_TIMEOUT", "")
    if not raw.strip():
        return _DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    # nan would never be reached by the clock, and inf would wait forever
    if not (math.isfinite(value) and value >= 0):
        raise ConfigError("LEARNACT_BUILD_TIMEOUT must be a number of seconds (finite, >= 0), "
                          f"got {raw!r}")
    return value


def check_environment() -> None:
    """Check ``$LEARNACT_CPU_ISA`` and ``$LEARNACT_BUILD_TIMEOUT`` without building anything.

    Raises :class:`~learnact.errors.ConfigError` naming the variable, so a
    command can refuse a bad value before it creates any file.
    """
    selected_isa()
    _timeout()


def _record_failure(isa: str, error: str, log_text: str = "") -> None:
    target = _failure_path(isa)
    payload = {"error": error, "log": log_text[-4000:], "flags": _flags(isa),
               "compiler": _compiler_version(_compiler()), "time": time.time()}
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".failed-")
    with os.fdopen(fd, "w") as fh:
        json.dump(payload, fh)
    os.replace(tmp, target)


def _probe(isa: str, workdir: Path) -> str | None:
    """``None`` if the compiler accepts ``isa``'s flags and intrinsics, else its complaint."""
    if isa not in _PROBES:
        return None
    src = workdir / f"probe_{isa}.cpp"
    src.write_text(_PROBES[isa])
    cmd = [_compiler(), *ISA_FLAGS[isa], "-O2", "-c", str(src), "-o", str(workdir / "probe.o")]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the compiler probe could not run: {exc}"
    if out.returncode != 0:
        first = next((ln for ln in out.stderr.splitlines() if "error" in ln), out.stderr[:200])
        return f"the compiler rejects {isa} ({' '.join(ISA_FLAGS[isa][:3])} ...): {first.strip()}"
    return None


def _clean_stale_tmp(root: Path) -> None:
    """Remove build folders left by killed builders (their pid is gone)."""
    for tmp in root.glob(".build-*"):
        try:
            pid = int(tmp.name.split("-")[-2])
        except (ValueError, IndexError):
            continue
        if pid != os.getpid() and not pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def _compile(isa: str) -> Path:
    """Build ``isa`` in a private folder and rename it into place; returns the ``.so``."""
    from torch.utils.cpp_extension import load as torch_load

    root = Path(os.path.realpath(cache_dir()))
    name = entry_name(isa)
    so_name = _so_path(isa).name
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".build-{name}-{os.getpid()}-"))
    try:
        problem = _probe(isa, tmp)
        if problem is not None:
            _record_failure(isa, problem)
            raise _BuildFailed(problem)
        try:
            module = torch_load(name=name, sources=[str(s) for s in SOURCES],
                                extra_cflags=_flags(isa), extra_ldflags=["-fopenmp"],
                                build_directory=str(tmp), verbose=False)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            text = str(exc)
            first = next((ln.strip() for ln in text.splitlines() if "error" in ln.lower()),
                         text.splitlines()[0] if text else type(exc).__name__)
            _record_failure(isa, f"the {isa} build failed: {first}", text)
            raise _BuildFailed(f"the {isa} build failed: {first}") from exc
        built = tmp / so_name
        if not built.exists():  # torch names it from the extension suffix it chose
            other = next(tmp.glob(f"{name}*.so"), None)
            if other is None:
                raise _BuildFailed(f"the {isa} build produced no library")
            other.rename(built)
        _seal(tmp, built)
        final = root / name
        try:
            os.rename(tmp, final)  # atomic: the entry is whole or absent
        except OSError:
            if _entry_state(isa, root)[0] != "ok":
                raise
        sys.modules.setdefault(name, module)  # loaded from the build folder already
        return final / so_name
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _seal(folder: Path, so: Path) -> None:
    """Make a finished build writable by its owner only, and record its library's digest."""
    for path in (folder, *folder.rglob("*")):
        st = os.lstat(path)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o022)
    digest = {"file": so.name, "size": so.stat().st_size, "sha256": _sha256(so)}
    (folder / DIGEST_FILE).write_text(json.dumps(digest))
    os.chmod(folder / DIGEST_FILE, 0o644)


class _BuildFailed(Exception):
    pass


class _LockTimeout(Exception):
    pass


def _ensure_built(isa: str, force: bool = False) -> tuple[Path, str]:
    """The variant's ``.so``, building it if needed; ``(path, 'cached'|'built')``.

    Raises ``_BuildFailed`` (recorded failure, now or earlier), ``_LockTimeout`` or
    ``_Untrusted`` (the cache or the entry could have been written by someone else).
    """
    root = _trusted_root(create=True)
    so = root / entry_name(isa) / _so_path(isa).name
    damaged = ""
    if not force:
        state, detail = _entry_state(isa, root)
        if state == "ok":
            return so, "cached"
        damaged = detail if state == "damaged" else ""
    problem = _unbuildable(isa)
    if problem is not None:
        raise _BuildFailed(f"{damaged}, and it cannot be rebuilt: {problem}" if damaged
                           else problem)
    if force:
        _failure_path(isa).unlink(missing_ok=True)
    failed = _read_failure(isa)
    if failed is not None:
        raise _BuildFailed(f"{failed} (recorded in {_failure_path(isa)}; "
                           "`learnact kernels build --force` retries)")
    timeout = _timeout()
    with _build_lock(isa, timeout) as held:
        if not held:
            raise _LockTimeout(f"another process held the {isa} build lock for more than "
                               f"{timeout:g} s ({root}); set LEARNACT_BUILD_TIMEOUT to wait longer")
        if not force and _entry_state(isa, root)[0] == "ok":  # built by the process we waited for
            return so, "cached"
        failed = _read_failure(isa)
        if failed is not None:
            raise _BuildFailed(failed)
        _clean_stale_tmp(root)
        _discard_entry(isa, root)
        # the one line a user sees before a minute of silence (logging's last resort
        # handler prints a bare message on stderr when the application set none)
        log.warning("learnact: %sbuilding the fused CPU kernels (%s) in %s: this happens once "
                    "per machine and takes about a minute (`learnact kernels build` does it "
                    "ahead of time)", f"{damaged}; re" if damaged else "", isa, root)
        return _compile(isa), "built"


def _import(so: Path):
    name = so.parent.name
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, so)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {so}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[name] = module
    return module


def build(isas: list[str] | None = None, force: bool = False) -> list[BuildResult]:
    """Build variants ahead of time (default: the one this process would use).

    ``isas`` may name any variants, including ones this CPU cannot execute (they
    are compiled, not run). ``force`` forgets recorded failures and rebuilds even
    a verified entry. A damaged entry is rebuilt without it; an entry or cache
    folder another user could have written is refused (``failed``, with why).
    """
    results = []
    for isa in isas or [selected_isa()]:
        if isa not in ISAS:
            raise ConfigError(f"unknown instruction set {isa!r}; expected one of {', '.join(ISAS)}")
        start = time.monotonic()
        try:
            so, status = _ensure_built(isa, force=force)
        except (_BuildFailed, _LockTimeout, _Untrusted) as exc:
            results.append(BuildResult(isa, False, "failed", None, str(exc),
                                       time.monotonic() - start))
            continue
        results.append(BuildResult(isa, True, status, so, " ".join(_flags(isa)),
                                   time.monotonic() - start))
    return results


# ------------------------------------------------------------------ loading

_state: dict[str, str] = {}  # isa -> why it is unavailable in this process
_distrusted: dict[str, str] = {}  # isa -> why its cache entry was not trusted
_warned: set[str] = set()


def _load_variant(isa: str):
    """The loaded module for ``isa`` or ``None``, with the reason kept in ``_state``."""
    if isa not in cpu_isas():
        missing = sorted(_CPU_FLAGS.get(isa, set()) - (_cpuinfo_flags() or frozenset()))
        _state[isa] = (f"this CPU cannot execute the {isa} variant"
                       + (f" (no {', '.join(missing)})" if missing else ""))
        return None
    try:
        so, _ = _ensure_built(isa)
        return _import(so)
    except _Untrusted as exc:
        _state[isa] = str(exc)
        _distrusted[isa] = str(exc)
        return None
    except (_BuildFailed, _LockTimeout, ImportError, OSError) as exc:
        _state[isa] = str(exc)
        return None


@functools.cache
def _load(isa: str, forced: bool):
    module = _load_variant(isa)
    if module is None and not forced and isa != "baseline":
        log.info("learnact: %s kernels unavailable (%s); using the baseline build",
                 isa, _state.get(isa))
        module = _load_variant("baseline")
        if module is not None:
            for reason in _distrusted.values():  # a refused entry is said, even with a fallback
                _warn_once(f"learnact: {reason}; using the baseline build")
            return module
        isa = "baseline"
    if module is None:
        _warn_once(f"learnact: the fused CPU kernel is unavailable ({_state.get(isa, 'unknown')}"
                   "); using the pure-PyTorch path. Set LEARNACT_KERNELS=reference to silence "
                   "this.")
    return module


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=5)


_by_env: dict[str, object] = {}  # $LEARNACT_CPU_ISA as set -> loaded module: the hot path


def load():
    """The compiled kernel module for this process's variant, or ``None``.

    Builds on first use (see the module docstring). In auto selection a failed
    ISA variant falls back to the baseline build silently; only when no variant
    can be had does it warn, once. A variant forced with ``$LEARNACT_CPU_ISA``
    never falls back: :func:`unavailable_reason` says why it is missing.

    Every fused call asks for the module, so after the first load it is one
    environment lookup (:func:`learnact._environ.environ_get`) and one dict lookup, with no lock.
    """
    key = environ_get("LEARNACT_CPU_ISA") or ""
    try:
        return _by_env[key]
    except KeyError:
        pass
    isa = selected_isa()
    with _lock:
        module = _load(isa, _forced())
        _by_env[key] = module
        # its *_auto entry points may run for this value (dispatch.py's hot path)
        if (accept := getattr(module, "accept_isa_env", None)) is not None:
            accept(key)
    return module


def reset() -> None:
    """Forget this process's load results (not the disk cache), so the next load retries."""
    with _lock:
        _load.cache_clear()
        for module in _by_env.values():
            if (forget := getattr(module, "forget_isa_env", None)) is not None:
                forget()
        _by_env.clear()
    _state.clear()
    _distrusted.clear()
    _warned.clear()


def loaded_isa(module) -> str | None:
    """Which variant ``module`` (from :func:`load`) is."""
    name = getattr(module, "__name__", "")
    return next((isa for isa in ISAS if name.startswith(f"learnact_cpu_{isa}_")), None)


def status() -> str | None:
    """This process's kernel variant (``"avx2"``), why it has none, or ``None`` before a load.

    Never builds: a record of what ran, for the results database.
    """
    if not _load.cache_info().currsize:
        return None
    module = load()
    return loaded_isa(module) if module is not None else unavailable_reason()


def unavailable_reason() -> str | None:
    """Why :func:`load` returns ``None`` in this process, or ``None`` when it does not."""
    if load() is not None:
        return None
    isa = selected_isa()
    reason = _state.get(isa) or _state.get("baseline") or "it could not be built"
    return f"the C++ kernel ({isa}) is unavailable: {reason}"


def info() -> dict:
    """What will run and why, without building anything (``learnact kernels info``)."""
    import torch

    try:
        root: Path | None = _trusted_root(create=False)
        trust = "private: yours alone from / down, every library checked against its digest"
    except _Untrusted as exc:
        root, trust = None, f"NOT TRUSTED, nothing is loaded from it: {exc}"
    variants = {}
    for isa in ISAS:
        row = {"flags": " ".join(_flags(isa)), "entry": entry_name(isa),
               "cpu_can_run": isa in cpu_isas()}
        problem = _unbuildable(isa)
        try:
            state, detail = _entry_state(isa, root) if root is not None else ("untrusted", "")
        except _Untrusted as exc:
            state, detail = "untrusted", str(exc)
        if state == "ok":
            row["status"] = f"built (SHA-256 {detail[:16]}... verified)"
        elif state == "untrusted":
            row["status"] = f"not loaded: {detail or 'the cache is not trusted'}"
        elif state == "damaged":
            row["status"] = f"damaged, rebuilt on next use: {detail}"
        elif problem is not None:
            row["status"] = f"cannot build: {problem}"
        elif (failed := _read_failure(isa)) is not None:
            row["status"] = f"failed: {failed}"
        else:
            row["status"] = "not built (builds on first use)"
        variants[isa] = row
    try:
        selected = selected_isa()
    except ValueError as exc:
        selected = f"invalid: {exc}"
    return {
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_can_run": list(cpu_isas()),
        "selected": selected,
        "selected_by": "LEARNACT_CPU_ISA" if _forced() else "ATen's capability",
        "compiler": f"{_compiler()}: {_compiler_version(_compiler())}",
        "torch": torch.__version__,
        "cache": str(cache_dir()),
        "cache_check": trust,
        "build_timeout_s": _timeout(),
        "variants": variants,
    }
