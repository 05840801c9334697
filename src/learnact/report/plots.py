"""Figures the command line draws outside a study's report: the LR finder's curve."""

from __future__ import annotations

from pathlib import Path

from ..errors import ReportError

__all__ = ["lr_finder_figure"]

# one marker per suggestion rule of learnact.train.lr_find.SUGGESTIONS
_MARKERS = {"edge": "P", "minimum3": "D", "valley": "o", "steep": "s", "minimum": "^"}


def lr_finder_figure(result, picks: dict[str, float], title: str, out: str | Path,
                     *, dpi: int = 120) -> Path:
    """Draw an LR finder's smoothed curve with every rule's pick marked, and save it.

    Args:
        result: an :class:`~learnact.train.lr_find.LRFindResult` (``lrs``, ``losses``).
        picks: rule name -> the rate it picks.
        title: the figure's title.
        out: the file (``.png``, ``.svg`` or ``.pdf``); its folder is created.

    Raises:
        ReportError: matplotlib is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ReportError("plotting needs matplotlib: pip install 'learnact[plot]'") from exc
    lrs, losses = result.lrs, result.losses
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(lrs, losses, color="0.2", lw=1.5)
    for name, lr in picks.items():
        i = min(range(len(lrs)), key=lambda k: abs(lrs[k] - lr))
        ax.plot([lr], [losses[i]], _MARKERS.get(name, "D"), ms=8, label=f"{name} {lr:.2g}")
    ax.set_xscale("log")
    # the divergence at the end would flatten everything else
    low = min(losses)
    ax.set_ylim(low - 0.05 * abs(low), max(losses[0] * 1.3, low + 1e-3))
    ax.set_xlabel("learning rate")
    ax.set_ylabel("smoothed training loss")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
