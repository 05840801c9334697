"""The one place that chooses between the reference maths and fused kernels.

Mode, from :func:`kernel_mode` (a context manager) or ``$LEARNACT_KERNELS``:

- ``auto`` (default): the fused kernel when it applies and is available, else
  the reference path, silently (one warning if the kernel failed to build);
- ``reference``: always the pure-PyTorch functional form (the test oracle);
- ``fused``: the fused kernel, or a ``RuntimeError`` saying why it cannot run.

The fused kernels apply to float32/bfloat16/float16 tensors in eager mode: a
C++ kernel on the CPU (:mod:`learnact.kernels.cpu`) and a Triton kernel on
CUDA devices (:mod:`learnact.kernels.triton_kernels`, when ``triton`` is
installed). Under ``torch.jit.trace``/scripting, ONNX export,
``torch.compile`` and ``torch.func`` transforms (``grad``, ``vmap``,
``jacrev``, ``functional_call`` inside them) the reference path is used, so
those keep working (``torch.compile`` fuses the reference form itself; the
fused autograd nodes have no batching or forward-mode rules). float64 also takes the
reference path: the fused backward is first-order only, and float64 is the
dtype of gradgradcheck and numerics work. Integer and bool inputs raise
``TypeError`` on every path (the parameters would be truncated).

Non-finite inputs get the same values and gradients on every path, by one
rule: ``x >= 0`` (``-0.0`` and ``+inf`` included) takes the positive branch;
everything else (``x < 0``, ``-inf`` and NaN) takes the negative slope or
``G``. Each element's gradient flows through the branch it takes and nothing
else: it adds ``g*x`` to one slope's gradient only, and a branch not taken
adds exactly zero (never ``0 * inf = nan``). So at NaN, ``grad_x`` is
``g * neg_slope`` (Dual Line) or ``G``'s gradient (the recipe), and the
gradient of the slope on that side is NaN; an infinite ``x`` gives an
infinite slope gradient on its own side only. For the recipe, ``G`` runs on
``x`` with ``+inf`` set to 0 where its backward is recorded, so ``G'(+inf)``
(NaN for GELU and SiLU) is never evaluated; ``G``'s value there is not used.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator

import torch
import torch.autograd.forward_ad as _forward_ad
from torch import Tensor

from .. import functional as LF
from .._environ import environ_get
from ..errors import ConfigError
from .layout import kernel_layout, memory_format

__all__ = [
    "MODES",
    "fused_unavailable_reason",
    "get_mode",
    "inline_g",
    "kernel_mode",
    "packed_rows",
    "run_dual_line",
    "run_recipe",
    "run_recipe_around_g",
]

MODES = ("auto", "reference", "fused")
_override: contextvars.ContextVar[str | None] = contextvars.ContextVar("learnact_kernels",
                                                                       default=None)
_FUSED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)
# autograd.grad from a GradientEdge (torch >= 2.4); without it Learnable fuses around G(x)
_HAS_GRADIENT_EDGE = hasattr(torch.autograd.graph, "get_gradient_edge")


def get_mode() -> str:
    """The active mode: the innermost :func:`kernel_mode`, else ``$LEARNACT_KERNELS``, else auto."""
    mode = _override.get()
    if mode is not None:
        return mode  # checked by kernel_mode
    raw = environ_get("LEARNACT_KERNELS")
    if raw is None:  # the common case, on every call: no string work
        return "auto"
    mode = raw.strip().lower()
    if mode not in MODES:
        raise ConfigError(f"LEARNACT_KERNELS must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


@contextlib.contextmanager
def kernel_mode(mode: str) -> Iterator[None]:
    """Use ``mode`` (``auto``, ``reference`` or ``fused``) inside the ``with`` block."""
    if mode not in MODES:
        raise ValueError(f"kernel mode must be one of {', '.join(MODES)}, got {mode!r}")
    token = _override.set(mode)
    try:
        yield
    finally:
        _override.reset(token)


_cpu = None  # learnact.kernels.cpu, imported on first use (never at ``import learnact``)
# The kernel module the last _load_cpu() handed out: the hot path calls its *_auto
# entry points first, with no environment lookup in Python. They read
# $LEARNACT_KERNELS and $LEARNACT_CPU_ISA themselves and return None unless the
# environment leaves the choice to this module (cpu.load registers the
# $LEARNACT_CPU_ISA values it handed the module out for; cpu.reset forgets them), so a
# stale module here only costs the checked path.
_fast = None


def _load_cpu():
    global _cpu, _fast
    if _cpu is None:
        from . import cpu

        _cpu = cpu
    _fast = _cpu.load()
    return _fast


@functools.lru_cache(maxsize=1)
def _load_triton():
    """The Triton kernel module, or ``None`` when Triton cannot be imported."""
    try:
        from . import triton_kernels
    except Exception:  # ImportError, or a Triton that fails on this machine
        return None
    return triton_kernels


def fused_unavailable_reason(x: Tensor) -> str | None:
    """Why no fused kernel can run on ``x`` now, or ``None`` if one can."""
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        return "TorchScript tracing/scripting uses the reference path"
    if torch.onnx.is_in_onnx_export():
        return "ONNX export uses the reference path"
    if torch.compiler.is_compiling():
        return "torch.compile traces the reference path"
    if torch._C._are_functorch_transforms_active():
        return "torch.func transforms (grad, vmap, jacrev, ...) use the reference path"
    if _forward_ad._current_level >= 0:
        return "forward-mode AD (torch.autograd.forward_ad) uses the reference path"
    if x.device.type not in ("cpu", "cuda"):
        return f"no fused kernel for device {x.device.type!r}"
    if x.dtype not in _FUSED_DTYPES:
        return f"no fused kernel for {x.dtype} (float64 uses the reference path)"
    if x.device.type == "cuda":
        if _load_triton() is None:
            return "the CUDA kernel needs Triton (pip install triton), which cannot be imported"
        return None
    if _load_cpu() is None:
        from . import cpu

        return cpu.unavailable_reason() or "the C++ kernel could not be built"
    return None


def packed_rows(weight: Tensor, rows: int) -> tuple[Tensor, ...]:
    """The ``rows`` ``(C,)`` views of a packed ``(rows * C,)`` parameter, in order.

    Each is its own select view (not ``unbind``'s), so an in-place change to one row
    outside ``torch.no_grad()`` gets autograd's plain "view of a leaf" error.
    """
    w = weight.view(rows, -1)
    return tuple(w[k] for k in range(rows))


def run_dual_line(x: Tensor, weight: Tensor, rows: int) -> Tensor:
    """DP ReLU (``rows=2``) or Dual Line (``rows=3``) on packed parameters, by the mode.

    ``weight`` holds ``rows * C`` values: the ``C`` positive slopes, the ``C``
    negative slopes and, for Dual Line, the ``C`` mean shifts (see
    :class:`learnact.DualLine`). The fused path is one call into a kernel whose
    autograd node saves only ``x`` (besides the parameter itself) and computes every
    gradient in one sweep
    (first-order only): the C++ extension for CPU tensors, Triton for CUDA tensors.
    """
    if rows != 2 and rows != 3:
        raise ValueError(f"rows must be 2 (DP ReLU) or 3 (Dual Line), got {rows!r}")
    # checked first: dynamo cannot trace the mode lookup, and compiling fuses the
    # reference form anyway
    if not torch.compiler.is_compiling():
        if (ext := _fast) is not None and _override.get() is None and x.is_cpu:
            y = ext.dual_line_auto(x, weight, rows)  # the hot path (see _fast)
            if y is not None:
                return y
        mode = get_mode()
        if mode != "reference":
            if x.is_cpu and (ext := _load_cpu()):
                # one C++ call checks, lays out and runs, or returns None.
                # It sees tracing (the legacy ONNX exporter traces too), functorch
                # transforms and fake or proxy tensors (torch.export, the dynamo ONNX
                # exporter) itself; None comes back to the checks below, which say why.
                y = ext.dual_line_eager(x, weight, rows)
                if y is not None:
                    return y
            reason = fused_unavailable_reason(x)
            if reason is None:
                xk, inner = kernel_layout(x, weight.shape[-1] // rows)
                if xk.is_cuda:
                    pos, neg, *shift = packed_rows(weight, rows)
                    return _load_triton().DualLineTriton.apply(
                        xk, pos, neg, shift[0] if shift else None, inner)
                return _load_cpu().dual_line(xk, weight, rows, inner)
            LF.require_floating(x)  # a clearer error than "no fused kernel for int64"
            if mode == "fused":
                raise RuntimeError(f"LEARNACT_KERNELS=fused, but {reason}")
    pos, neg, *shift = (LF.channel_view(t, x) for t in packed_rows(weight, rows))
    if not shift:
        return LF.dp_relu(x, pos, neg)
    return LF.dual_line(x, pos, neg, shift[0])


def _recipe_unavailable_reason(x: Tensor, gx: Tensor) -> str | None:
    if gx.shape != x.shape or gx.dtype != x.dtype or gx.device != x.device:
        return (f"G(x) ({tuple(gx.shape)}, {gx.dtype}, {gx.device}) does not match x "
                f"({tuple(x.shape)}, {x.dtype}, {x.device})")
    return fused_unavailable_reason(x)


def run_recipe_around_g(x: Tensor, gx: Tensor, pos: Tensor, shift: Tensor | None) -> Tensor:
    """The general recipe on a precomputed ``gx = G(x)`` with ``(C,)`` parameters, by the mode.

    The fused path (C++ on the CPU, Triton on CUDA) replaces the comparison,
    product, select, addition and the two broadcast reductions of eager PyTorch
    with one sweep each way; it
    saves only ``x`` (``G`` saves what its own backward needs) and hands the
    gradient for ``G(x)`` back to autograd, so any ``G`` works.
    """
    if not torch.compiler.is_compiling():
        if (ext := _fast) is not None and _override.get() is None and x.is_cpu:
            y = ext.recipe_auto(x, gx, pos, shift)  # the hot path (see _fast)
            if y is not None:
                return y
        mode = get_mode()
        if mode != "reference":
            if x.is_cpu and (ext := _load_cpu()):
                y = ext.recipe_eager(x, gx, pos, shift)
                if y is not None:
                    return y
            reason = _recipe_unavailable_reason(x, gx)
            if reason is None:
                xk, inner = kernel_layout(x, pos.shape[-1])
                gk = gx.contiguous(memory_format=memory_format(xk))
                if xk.is_cuda:
                    return _load_triton().RecipeTriton.apply(xk, gk, pos, shift, inner)
                return _load_cpu().recipe(xk, gk, pos, shift, inner)
            LF.require_floating(x)
            if mode == "fused":
                raise RuntimeError(f"LEARNACT_KERNELS=fused, but {reason}")
    return LF.learnable_recipe(x, gx, LF.channel_view(pos, x),
                               None if shift is None else LF.channel_view(shift, x))


# G modules the CPU kernel computes inline (kind numbers as in recipe_cpu.cpp's GKind)
_INLINE_KINDS = {torch.nn.GELU: 0, torch.nn.ELU: 1, torch.nn.SiLU: 2}


def inline_g(base) -> tuple[int, float] | None:
    """``(kind, alpha)`` when the CPU kernel can compute ``base`` itself, else ``None``.

    Exactly ``nn.GELU(approximate="none")``, ``nn.ELU(alpha)`` and ``nn.SiLU``
    (not subclasses, which may change ``forward``), with no hooks on them (an
    inline ``G`` is never called, so its hooks would silently not run).
    """
    kind = _INLINE_KINDS.get(type(base))
    if kind is None or base._forward_hooks or base._forward_pre_hooks:
        return None
    if kind == 0 and base.approximate != "none":
        return None
    return kind, float(base.alpha) if kind == 1 else 1.0


def run_recipe(x: Tensor, base, pos: Tensor, shift: Tensor | None) -> Tensor:
    """``Learnable``'s forward: ``base`` (:math:`G`) and the recipe around it, by the mode.

    On the CPU, for ``G`` in GELU, ELU and SiLU (see :func:`inline_g`), one C++
    sweep each way computes ``G`` and ``G'`` inline and saves only ``x`` (AVX2
    and AVX-512 builds; the baseline build's scalar ``exp``/``erf`` are slower
    than ATen's own ``G``, so it takes the next path). For
    other ``G`` when training on the CPU with no trainable parameters in ``G``,
    the fused backward runs ``G``'s backward on the whole gradient and then one
    in-place select (see :class:`~learnact.kernels.cpu_autograd.RecipeAroundG`);
    otherwise ``G`` runs as itself and :func:`run_recipe_around_g` fuses the recipe
    around its output.
    """
    if not torch.compiler.is_compiling() and x.is_cpu and (g := inline_g(base)) is not None:
        hot = (ext := _fast) is not None and _override.get() is None
        if hot and ext.SIMD:
            y = ext.recipe_inline_auto(x, pos, shift, g[0], g[1])  # the hot path (see _fast)
            if y is not None:
                return y
        # The checked lookup, unless the hot path's module has no SIMD G and the
        # environment still chooses it (then G is never inline)
        if ((not hot or ext.SIMD or not ext.env_ok()) and get_mode() != "reference"
                and (ext := _load_cpu()) and ext.SIMD):
            y = ext.recipe_inline_eager(x, pos, shift, g[0], g[1])
            if y is not None:
                return y
    if (_HAS_GRADIENT_EDGE and not torch.compiler.is_compiling() and torch.is_grad_enabled()
            and x.requires_grad and x.device.type == "cpu" and get_mode() != "reference"
            and not any(p.requires_grad for p in base.parameters())
            and fused_unavailable_reason(x) is None):
        xk, inner = kernel_layout(x, pos.shape[-1])
        gx = base(xk)  # G's graph hangs off x but is reached only through its edge
        if _recipe_unavailable_reason(xk, gx) is not None:
            return run_recipe_around_g(xk, gx, pos, shift)  # G ran once, whatever happens
        edge = torch.autograd.graph.get_gradient_edge
        graph = (edge(xk), edge(gx), gx.detach().contiguous(memory_format=memory_format(xk)))
        del gx
        from .cpu_autograd import RecipeAroundG

        return RecipeAroundG.apply(xk, pos, shift, inner, graph)
    LF.require_floating(x)
    # G's value at x >= 0 is never used; zeroing +inf keeps G'(+inf) (NaN for GELU) out
    # of the recorded gradient (the non-finite rule above). Only +inf: a random G
    # (RReLU) draws for x <= 0, so finite inputs keep their draws. Inference skips the
    # pass, and so does tracing (the trace must not depend on the grad mode).
    masked = torch.is_grad_enabled() and not torch.jit.is_tracing()
    gin = torch.where(x == float("inf"), 0.0, x) if masked else x
    return run_recipe_around_g(x, base(gin), pos, shift)
