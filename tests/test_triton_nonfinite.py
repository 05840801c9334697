"""Non-finite inputs through the Triton kernels: the reference path's values and gradients.

Runs in Triton's interpreter on CPU tensors without CUDA (see test_triton.py for
why ``TRITON_INTERPRET`` is set before the import), on the GPU with CUDA.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest
import torch

import learnact
from learnact.kernels import kernel_mode
from learnact.kernels.layout import kernel_layout, memory_format

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"

if importlib.util.find_spec("triton") is None:
    pytest.skip("triton is not installed", allow_module_level=True)
if not CUDA and "triton" not in sys.modules:
    os.environ["TRITON_INTERPRET"] = "1"
if not CUDA and os.environ.get("TRITON_INTERPRET") != "1":
    pytest.skip("triton was imported before TRITON_INTERPRET=1 could be set",
                allow_module_level=True)
from kernel_cases import assert_same_nonfinite, nonfinite_input  # noqa: E402
from learnact.kernels import triton_kernels as T  # noqa: E402


def _dual_line(module, x):
    xk, inner = kernel_layout(x, module.pos_slope.shape[-1])
    shift = getattr(module, "mean_shift", None)
    return T.DualLineTriton.apply(xk, module.pos_slope, module.neg_slope, shift, inner)


def _recipe(module, x):
    # what dispatch.run_recipe does on CUDA: G on x with +inf zeroed, then the kernel
    xk, inner = kernel_layout(x, module.pos_slope.shape[-1])
    gk = module.base(torch.where(xk == float("inf"), 0.0, xk)).contiguous(
        memory_format=memory_format(xk))
    return T.RecipeTriton.apply(xk, gk, module.pos_slope, module.mean_shift, inner)


def _run(module, x, fn):
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    y = fn(module, x)
    y.backward(torch.ones_like(y))
    return y.detach(), x.grad, {n: p.grad.clone() for n, p in module.named_parameters()}


def _reference(module, x):
    with kernel_mode("reference"):
        return module(x)


@pytest.mark.parametrize(("shape", "channels", "layout"), [
    ((40,), 1, "contiguous"), ((2, 5, 2, 3), 5, "channels_last"),
    ((2, 5, 2, 3), 5, "contiguous")], ids=["flat", "NHWC", "NCHW"])
@pytest.mark.parametrize(("cls", "fn"), [
    (learnact.DualLine, _dual_line), (learnact.DPReLU, _dual_line),
    (lambda c: learnact.Learnable("gelu", num_parameters=c), _recipe),
    (lambda c: learnact.Learnable("prelu", num_parameters=c), _recipe)],
    ids=["dual_line", "dp_relu", "recipe_gelu", "recipe_prelu"])
def test_triton_nonfinite_matches_reference(cls, fn, shape, channels, layout):
    module = cls(channels).to(DEVICE)
    x = nonfinite_input(torch.float32, shape, layout).to(DEVICE)
    assert_same_nonfinite(_run(module, x, fn), _run(module, x, _reference))
