"""The kernels' SIMD layer (``kernels/simd.h``) on every instruction set we can run.

``tests/native/simd_check.cpp`` checks ``FVec`` (compare, select, multiply-add) and
``DoubleLanes`` (float64 sums) against scalar maths on signed zeros, NaN, the
infinities and subnormals. It is compiled here for each variant this CPU runs:
the baseline build's SSE2 path (every x86-64 CPU), AVX2 and AVX-512. The
baseline build on 64-bit ARM (Apple silicon, Graviton) takes ATen's NEON
``Vectorized<float>`` instead; that path is cross-compiled with
``aarch64-linux-gnu-g++`` and run under ``qemu-aarch64`` where both exist
(``make test`` installs them on Debian), and skipped elsewhere with the reason;
the kernel sources themselves are compiled for ARM64 (``-fsyntax-only``: there is
no ARM libtorch to link against here).
The whole kernels (``test_kernels.py``) run per variant as a user's process would.
"""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from torch.utils.cpp_extension import include_paths

from learnact.kernels import cpu

CHECK = Path(__file__).with_name("native") / "simd_check.cpp"
KERNELS = Path(cpu.__file__).parent


def _compile_and_run(compiler: str, flags: list[str], out: Path, runner: list[str]) -> str:
    dirs = (str(KERNELS), *include_paths(), sysconfig.get_paths()["include"])
    cmd = [compiler, "-std=c++17", "-O2", *flags, *(f"-I{d}" for d in dirs), str(CHECK),
           "-o", str(out)]
    build = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([*runner, str(out)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout.strip()


# lanes of FVec per variant on x86-64: SSE2 (baseline), AVX2, AVX-512
LANES = {"baseline": 4, "avx2": 8, "avx512": 16}


@pytest.mark.parametrize("isa", cpu.ISAS)
def test_simd_layer_matches_scalar_maths_on_this_cpu(isa, tmp_path):
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the per-variant lane counts here are x86-64's")
    if isa not in cpu.cpu_isas():
        pytest.skip(f"this CPU cannot execute the {isa} variant")
    compiler = cpu._compiler()
    if shutil.which(compiler) is None:
        pytest.skip(f"no C++ compiler ({compiler})")
    if (complaint := cpu._probe(isa, tmp_path)) is not None:
        pytest.skip(complaint)  # as the kernel build does: the toolchain's limit, not ours
    out = _compile_and_run(compiler, cpu.ISA_FLAGS[isa], tmp_path / f"check_{isa}", [])
    assert out == f"W={LANES[isa]} ok"


ARM_TOOLS = "(Debian: g++-aarch64-linux-gnu, qemu-user; `make test` installs them)"


def test_baseline_simd_layer_on_arm64_under_qemu(tmp_path):
    cross, qemu = shutil.which("aarch64-linux-gnu-g++"), shutil.which("qemu-aarch64")
    if cross is None or qemu is None:
        pytest.skip(f"needs aarch64-linux-gnu-g++ and qemu-aarch64 {ARM_TOOLS}")
    # static: qemu-user then needs no ARM libraries; only header-only ATen code is used
    out = _compile_and_run(cross, [*cpu.ISA_FLAGS["baseline"], "-static"], tmp_path / "check_arm64",
                           [qemu])
    assert out == "W=4 ok"  # ATen's NEON Vectorized<float>: 4 lanes


@pytest.mark.parametrize("source", [s.name for s in cpu.SOURCES])
def test_kernel_sources_compile_for_arm64(source):
    # the whole baseline build as an ARM64 user's machine compiles it (NEON Vectorized,
    # G's vector maths included); only checked, not linked: no ARM libtorch here
    cross = shutil.which("aarch64-linux-gnu-g++")
    if cross is None:
        pytest.skip(f"needs aarch64-linux-gnu-g++ {ARM_TOOLS}")
    dirs = (str(KERNELS), *include_paths(), sysconfig.get_paths()["include"])
    cmd = [cross, "-std=c++20", "-O2", "-fsyntax-only", *cpu.ISA_FLAGS["baseline"],
           "-DTORCH_EXTENSION_NAME=learnact_check", *(f"-I{d}" for d in dirs),
           str(KERNELS / source)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
