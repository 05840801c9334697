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

from ..model_tools import activation_values
from ..study.entries import parse_entry
from .tables import METRICS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["HEATMAP_FENCE", "activation_means", "cd_cliques", "cd_diagram", "heatmap",
           "heatmap_scale", "learning_curves", "lr_finder_curves", "param_boxplots",
           "param_positions", "param_trajectories", "response_region"]


# above this many activations the LR-finder curves get one small panel each
FINDER_OVERLAY_MAX = 12


def _finder_point(row: dict) -> tuple[float, bool]:
    """The rate a run trained with (the finder's pick where none is stored) and whether
    it was tuned rather than picked from the curve."""
    chosen = row.get("lr")
    chosen = row["suggestion"] if chosen is None or not np.isfinite(chosen) else chosen
    return chosen, row.get("lr_path") == "tune"


def _mark_finder_point(ax, lrs: np.ndarray, losses: np.ndarray, chosen: float, tuned: bool,
                       color, size: float) -> None:
    if np.isfinite(chosen) and len(lrs):
        k = int(np.argmin(np.abs(np.log(lrs) - math.log(chosen))))
        ax.plot([chosen], [losses[k]], "X" if tuned else "o", ms=size * (7 / 6 if tuned else 1),
                color=color, mec="black", mew=0.6)


def _finder_ylim(curves: pd.DataFrame) -> tuple[float, float] | None:
    finite = np.concatenate([np.asarray(v, float) for v in curves["losses"]] or [np.zeros(1)])
    finite = finite[np.isfinite(finite)]
    if not finite.size:
        return None
    lo, first = float(finite.min()), float(np.nanmedian(
        [v[0] for v in curves["losses"] if len(v)] or [1.0]))
    return lo - 0.05 * abs(lo), max(first * 1.5, lo + 1e-3)


def _own_finder_ylim(losses: np.ndarray, shared: tuple[float, float] | None
                     ) -> tuple[float, float] | None:
    """A panel's own y limits when fewer than half its finite points lie in ``shared``."""
    finite = losses[np.isfinite(losses)]
    if shared is None or not finite.size:
        return None
    inside = (finite >= shared[0]) & (finite <= shared[1])
    if inside.mean() >= 0.5:
        return None
    return _finder_ylim(pd.DataFrame({"losses": [finite.tolist()]}))


def lr_finder_curves(curves: pd.DataFrame, title: str = "") -> Figure:
    """Every activation's LR-finder curve (smoothed loss against lr), its chosen rate marked.

    ``curves`` has one row per activation with ``activation``, ``lrs`` and
    ``losses`` (lists), ``suggestion`` and ``method``, and optionally ``lr``
    and ``lr_path`` (the rate trained with, and how it was chosen). The marker
    sits on the curve at the rate trained with: a circle where the curve chose
    it, a cross where the curve could not and the rate was tuned. Up to
    :data:`FINDER_OVERLAY_MAX` activations share one panel with a legend naming
    each and its rate; more get one small panel each (shared axes, 6 a row),
    titled with the name and rate, so 53 curves stay legible. A curve that lies
    mostly outside the shared loss range gets its own y scale, said in its title.
    """
    records = curves.to_dict("records")
    methods = ", ".join(sorted(set(curves["method"].dropna())))
    ylim = _finder_ylim(curves)
    if len(records) > FINDER_OVERLAY_MAX:
        cols = 6
        nrows = math.ceil(len(records) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(2.0 * cols, 1.45 * nrows + 0.9),
                                 sharex=True, squeeze=False)
        for k, (ax, row) in enumerate(zip(axes.flat, records, strict=False)):
            lrs, losses = np.asarray(row["lrs"], float), np.asarray(row["losses"], float)
            chosen, tuned = _finder_point(row)
            ax.plot(lrs, losses, lw=1.0, color="tab:blue")
            _mark_finder_point(ax, lrs, losses, chosen, tuned, "tab:orange", 4.5)
            # one y scale for all, except a curve that lies mostly outside it (SLAF's
            # loss starts near 50 where the others start at ln 10): its own scale, said
            # in its title, rather than an empty panel
            own = _own_finder_ylim(losses, ylim)
            if own is not None:
                ax.set_ylim(*own)
            elif ylim is not None:
                ax.set_ylim(*ylim)
                if k % cols:
                    ax.tick_params(labelleft=False)
            ax.set_title(f"{row['activation']} {chosen:.2g}" + (" (tuned)" if tuned else "")
                         + (" (own y scale)" if own is not None else ""), fontsize=7, pad=2)
            ax.tick_params(labelsize=6)
            ax.grid(True, which="major", alpha=0.25)
        for n in range(len(records), nrows * cols):
            axes.flat[n].set_visible(False)
            axes.flat[n - cols].xaxis.set_tick_params(labelbottom=True)  # the panel above
        axes[0, 0].set_xscale("log")
        fig.supxlabel("learning rate (log)", fontsize=8)
        fig.supylabel("smoothed training loss", fontsize=8)
        fig.suptitle(f"{title or 'LR finder'} (chosen by: {methods}; o: from the curve, "
                     "x: tuned)", fontsize=10)
        fig.tight_layout()
        return fig
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    colors = plt.get_cmap("tab20")
    for i, row in enumerate(records):
        lrs, losses = np.asarray(row["lrs"], float), np.asarray(row["losses"], float)
        color = colors(i % 20)
        chosen, tuned = _finder_point(row)
        label = f"{row['activation']} {chosen:.2g}" + (" (tuned)" if tuned else "")
        ax.plot(lrs, losses, lw=1.2, color=color, label=label)
        _mark_finder_point(ax, lrs, losses, chosen, tuned, color, 6)
    ax.set_xscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("learning rate (log)")
    ax.set_ylabel("smoothed training loss")
    ax.set_title(title or "LR finder", fontsize=10)
    ax.legend(fontsize=6.5, ncol=2, title=f"chosen by: {methods}", title_fontsize=7)
    ax.grid(True, which="both", alpha=0.25)
    fig.tight_layout()
    return fig


# a heatmap column's colours span what a box plot's whiskers would: the values within
# this many IQRs of the quartiles. One collapsed activation (0.10 among 0.88-0.91)
# would otherwise take the whole scale and leave every other row in one shade.
HEATMAP_FENCE = 1.5


def heatmap_scale(values) -> tuple[float, float]:
    """The range one heatmap column's colours span: ``(lo, hi)``.

    The smallest and largest finite values within :data:`HEATMAP_FENCE`
    interquartile ranges of the quartiles (Tukey's fences, the ends of a box
    plot's whiskers), so an outlier is drawn at the scale's end instead of
    stretching it. With no spread between the quartiles it is min-max.
    ``(nan, nan)`` when no value is finite.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return math.nan, math.nan
    q1, q3 = np.percentile(v, [25, 75])
    if q3 > q1:
        v = v[(v >= q1 - HEATMAP_FENCE * (q3 - q1)) & (v <= q3 + HEATMAP_FENCE * (q3 - q1))]
    return float(v.min()), float(v.max())


def _value_text(v: float, col: str) -> str:
    return "–" if not np.isfinite(v) else (f"{v:.2f}" if "seconds" in col else f"{v:.4f}")


def heatmap(table: pd.DataFrame, title: str = "") -> Figure:
    """The paper's Figures 2-4: activations x metrics, one colour scale per column.

    Darker means better in every column (high accuracy, low loss, low time).
    Each column's scale spans :func:`heatmap_scale` (its values within Tukey's
    fences, as a box plot's whiskers) and is printed under the column's name; a value beyond it
    takes the scale's end colour and its cell is framed in red, with a note
    under the table. Every cell shows its value; the LR range is printed as
    text on the right, with the runs that are not results (diverged, at
    chance, failed). Rows keep the table's order (by mean accuracy); each label
    ends with the rank by mean accuracy (``–``: not ranked). The height grows
    with the rows (0.26 in each), and above 10 rows a white line follows every
    fifth.
    """
    cols = list(METRICS)
    n = len(table)
    fig_h = max(2.8, 0.26 * n + 1.9)
    fig, ax = plt.subplots(figsize=(11.5, fig_h))
    values = table[cols].to_numpy(dtype=float)
    shade = np.full_like(values, np.nan)
    clipped = np.zeros(values.shape, dtype=bool)
    scales = []
    for j, col in enumerate(cols):
        v = values[:, j]
        lo, hi = heatmap_scale(v)
        scales.append((lo, hi))
        if not np.isfinite(lo):
            continue
        finite = np.isfinite(v)
        clipped[:, j] = finite & ((v < lo) | (v > hi))
        norm = np.clip((v - lo) / (hi - lo), 0, 1) if hi > lo else np.full_like(v, 0.5)
        shade[:, j] = np.where(finite, norm if METRICS[col][1] else 1 - norm, np.nan)
    cmap = plt.get_cmap("Blues").with_extremes(bad="0.9")
    ax.imshow(np.ma.masked_invalid(0.08 + 0.84 * shade), cmap=cmap, vmin=0, vmax=1,
              aspect="auto")
    fontsize = 7 if n > 30 else 8
    for i in range(n):
        for j, col in enumerate(cols):
            dark = np.isfinite(shade[i, j]) and shade[i, j] > 0.55
            ax.text(j, i, _value_text(values[i, j], col), ha="center", va="center",
                    fontsize=fontsize, color="white" if dark else "black")
            if clipped[i, j]:
                ax.add_patch(plt.Rectangle((j - 0.46, i - 0.42), 0.92, 0.84, fill=False,
                                           edgecolor="tab:red", lw=1.4, gid="clipped"))
        row = table.iloc[i]
        lr_text = ("–" if not np.isfinite(row["lr_min"])
                   else f"{row['lr_min']:.2g} – {row['lr_max']:.2g}")
        off = [f"{label}: {int(row[key])}" for key, label in (
            ("diverged", "diverged"), ("at_chance", "at chance"), ("failed", "failed"))
            if key in row.index and pd.notna(row[key]) and row[key]]
        note = f" ({', '.join(off)})" if off else ""
        ax.text(len(cols) - 0.4, i, lr_text + note, ha="left", va="center", fontsize=fontsize)
    ax.text(len(cols) - 0.4, -0.9, "LR min – max", ha="left", va="bottom", fontsize=8,
            weight="bold")
    ax.set_xticks(range(len(cols)), [
        f"{METRICS[c][0]}\n" + ("–" if not np.isfinite(lo) else
                                f"{_value_text(lo, c)} – {_value_text(hi, c)}")
        for c, (lo, hi) in zip(cols, scales, strict=True)], fontsize=8)
    ax.xaxis.tick_top()
    ranks = table["rank_mean_accuracy"] if "rank_mean_accuracy" in table else [pd.NA] * n
    ax.set_yticks(range(n), [f"{name}  {'–' if pd.isna(rank) else int(rank)}"
                             for name, rank in zip(table["activation"], ranks, strict=True)],
                  fontsize=fontsize)
    if n > 10:  # a gap every 5 rows keeps the eye on its row across 6 columns
        for i in range(5, n, 5):
            ax.axhline(i - 0.5, xmin=0, xmax=1, color="white", lw=1.5)
    ax.set_xlim(-0.5, len(cols) + 1.6)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("Colours: each column's own scale, its range under its name"
                  + (f"; framed cells lie beyond it (more than {HEATMAP_FENCE:g} IQR outside "
                     "the quartiles) and take its end colour" if clipped.any() else "")
                  + ". Grey: no finished run counts.", fontsize=7.5, color="0.3")
    if title:
        ax.set_title(title, fontsize=10, pad=34)
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
    with torch.no_grad():  # by the names the study stored (activation_values)
        for _, name, param in activation_values(module):
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


def cd_cliques(avg_ranks: list[float], cd: float) -> list[tuple[int, int]]:
    """Groups not significantly different: maximal runs ``(first, last)`` of positions in
    rank order (best first) whose average ranks lie within ``cd`` of each other."""
    ranks = np.sort(np.asarray(avg_ranks, dtype=float))
    out, last_end = [], -1
    for i in range(len(ranks)):
        j = i
        while j + 1 < len(ranks) and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and j > last_end:
            out.append((i, j))
            last_end = j
    return out


def cd_diagram(names: list[str], avg_ranks: list[float], cd: float, title: str = "") -> Figure:
    """A critical-difference diagram (Demšar 2006): average ranks, 1 = best, on one axis.

    Activations joined by a thick bar are not significantly different
    (Nemenyi, their average ranks differ by less than ``cd``). The best half
    is labelled on the left, the rest on the right. The bars get a band of
    their own between the axis and the labels, packed into as few lanes as
    do not overlap, and the figure grows with the number of activations; above
    20 the axis is numbered every 5 ranks. A ``cd`` wider than the axis is drawn
    to its end and said so.
    """
    k = len(names)
    order = np.argsort(avg_ranks, kind="mergesort")
    ranks = np.asarray(avg_ranks, dtype=float)[order]
    labels = [names[i] for i in order]
    half = math.ceil(k / 2)
    lo, hi = 1, max(k, 2)
    cliques = cd_cliques(list(ranks), cd)
    lanes: list[float] = []  # the right end of the last bar in each lane
    lane_of = []
    for i, j in cliques:
        lane = next((n for n, end in enumerate(lanes) if end < ranks[i] - 0.3), len(lanes))
        if lane == len(lanes):
            lanes.append(0.0)
        lanes[lane] = ranks[j]
        lane_of.append(lane)
    lane_step = 0.3
    band = 0.35 + lane_step * len(lanes)  # below the axis: the bars, then the labels
    rows = half + band
    width = 9.0 if k <= 30 else 11.0
    fig, ax = plt.subplots(figsize=(width, 1.3 + 0.24 * rows))
    ax.set_xlim(lo - 0.5, hi + 0.5)
    ax.set_ylim(-rows - 0.6, 1.7)
    ax.hlines(0, lo, hi, color="black", lw=1)
    step = 1 if k <= 20 else 5
    for r in range(lo, hi + 1):
        major = r == lo or r % step == 0
        ax.vlines(r, 0, 0.16 if major else 0.08, color="black", lw=0.8)
        if major:
            ax.text(r, 0.22, str(r), ha="center", va="bottom", fontsize=8)
    for i, (name, r) in enumerate(zip(labels, ranks, strict=True)):
        left = i < half
        row = -band - (i if left else k - 1 - i)
        end = lo - 0.3 if left else hi + 0.3
        ax.plot([r, r, end], [0, row, row], color="0.35", lw=0.7)
        ax.text(end - 0.05 if left else end + 0.05, row, f"{name} ({r:.2f})",
                ha="right" if left else "left", va="center", fontsize=8)
    shown = min(cd, hi - lo)
    ax.plot([lo, lo + shown], [1.15, 1.15], color="black", lw=2)
    note = "" if cd <= hi - lo else " (wider than the axis: no two differ significantly)"
    ax.text(lo + shown / 2, 1.25, f"CD = {cd:.2f}{note}", ha="center", va="bottom", fontsize=8)
    for (i, j), lane in zip(cliques, lane_of, strict=True):
        ax.hlines(-0.3 - lane_step * lane, ranks[i] - 0.1, ranks[j] + 0.1, color="black", lw=3.5)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


# above this many sites, lines are coloured input -> output on a scale, not named in a legend
SITE_LEGEND_MAX = 10


def _over_epochs(ax, frame: pd.DataFrame, group: str, value: str, label_fmt: str,
                 cmap: str | None = None) -> None:
    """One line per ``group`` value: the mean of ``value`` over seeds against the epoch
    (1-based), with a band from the seeds' min to max. With ``cmap`` the lines take
    that scale's colours in group order, else tab10's."""
    keys = sorted(frame[group].unique())
    if cmap is None:
        palette = plt.get_cmap("tab10")
        colors = [palette(i % 10) for i in range(len(keys))]
    else:
        colors = [plt.get_cmap(cmap)(i / max(len(keys) - 1, 1)) for i in range(len(keys))]
    for color, (key, g) in zip(colors, frame.groupby(group, sort=True), strict=True):
        agg = g.groupby("epoch")[value].agg(["mean", "min", "max"]).reset_index()
        x = agg["epoch"] + 1
        ax.plot(x, agg["mean"], marker="o", ms=3, lw=1.3, color=color,
                label=label_fmt.format(key))
        ax.fill_between(x, agg["min"], agg["max"], color=color, alpha=0.15, lw=0)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(True, alpha=0.25)


def _site_key(fig, axes, sites: list[int]) -> str | None:
    """A legend on the first axes for a few sites; for many, one colour bar for all axes
    (site index, input to output). Returns the colour scale the lines should use."""
    if len(sites) <= SITE_LEGEND_MAX:
        axes[0].legend(fontsize=7)
        return None
    norm = matplotlib.colors.Normalize(min(sites), max(sites))
    bar = fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=list(axes),
                       pad=0.015, fraction=0.03)
    bar.set_label("site (input → output)", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return "viridis"


def activation_means(stats: pd.DataFrame, activation: str, title: str = "") -> Figure:
    """Each site's mean output over epochs (mean over seeds, min-max band), and the
    share of outputs with zero gradient: what §3.4's claim is about. Up to
    :data:`SITE_LEGEND_MAX` sites are named in a legend; more (a WideResNet's 19)
    are coloured from input to output with a colour bar."""
    s = stats[stats["activation"] == activation]
    many = s["site_index"].nunique() > SITE_LEGEND_MAX
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4), layout="constrained" if many else None)
    cmap = "viridis" if many else None
    _over_epochs(axes[0], s, "site_index", "mean", "site {}", cmap)
    axes[0].axhline(0, color="0.4", lw=0.8)
    axes[0].set_ylabel("mean output on the probe batch")
    _over_epochs(axes[1], s, "site_index", "frac_zero_grad", "site {}", cmap)
    axes[1].set_ylabel("share with zero gradient")
    # a share: from 0, and at least to 5 % (a constant 0, Dual Line's, otherwise gets
    # an axis from -0.04 to 0.04)
    top = s["frac_zero_grad"].max() if len(s) else 0.0
    axes[1].set_ylim(0.0, max(0.05, 1.1 * float(top) if np.isfinite(top) else 1.0))
    for ax in axes:
        ax.set_xlabel("epoch")
    _site_key(fig, axes, sorted(s["site_index"].unique()))
    fig.suptitle(title or activation, fontsize=10)
    if not many:
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
    min-max band), one panel per parameter. Uses the per-epoch snapshots (``epoch >= 0``).
    Sites are named in a legend up to :data:`SITE_LEGEND_MAX`, else coloured from
    input to output with a colour bar."""
    p = params[(params["activation"] == activation) & (params["epoch"] >= 0)]
    p = p.groupby(["param", "site_index", "seed", "epoch"])["value"].mean().reset_index()
    names = sorted(p["param"].unique())
    many = p["site_index"].nunique() > SITE_LEGEND_MAX
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(3.6 * max(len(names), 1), 3.2),
                             squeeze=False, layout="constrained" if many else None)
    for ax, name in zip(axes[0], names, strict=False):
        _over_epochs(ax, p[p["param"] == name], "site_index", "value", "site {}",
                     "viridis" if many else None)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch")
    _site_key(fig, list(axes[0]), sorted(p["site_index"].unique()))
    fig.suptitle(title or activation, fontsize=10)
    if not many:
        fig.tight_layout()
    return fig
