"""Report figures. Each function takes data frames and returns a matplotlib Figure.

Nothing here trains or reads the database; :mod:`learnact.report` wires the
data in. Figures use the Agg backend so they render without a display.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from ..study.entries import parse_entry
from .tables import METRICS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["activation_means", "cd_diagram", "heatmap", "learning_curves", "lr_finder_curves",
           "param_boxplots", "param_positions", "param_trajectories", "response_region"]


def lr_finder_curves(curves: pd.DataFrame, title: str = "") -> Figure:
    """Every activation's LR-finder curve (smoothed loss against lr), its chosen rate marked.

    ``curves`` has one row per activation with ``activation``, ``lrs`` and
    ``losses`` (lists), ``suggestion`` and ``method``, and optionally ``lr``
    and ``lr_path`` (the rate trained with, and how it was chosen). The marker
    sits on the curve at the rate trained with: a circle where the curve chose
    it, a cross where the curve could not and the rate was tuned. The legend
    names each activation and its rate.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    colors = plt.get_cmap("tab20")
    for i, row in enumerate(curves.to_dict("records")):
        lrs, losses = np.asarray(row["lrs"], float), np.asarray(row["losses"], float)
        color = colors(i % 20)
        chosen = row.get("lr")
        chosen = row["suggestion"] if chosen is None or not np.isfinite(chosen) else chosen
        tuned = row.get("lr_path") == "tune"
        label = f"{row['activation']} {chosen:.2g}" + (" (tuned)" if tuned else "")
        ax.plot(lrs, losses, lw=1.2, color=color, label=label)
        if np.isfinite(chosen) and len(lrs):
            k = int(np.argmin(np.abs(np.log(lrs) - math.log(chosen))))
            ax.plot([chosen], [losses[k]], "X" if tuned else "o", ms=7 if tuned else 6,
                    color=color, mec="black", mew=0.6)
    ax.set_xscale("log")
    finite = np.concatenate([np.asarray(v, float) for v in curves["losses"]] or [np.zeros(1)])
    if finite.size:
        lo, first = float(np.nanmin(finite)), float(np.nanmedian(
            [v[0] for v in curves["losses"] if len(v)] or [1.0]))
        ax.set_ylim(lo - 0.05 * abs(lo), max(first * 1.5, lo + 1e-3))
    ax.set_xlabel("learning rate (log)")
    ax.set_ylabel("smoothed training loss")
    methods = ", ".join(sorted(set(curves["method"].dropna())))
    ax.set_title(title or "LR finder", fontsize=10)
    ax.legend(fontsize=6.5, ncol=2, title=f"chosen by: {methods}", title_fontsize=7)
    ax.grid(True, which="both", alpha=0.25)
    fig.tight_layout()
    return fig


def heatmap(table: pd.DataFrame, title: str = "") -> Figure:
    """The paper's Figures 2-4: activations x metrics, one colour scale per column.

    Darker means better in every column (high accuracy, low loss, low time).
    Every cell shows its value; the LR range is printed as text on the right.
    Rows keep the table's order (by mean accuracy).
    """
    cols = list(METRICS)
    n = len(table)
    fig_h = max(2.5, 0.26 * n + 1.6)
    fig, ax = plt.subplots(figsize=(11.5, fig_h))
    values = table[cols].to_numpy(dtype=float)
    shade = np.zeros_like(values)
    for j, col in enumerate(cols):
        v = values[:, j]
        finite = np.isfinite(v)
        if finite.sum() == 0:
            continue
        lo, hi = np.nanmin(v), np.nanmax(v)
        norm = (v - lo) / (hi - lo) if hi > lo else np.full_like(v, 0.5)
        shade[:, j] = np.where(finite, norm if METRICS[col][1] else 1 - norm, np.nan)
    cmap = plt.get_cmap("Blues").with_extremes(bad="0.9")
    ax.imshow(np.ma.masked_invalid(0.08 + 0.84 * shade), cmap=cmap, vmin=0, vmax=1,
              aspect="auto")
    fontsize = 7 if n > 30 else 8
    for i in range(n):
        for j, col in enumerate(cols):
            v = values[i, j]
            text = "–" if not np.isfinite(v) else (f"{v:.2f}" if "seconds" in col else f"{v:.4f}")
            dark = np.isfinite(shade[i, j]) and shade[i, j] > 0.55
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize,
                    color="white" if dark else "black")
        lr = table.iloc[i]
        lr_text = ("–" if not np.isfinite(lr["lr_min"])
                   else f"{lr['lr_min']:.2g} – {lr['lr_max']:.2g}")
        note = f" (diverged: {lr['diverged']})" if lr.get("diverged", 0) else ""
        ax.text(len(cols) - 0.4, i, lr_text + note, ha="left", va="center", fontsize=fontsize)
    ax.text(len(cols) - 0.4, -0.9, "LR min – max", ha="left", va="bottom", fontsize=8,
            weight="bold")
    ax.set_xticks(range(len(cols)), [METRICS[c][0] for c in cols], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks(range(n), table["activation"], fontsize=fontsize)
    ax.set_xlim(-0.5, len(cols) + 1.6)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title, fontsize=10, pad=26)
    fig.tight_layout()
    return fig


def _block_marks(ax, sites: pd.DataFrame) -> None:
    blocks = sites.dropna(subset=["block"]).groupby("block")["site_index"].agg(["min", "max"])
    for block, (lo, hi) in blocks.iterrows():
        ax.axvspan(lo - 0.45, hi + 0.45, color="tab:red", alpha=0.07, lw=0)
        ax.text((lo + hi) / 2, 1.0, f"B{int(block)}", transform=ax.get_xaxis_transform(),
                ha="center", va="bottom", fontsize=7, color="tab:red")


def param_positions(params: pd.DataFrame, activation: str, title: str = "") -> Figure:
    """Figures 5, 6 and 9: learned values against site position, all seeds.

    One panel per parameter; x is the site index from input to output. For
    block networks the blocks are shaded and labelled B0, B1, ...
    """
    p = params[(params["activation"] == activation) & (params["epoch"] == -1)]
    names = sorted(p["param"].unique())
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.2 * max(len(names), 1) + 0.6),
                             squeeze=False, sharex=True)
    rng = np.random.default_rng(0)
    for ax, name in zip(axes[:, 0], names, strict=True):
        q = p[p["param"] == name]
        jitter = rng.uniform(-0.15, 0.15, len(q))
        ax.scatter(q["site_index"] + jitter, q["value"], s=12, alpha=0.7)
        med = q.groupby("site_index")["value"].median()
        ax.plot(med.index, med.values, color="black", lw=0.8, alpha=0.6)
        ax.set_ylabel(name, fontsize=8)
        _block_marks(ax, q)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("activation site (input → output)", fontsize=8)
    sites = sorted(p["site_index"].unique())
    if sites:
        axes[-1, 0].set_xticks(sites)
    fig.suptitle(title or f"{activation}: learned parameters by position", fontsize=10)
    fig.tight_layout()
    return fig


def param_boxplots(params: pd.DataFrame, activation: str, title: str = "") -> Figure:
    """Figures 7 and 8: per block, box plots of each position's activation (A-1, A-2, ...).

    WideResNet blocks have two positions, XResNet bottlenecks three.
    """
    p = params[(params["activation"] == activation) & (params["epoch"] == -1)
               & params["block"].notna()]
    names = sorted(p["param"].unique())
    blocks = sorted(int(b) for b in p["block"].unique())
    positions_in_block = sorted(int(v) for v in p["position"].dropna().unique()) or [1, 2]
    palette = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
    width = 0.8 / len(positions_in_block)
    slots = [(pos, (k - (len(positions_in_block) - 1) / 2) * width, palette[k % len(palette)])
             for k, pos in enumerate(positions_in_block)]
    fig, axes = plt.subplots(len(names), 1, figsize=(max(6, 0.9 * len(blocks) + 2),
                                                     2.3 * max(len(names), 1) + 0.6),
                             squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        data, positions, colors = [], [], []
        for b in blocks:
            for pos, offset, color in slots:
                vals = p[(p["param"] == name) & (p["block"] == b) & (p["position"] == pos)]
                if len(vals):
                    data.append(vals["value"].to_numpy())
                    positions.append(b + offset)
                    colors.append(color)
        parts = ax.boxplot(data, positions=positions, widths=width * 0.85, patch_artist=True)
        for patch, color in zip(parts["boxes"], colors, strict=True):
            patch.set_facecolor(color)
            patch.set_alpha(0.6)
        ax.set_xticks(blocks, [f"B{b}" for b in blocks], fontsize=7)
        ax.set_ylabel(name, fontsize=8)
        ax.tick_params(labelsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.6) for _, _, c in slots]
    labels = [f"A-{pos}" + (" (first in block)" if k == 0 else "")
              for k, (pos, _, _) in enumerate(slots)]
    fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle(title or f"{activation}: parameters within blocks", fontsize=10)
    fig.tight_layout()
    return fig


def _module_with(activation: str, values: dict[str, list[float]]) -> torch.nn.Module:
    module = parse_entry(activation).build().eval()
    with torch.no_grad():
        for name, param in module.named_parameters():
            if name in values and len(values[name]) == param.numel():
                param.copy_(torch.tensor(values[name], dtype=param.dtype).reshape(param.shape))
    return module


def response_region(params: pd.DataFrame, activation: str, x_range=(-4.0, 4.0),
                    title: str = "") -> Figure:
    """Figure 1: the curve at its initial values and the min-max envelope of learned curves.

    The envelope is taken over every activation site of every run.
    """
    x = torch.linspace(*x_range, 401)
    p = params[(params["activation"] == activation) & (params["epoch"] == -1)]
    curves = []
    with torch.no_grad():
        for _, site in p.groupby(["run_id", "site_index"]):
            values = {name: g.sort_values("idx")["value"].tolist()
                      for name, g in site.groupby("param")}
            curves.append(_module_with(activation, values)(x).numpy())
        init = parse_entry(activation).build().eval()(x).numpy()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    if curves:
        stack = np.stack(curves)
        ax.fill_between(x.numpy(), stack.min(0), stack.max(0), alpha=0.3,
                        label=f"learned range ({len(curves)} sites)")
    ax.plot(x.numpy(), init, color="tab:red", lw=1.5, label="initial values")
    ax.axhline(0, color="0.8", lw=0.6, zorder=0)
    ax.axvline(0, color="0.8", lw=0.6, zorder=0)
    ax.legend(fontsize=8)
    ax.set_title(title or f"{activation}: response region", fontsize=10)
    fig.tight_layout()
    return fig


def cd_diagram(names: list[str], avg_ranks: list[float], cd: float, title: str = "") -> Figure:
    """A critical-difference diagram (Demšar 2006): average ranks, 1 = best, on one axis.

    Activations joined by a thick bar are not significantly different
    (Nemenyi, their average ranks differ by less than ``cd``).
    """
    k = len(names)
    order = np.argsort(avg_ranks)
    ranks = np.asarray(avg_ranks)[order]
    labels = [names[i] for i in order]
    half = math.ceil(k / 2)
    height = 1.2 + 0.22 * half
    fig, ax = plt.subplots(figsize=(9, height))
    lo, hi = 1, max(k, 2)
    ax.set_xlim(lo - 0.5, hi + 0.5)
    ax.set_ylim(-half - 1, 1.6)
    ax.hlines(0, lo, hi, color="black", lw=1)
    for r in range(lo, hi + 1):
        ax.vlines(r, 0, 0.1, color="black", lw=0.8)
        ax.text(r, 0.18, str(r), ha="center", va="bottom", fontsize=7)
    for i, (name, r) in enumerate(zip(labels, ranks, strict=True)):
        left = i < half
        row = -(i if left else k - 1 - i) - 0.8
        end = lo - 0.3 if left else hi + 0.3
        ax.plot([r, r, end], [0, row, row], color="0.3", lw=0.7)
        ax.text(end - 0.05 if left else end + 0.05, row, f"{name} ({r:.2f})",
                ha="right" if left else "left", va="center", fontsize=7)
    ax.plot([lo, lo + cd], [1.1, 1.1], color="black", lw=2)
    ax.text(lo + cd / 2, 1.2, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize=8)
    # cliques: maximal runs of consecutive methods within cd of each other
    bar_y, last_end = -0.25, -1
    for i in range(k):
        j = i
        while j + 1 < k and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and j > last_end:
            ax.hlines(bar_y, ranks[i] - 0.05, ranks[j] + 0.05, color="black", lw=3)
            bar_y -= 0.15
            last_end = j
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def _over_epochs(ax, frame: pd.DataFrame, group: str, value: str, label_fmt: str) -> None:
    """One line per ``group`` value: the mean of ``value`` over seeds against the epoch
    (1-based), with a band from the seeds' min to max."""
    colors = plt.get_cmap("tab10")
    for i, (key, g) in enumerate(frame.groupby(group, sort=True)):
        agg = g.groupby("epoch")[value].agg(["mean", "min", "max"]).reset_index()
        x = agg["epoch"] + 1
        ax.plot(x, agg["mean"], marker="o", ms=3, lw=1.3, color=colors(i % 10),
                label=label_fmt.format(key))
        ax.fill_between(x, agg["min"], agg["max"], color=colors(i % 10), alpha=0.15, lw=0)
    ax.grid(True, alpha=0.25)


def activation_means(stats: pd.DataFrame, activation: str, title: str = "") -> Figure:
    """Each site's mean output over epochs (mean over seeds, min-max band), and the
    share of outputs with zero gradient: what §3.4's claim is about."""
    s = stats[stats["activation"] == activation]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
    _over_epochs(axes[0], s, "site_index", "mean", "site {}")
    axes[0].axhline(0, color="0.4", lw=0.8)
    axes[0].set_ylabel("mean output on the probe batch")
    _over_epochs(axes[1], s, "site_index", "frac_zero_grad", "site {}")
    axes[1].set_ylabel("share with zero gradient")
    for ax in axes:
        ax.set_xlabel("epoch")
    axes[0].legend(fontsize=7)
    fig.suptitle(title or activation, fontsize=10)
    fig.tight_layout()
    return fig


def learning_curves(epochs: pd.DataFrame, activations: list[str], title: str = "") -> Figure:
    """Test accuracy and training loss per epoch for ``activations`` (mean over seeds,
    min-max band). ``epochs`` has ``activation, seed, epoch, test_accuracy, train_loss``."""
    e = epochs[epochs["activation"].isin(activations)]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    _over_epochs(axes[0], e, "activation", "test_accuracy", "{}")
    axes[0].set_ylabel("test accuracy")
    _over_epochs(axes[1], e, "activation", "train_loss", "{}")
    axes[1].set_ylabel("training loss")
    for ax in axes:
        ax.set_xlabel("epoch")
    axes[1].legend(fontsize=7, ncol=2)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def param_trajectories(params: pd.DataFrame, activation: str, title: str = "") -> Figure:
    """Figures 5-6 over training: each site's learned value per epoch (mean over seeds,
    min-max band), one panel per parameter. Uses the per-epoch snapshots (``epoch >= 0``)."""
    p = params[(params["activation"] == activation) & (params["epoch"] >= 0)]
    p = p.groupby(["param", "site_index", "seed", "epoch"])["value"].mean().reset_index()
    names = sorted(p["param"].unique())
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(3.6 * max(len(names), 1), 3.2),
                             squeeze=False)
    for ax, name in zip(axes[0], names, strict=False):
        _over_epochs(ax, p[p["param"] == name], "site_index", "value", "site {}")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title or activation, fontsize=10)
    fig.tight_layout()
    return fig
