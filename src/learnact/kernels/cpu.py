"""Build (once) and load the C++ CPU kernel for DP ReLU / Dual Line.

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

SOURCE = Path(__file__).with_name("dual_line_cpu.cpp")
# keyed by the source's content and location: a changed kernel is never loaded stale,
# and two checkouts on one machine do not rebuild each other's cache entry
# at::parallel_for only runs threads when the extension itself is built with OpenMP
CFLAGS = ["-O3", "-fopenmp"]
NAME = "learnact_dual_line_cpu_" + hashlib.sha1(
    SOURCE.read_bytes() + str(SOURCE).encode() + " ".join(CFLAGS).encode()).hexdigest()[:12]


@functools.lru_cache(maxsize=1)
def load():
    """The compiled extension module, or ``None`` (with one warning) if it cannot be built."""
    bindir = str(Path(sys.executable).parent)
    if shutil.which("ninja") is None and bindir not in os.environ.get("PATH", ""):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    try:
        from torch.utils.cpp_extension import load as build

        module = build(name=NAME, sources=[str(SOURCE)],
                       extra_cflags=CFLAGS, extra_ldflags=["-fopenmp"],
                       verbose=False)
    except Exception as exc:  # no compiler, no ninja, read-only cache, ...
        warnings.warn(
            f"learnact: the fused CPU kernel could not be built ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); using the pure-PyTorch path. "
            "Set LEARNACT_KERNELS=reference to silence this.",
            RuntimeWarning, stacklevel=3)
        return None
    log.info("loaded %s", NAME)
    return module
