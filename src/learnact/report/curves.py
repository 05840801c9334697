"""Response curves of activations, fixed and with the learnable recipe at init."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from ..activations.factory import create_activation
from ..activations.registry import get_spec

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["response_curves", "response_data"]


def response_data(
    name: str, *, x_range: tuple[float, float] = (-4.0, 4.0), points: int = 401
) -> dict[str, tuple[list[float], list[float]]]:
    """Curves of one activation at its initial values.

    Returns ``{label: (xs, ys)}`` with the plain activation and, for a fixed
    activation, the recipe variants (``learnable=True`` with and without the mean
    shift). A learnable activation has only its own curve: the recipe over DP ReLU
    or Dual Line would add a second positive slope (and a second mean shift) to
    ones they already learn, a curve nobody trains. Modules are evaluated in eval
    mode, so RReLU shows its deterministic mean slope.
    """
    lo, hi = x_range
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"x_range must be two finite numbers with lo < hi, got {x_range}")
    if points < 2:
        raise ValueError(f"points must be >= 2, got {points}")
    x = torch.linspace(lo, hi, points)
    spec = get_spec(name)
    variants = {spec.name: create_activation(spec.name)}
    if not spec.learnable:
        variants["learnable (recipe + mean shift)"] = create_activation(spec.name,
                                                                       learnable=True)
        variants["learnable (recipe, no shift)"] = create_activation(
            spec.name, learnable=True, mean_shift=False)
    out = {}
    with torch.no_grad():
        for label, module in variants.items():
            module.eval()
            out[label] = (x.tolist(), module(x).tolist())
    return out


def response_curves(
    names: Sequence[str],
    *,
    x_range: tuple[float, float] = (-4.0, 4.0),
    learnable: bool = True,
    columns: int = 4,
) -> Figure:
    """A grid of response-curve panels, one per activation.

    Each panel shows the activation as registered (solid) and, when
    ``learnable`` is true and the activation is fixed, the paper's recipe applied
    to it at its initial values (dashed: with the mean shift, dotted: without;
    see :func:`response_data`). Needs matplotlib
    (``pip install learnact[plot]``).
    """
    if not names:
        raise ValueError("give at least one activation name")
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    data = [(get_spec(n).name, response_data(n, x_range=x_range)) for n in names]
    cols = max(1, min(columns, len(data)))
    rows = math.ceil(len(data) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.7 * rows), squeeze=False)
    styles = ("-", "--", ":")
    for ax, (name, curves) in zip(axes.flat, data, strict=False):
        for (label, (xs, ys)), style in zip(curves.items(), styles, strict=False):
            if style != "-" and not learnable:
                continue
            ax.plot(xs, ys, style, linewidth=1.6 if style == "-" else 1.2, label=label)
        ax.axhline(0, color="0.8", linewidth=0.6, zorder=0)
        ax.axvline(0, color="0.8", linewidth=0.6, zorder=0)
        ax.set_title(name + (" (learnable)" if get_spec(name).learnable else ""), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(data):]:
        ax.set_visible(False)
    fullest = max(list(axes.flat)[:len(data)], key=lambda a: len(a.get_lines()))
    handles, labels = fullest.get_legend_handles_labels()
    labels = ["as registered", *labels[1:]]
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06 if rows > 1 else 0.1, 1, 1))
    return fig
