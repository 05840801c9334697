"""Triton kernels for DP ReLU / Dual Line and the general recipe on the GPU.

The maths is the C++ kernel's (see ``dual_line_cpu.cpp``)::

    forward:  y = slope(x) * x + m,  slope = pos for x >= 0 (including -0.0), neg otherwise
    backward: grad_x = g * slope(x)
              d_pos = sum g*x [x >= 0],  d_neg = sum g*x [not x >= 0],  d_m = sum g

"Otherwise" includes NaN, and every sum is a select (``tl.where``), so a term
reaches only its own branch's sum: the non-finite rule of
:mod:`learnact.kernels.dispatch`.

Forward reads ``x`` and writes ``y``; backward reads ``x`` and ``g`` and writes
``grad_x``, the same bytes as ReLU. The parameter gradients are reduced in
two stages: each program writes float32 partial sums for its tile, and a
fixed-order ``torch.sum`` in float64 adds them, so results do not depend on
scheduling (no atomics).

A tensor is seen as ``(outer, C, inner)`` with the channel ``C`` in the
middle: ``C == 1`` is one row of ``numel`` elements; NCHW is ``(N, C, H*W)``;
channels-last is ``(N*H*W, C, 1)``. Rows of a contiguous ``inner`` run use
:func:`_bwd_rows`; channels-last uses the 2-D tiles of :func:`_bwd_tiles`.

The general recipe (``recipe_*``, :class:`RecipeTriton`) follows
``recipe_cpu.cpp``: ``y = (x >= 0 ? a*x : G(x)) + m`` on a precomputed
``G(x)``; backward writes the direct ``grad_x`` and the gradient for ``G(x)``,
which autograd carries through ``G``.

Computation is in float32 for float16/bfloat16 inputs; outputs keep the
input's dtype. Importing this module needs ``triton``; set
``TRITON_INTERPRET=1`` before importing it to run the kernels on CPU tensors
(slow, for tests).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .layout import like_x

__all__ = [
    "DualLineTriton",
    "RecipeTriton",
    "backward",
    "forward",
    "recipe_backward",
    "recipe_forward",
]

BLOCK = 4096
TILE_M = 64


@triton.jit
def _load_row_block(g_ptr, x_ptr, inner, BLOCK: tl.constexpr):
    # program (row, b) of a backward over (outer*C, inner) rows: its offsets, x and g
    row = tl.program_id(0).to(tl.int64)
    b = tl.program_id(1).to(tl.int64)
    cols = b * BLOCK + tl.arange(0, BLOCK)
    mask = cols < inner
    offs = row * inner + cols
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    return row, b, offs, mask, x, g


@triton.jit
def _load_tile(g_ptr, x_ptr, M, C, TILE_M: tl.constexpr, TILE_C: tl.constexpr):
    # program (i, j) of a channels-last backward: a (TILE_M, TILE_C) tile of x and g
    i = tl.program_id(0).to(tl.int64)
    j = tl.program_id(1).to(tl.int64)
    rows = i * TILE_M + tl.arange(0, TILE_M)
    chans = j * TILE_C + tl.arange(0, TILE_C)
    cmask = chans < C
    mask = (rows[:, None] < M) & cmask[None, :]
    offs = rows[:, None] * C + chans[None, :]
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    return i, chans, cmask, offs, mask, x, g


@triton.jit
def _fwd(x_ptr, y_ptr, p_ptr, q_ptr, m_ptr, n, C, inner, HAS_SHIFT: tl.constexpr,
         BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    c = (offs // inner) % C
    p = tl.load(p_ptr + c, mask=mask, other=0.0)
    q = tl.load(q_ptr + c, mask=mask, other=0.0)
    y = tl.where(x >= 0, p, q) * x  # NaN fails x >= 0: the negative branch, as the reference
    if HAS_SHIFT:
        y += tl.load(m_ptr + c, mask=mask, other=0.0)
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _bwd_rows(g_ptr, x_ptr, gx_ptr, p_ptr, q_ptr, part_ptr, C, inner, blocks,
              BLOCK: tl.constexpr):
    # program (row, b): elements [b*BLOCK, (b+1)*BLOCK) of row `row`, whose channel
    # is row % C; writes its 3 partial sums to part[row, b, :]
    row, b, offs, mask, x, g = _load_row_block(g_ptr, x_ptr, inner, BLOCK)
    c = row % C
    p = tl.load(p_ptr + c)
    q = tl.load(q_ptr + c)
    is_pos = x >= 0
    tl.store(gx_ptr + offs, (g * tl.where(is_pos, p, q)).to(gx_ptr.dtype.element_ty), mask=mask)
    t = g * x
    out = part_ptr + (row * blocks + b) * 3
    tl.store(out, tl.sum(tl.where(is_pos, t, 0.0), axis=0))
    tl.store(out + 1, tl.sum(tl.where(is_pos, 0.0, t), axis=0))
    tl.store(out + 2, tl.sum(g, axis=0))


@triton.jit
def _bwd_tiles(g_ptr, x_ptr, gx_ptr, p_ptr, q_ptr, part_ptr, M, C,
               TILE_M: tl.constexpr, TILE_C: tl.constexpr):
    # channels-last (M, C): program (i, j) takes rows [i*TILE_M, ...) x channels
    # [j*TILE_C, ...), sums over its rows and writes part[i, c, :]
    i, chans, cmask, offs, mask, x, g = _load_tile(g_ptr, x_ptr, M, C, TILE_M, TILE_C)
    p = tl.load(p_ptr + chans, mask=cmask, other=0.0)
    q = tl.load(q_ptr + chans, mask=cmask, other=0.0)
    is_pos = x >= 0
    slope = tl.where(is_pos, p[None, :], q[None, :])
    tl.store(gx_ptr + offs, (g * slope).to(gx_ptr.dtype.element_ty), mask=mask)
    t = g * x
    out = part_ptr + (i * C + chans) * 3
    tl.store(out, tl.sum(tl.where(is_pos, t, 0.0), axis=0), mask=cmask)
    tl.store(out + 1, tl.sum(tl.where(is_pos, 0.0, t), axis=0), mask=cmask)
    tl.store(out + 2, tl.sum(g, axis=0), mask=cmask)


@triton.jit
def _recipe_fwd(x_ptr, gx_ptr, y_ptr, a_ptr, m_ptr, n, C, inner, HAS_SHIFT: tl.constexpr,
                BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    gx = tl.load(gx_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    c = (offs // inner) % C
    a = tl.load(a_ptr + c, mask=mask, other=0.0)
    y = tl.where(x >= 0, a * x, gx)  # a select: an infinite G(x) at x >= 0 never reaches y
    if HAS_SHIFT:
        y += tl.load(m_ptr + c, mask=mask, other=0.0)
    tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _recipe_bwd_rows(g_ptr, x_ptr, gxd_ptr, gg_ptr, a_ptr, part_ptr, C, inner, blocks,
                     BLOCK: tl.constexpr):
    row, b, offs, mask, x, g = _load_row_block(g_ptr, x_ptr, inner, BLOCK)
    a = tl.load(a_ptr + row % C)
    pos = x >= 0
    tl.store(gxd_ptr + offs, tl.where(pos, a * g, 0.0).to(gxd_ptr.dtype.element_ty), mask=mask)
    tl.store(gg_ptr + offs, tl.where(pos, 0.0, g).to(gg_ptr.dtype.element_ty), mask=mask)
    out = part_ptr + (row * blocks + b) * 2
    tl.store(out, tl.sum(tl.where(pos, g * x, 0.0), axis=0))
    tl.store(out + 1, tl.sum(g, axis=0))


@triton.jit
def _recipe_bwd_tiles(g_ptr, x_ptr, gxd_ptr, gg_ptr, a_ptr, part_ptr, M, C,
                      TILE_M: tl.constexpr, TILE_C: tl.constexpr):
    i, chans, cmask, offs, mask, x, g = _load_tile(g_ptr, x_ptr, M, C, TILE_M, TILE_C)
    a = tl.load(a_ptr + chans, mask=cmask, other=0.0)
    pos = x >= 0
    gxd = tl.where(pos, a[None, :] * g, 0.0)
    tl.store(gxd_ptr + offs, gxd.to(gxd_ptr.dtype.element_ty), mask=mask)
    tl.store(gg_ptr + offs, tl.where(pos, 0.0, g).to(gg_ptr.dtype.element_ty), mask=mask)
    out = part_ptr + (i * C + chans) * 2
    tl.store(out, tl.sum(tl.where(pos, g * x, 0.0), axis=0), mask=cmask)
    tl.store(out + 1, tl.sum(g, axis=0), mask=cmask)


def _params(p: Tensor) -> Tensor:
    return p.detach().to(torch.float32).contiguous()


def _two_stage(rows_kernel, tiles_kernel, args: tuple, nsums: int, n: int, C: int,
               inner: int, device: torch.device) -> Tensor:
    """Launch a backward kernel over ``x`` seen as ``(outer, C, inner)``; ``(nsums, C)`` float64.

    ``args`` are the kernel's leading pointers (``g, x``, outputs, parameters);
    each program writes ``nsums`` float32 partial sums for its tile, which are
    then added in a fixed order (stage two), so the result is deterministic.
    """
    if C > 1 and inner == 1:  # channels-last: 2-D tiles of (rows, channels)
        M = n // C
        tile_c = min(triton.next_power_of_2(C), 128)
        grid = (triton.cdiv(M, TILE_M), triton.cdiv(C, tile_c))
        part = torch.empty(grid[0], C, nsums, dtype=torch.float32, device=device)
        tiles_kernel[grid](*args, part, M, C, TILE_M=TILE_M, TILE_C=tile_c)
        sums = part.sum(dim=0, dtype=torch.float64)
    else:
        inner = n if C == 1 else int(inner)  # per-tensor: one row of every element
        rows = n // inner
        block = max(256, min(BLOCK, triton.next_power_of_2(inner)))
        blocks = triton.cdiv(inner, block)
        part = torch.empty(rows, blocks, nsums, dtype=torch.float32, device=device)
        rows_kernel[(rows, blocks)](*args, part, C, inner, blocks, BLOCK=block)
        sums = part.view(rows // C, C, blocks, nsums).sum(dim=(0, 2), dtype=torch.float64)
    return sums.t().contiguous()


def forward(x: Tensor, pos: Tensor, neg: Tensor, shift: Tensor | None, inner: int) -> Tensor:
    """``y`` for a contiguous (or channels-last, ``inner=1``) ``x`` and ``(C,)`` parameters."""
    y = torch.empty_like(x)
    n = int(x.numel())
    if n == 0:
        return y
    p, q = _params(pos), _params(neg)
    m = _params(shift) if shift is not None else p  # unused when HAS_SHIFT is False
    _fwd[(triton.cdiv(n, BLOCK),)](x, y, p, q, m, n, int(p.numel()), int(inner),
                                   HAS_SHIFT=shift is not None, BLOCK=BLOCK)
    return y


def backward(g: Tensor, x: Tensor, pos: Tensor, neg: Tensor, inner: int) -> tuple[Tensor, Tensor]:
    """``grad_x`` and a ``(3, C)`` float64 tensor of ``d_pos, d_neg, d_shift``.

    ``g`` must have ``x``'s memory layout.
    """
    gx = torch.empty_like(x)
    p, q = _params(pos), _params(neg)
    C, n = int(p.numel()), int(x.numel())
    if n == 0:
        return gx, torch.zeros(3, C, dtype=torch.float64, device=x.device)
    return gx, _two_stage(_bwd_rows, _bwd_tiles, (g, x, gx, p, q), 3, n, C, inner, x.device)


class DualLineTriton(torch.autograd.Function):
    """Fused forward/backward on the GPU; saves only ``x`` (and the slopes)."""

    @staticmethod
    def forward(ctx, x, pos, neg, shift, inner):
        ctx.save_for_backward(x, pos, neg)
        ctx.inner = inner
        ctx.has_shift = shift is not None
        return forward(x, pos, neg, shift, inner)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, pos, neg = ctx.saved_tensors
        gx, sums = backward(like_x(grad, x), x, pos, neg, ctx.inner)
        sums = sums.to(pos.dtype)
        dshift = sums[2].view_as(pos) if ctx.has_shift else None
        return gx, sums[0].view_as(pos), sums[1].view_as(neg), dshift, None


def recipe_forward(x: Tensor, gx: Tensor, a: Tensor, shift: Tensor | None, inner: int) -> Tensor:
    """The general recipe's ``y`` from ``x`` and ``gx = G(x)`` (same layout)."""
    y = torch.empty_like(x)
    n = int(x.numel())
    if n == 0:
        return y
    af = _params(a)
    m = _params(shift) if shift is not None else af
    _recipe_fwd[(triton.cdiv(n, BLOCK),)](x, gx, y, af, m, n, int(af.numel()), int(inner),
                                          HAS_SHIFT=shift is not None, BLOCK=BLOCK)
    return y


def recipe_backward(g: Tensor, x: Tensor, a: Tensor, inner: int) -> tuple[Tensor, Tensor, Tensor]:
    """The direct ``grad_x``, the gradient for ``G(x)``, and ``(2, C)`` float64 ``d_a, d_m``."""
    gxd, gg = torch.empty_like(x), torch.empty_like(x)
    af = _params(a)
    C, n = int(af.numel()), int(x.numel())
    if n == 0:
        return gxd, gg, torch.zeros(2, C, dtype=torch.float64, device=x.device)
    sums = _two_stage(_recipe_bwd_rows, _recipe_bwd_tiles, (g, x, gxd, gg, af), 2, n, C, inner,
                      x.device)
    return gxd, gg, sums


class RecipeTriton(torch.autograd.Function):
    """The general recipe on a precomputed ``G(x)``, fused on the GPU; saves only ``x``."""

    @staticmethod
    def forward(ctx, x, gx, a, shift, inner):
        ctx.save_for_backward(x, a)
        ctx.inner = inner
        ctx.has_shift = shift is not None
        return recipe_forward(x, gx, a, shift, inner)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        x, a = ctx.saved_tensors
        gxd, gg, sums = recipe_backward(like_x(grad, x), x, a, ctx.inner)
        sums = sums.to(a.dtype)
        dshift = sums[1].view_as(a) if ctx.has_shift else None
        return gxd, gg, sums[0].view_as(a), dshift, None
