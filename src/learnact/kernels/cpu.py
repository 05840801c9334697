"""Build (once) and load the C++ CPU kernels for DP ReLU / Dual Line and the recipe.

The extension is compiled on first use with ``torch.utils.cpp_extension``
into its per-user cache (``~/.cache/torch_extensions`` or
``$TORCH_EXTENSIONS_DIR``), so later processes load it in well under a
second. Nothing is compiled at ``import learnact``. If it cannot be built
(no compiler, no ninja), :func:`load` warns once and returns ``None``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import sys
import warnings
from pathlib import Path

__all__ = ["load"]

log = logging.getLogger(__name__)

SOURCES = [Path(__file__).with_name(name) for name in ("dual_line_cpu.cpp", "recipe_cpu.cpp")]
HEADERS = [Path(__file__).with_name("kernel_common.h")]
# at::parallel_for only runs threads when the extension itself is built with OpenMP
CFLAGS = ["-O3", "-fopenmp"]
# the baseline build: at::vec::Vectorized falls back to its portable form
BASE_FLAGS = ["-DCPU_CAPABILITY=DEFAULT"]
# Instruction sets by ATen's own choice for this CPU (torch.backends.cpu.get_cpu_capability,
# which honours $ATEN_CPU_CAPABILITY). Measured on a 2-core AVX-512 machine, 600K
# float32 elements: the baseline (SSE2) build ran forward at 1.56x relu's time and
# backward at 1.90x threshold_backward's; the AVX-512 build at 0.98x and 1.13x.
ISA_FLAGS = {
    "AVX512": ["-mavx2", "-mfma", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq",
               "-DCPU_CAPABILITY=AVX512", "-DCPU_CAPABILITY_AVX512"],
    "AVX2": ["-mavx2", "-mfma", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"],
}


def build_name(flags: list[str]) -> str:
    """The cache entry's name, keyed by the source's content and location and the flags.

    A changed kernel is never loaded stale, two checkouts on one machine do not
    rebuild each other's entry, and a cache shared by machines with different
    instruction sets keeps one build per set.
    """
    key = b"".join(src.read_bytes() + str(src).encode() for src in SOURCES + HEADERS)
    key += " ".join(flags).encode()
    return "learnact_dual_line_cpu_" + hashlib.sha1(key).hexdigest()[:12]


def candidate_flags() -> list[list[str]]:
    """Compiler flags to try in order: this CPU's instruction set first, then the baseline."""
    import platform

    import torch

    machine = platform.machine().lower()
    isa = ISA_FLAGS.get(torch.backends.cpu.get_cpu_capability(), [])
    if isa and machine in ("x86_64", "amd64"):
        return [CFLAGS + isa, CFLAGS + BASE_FLAGS]
    return [CFLAGS + BASE_FLAGS]


@functools.lru_cache(maxsize=1)
def load():
    """The compiled extension module, or ``None`` (with one warning) if it cannot be built."""
    bindir = str(Path(sys.executable).parent)
    if shutil.which("ninja") is None and bindir not in os.environ.get("PATH", ""):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    error: Exception | None = None
    for flags in candidate_flags():
        try:
            from torch.utils.cpp_extension import load as build

            module = build(name=build_name(flags), sources=[str(src) for src in SOURCES],
                           extra_cflags=flags, extra_ldflags=["-fopenmp"], verbose=False)
        except Exception as exc:  # no compiler, no ninja, read-only cache, old gcc, ...
            error = exc  # the baseline build's failure is the one worth reporting
            continue
        log.info("loaded %s built with %s", build_name(flags), " ".join(flags))
        return module
    assert error is not None
    warnings.warn(
        f"learnact: the fused CPU kernel could not be built ({type(error).__name__}: "
        f"{str(error).splitlines()[0] if str(error) else ''}); using the pure-PyTorch path. "
        "Set LEARNACT_KERNELS=reference to silence this.",
        RuntimeWarning, stacklevel=3)
    return None
