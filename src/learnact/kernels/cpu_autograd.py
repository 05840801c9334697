"""The CPU backend's autograd code written in Python (the rest is C++ in the extension).

:class:`RecipeAroundG` is the recipe's training path for a ``G`` without
trainable parameters that the kernel does not compute inline: ``G`` runs as
itself once, and its backward plus one fused select replace the recipe's eager
backward. :func:`learnact.kernels.dispatch.run_recipe` decides when it applies.
"""

from __future__ import annotations

import torch

from . import cpu
from .layout import like_x, memory_format

__all__ = ["RecipeAroundG"]


class RecipeAroundG(torch.autograd.Function):
    """The recipe with ``G``'s backward run on the whole gradient, then one fused select.

    For a ``G`` without trainable parameters: backward runs ``G``'s own backward
    on ``g`` (giving ``G'(x) g``), and one C++ sweep turns that into ``grad_x``
    in place (``x >= 0 ? a g : G'(x) g``) while reducing ``d_a`` and ``d_m``.
    That is 7 tensor transfers instead of the 10 of writing two masked
    gradients and letting autograd add them. ``G``'s graph (built on ``x``
    before ``apply``) is not reachable from ``y``; it travels in ``graph`` as
    the gradient edges of ``x`` and ``G(x)``, so ``G(x)`` is not kept alive and
    ``G`` runs once.
    """

    @staticmethod
    def forward(ctx, x, pos, shift, inner, graph):
        x_edge, edge, gk = graph
        ctx.save_for_backward(x, pos)
        # G's graph is kept by its gradient edge, not by G(x): G(x) itself is freed
        # after this forward unless G saved it, so only x (and what G saves) is held
        ctx.inner, ctx.graph, ctx.has_shift = inner, (x_edge, edge), shift is not None
        return cpu.load().recipe_forward(x, gk, pos, shift, inner)

    @staticmethod
    def backward(ctx, grad):
        if torch.is_grad_enabled():
            raise RuntimeError(
                "learnact's fused recipe kernel is first-order only; for double backward "
                "(create_graph=True) use LEARNACT_KERNELS=reference or float64")
        x, pos = ctx.saved_tensors  # raises autograd's own error on a freed graph
        x_edge, edge = ctx.graph
        # G's graph lives exactly as long as this one: kept for another backward
        # when the caller retains the graph, freed with this backward otherwise
        keep = torch._C._autograd._get_current_graph_task_keep_graph()
        if not keep:
            ctx.graph = None
        fmt = memory_format(x)
        grad = like_x(grad, x)
        (t,) = torch.autograd.grad(edge, x_edge, grad, retain_graph=keep)
        if not t.is_contiguous(memory_format=fmt) or t.untyped_storage().data_ptr() == (
                grad.untyped_storage().data_ptr()):
            t = t.clone(memory_format=fmt)  # own it, in x's layout (G may return g itself)
        sums = cpu.load().recipe_select_(t, grad, x, pos, ctx.inner)
        dshift = sums[1].view_as(pos) if ctx.has_shift else None
        return t, sums[0].view_as(pos), dshift, None, None
