"""One summary of a study's runs per (dataset, model, activation), for every consumer.

``learnact results``, the table printed at the end of ``learnact study`` and
the report's ranking all start from :func:`summarize`, so they cannot
disagree about what a mean accuracy or a run count is. Input rows are dicts as
:meth:`learnact.study.store.Store.results` returns them (the report passes its
data frame's records, which hold the same keys).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

__all__ = ["summarize"]

# per-run value -> summary column: the mean over the activation's done runs
_MEANS = {"test_top5": "mean_top5", "train_loss": "mean_train_loss",
          "test_loss": "mean_test_loss", "epoch_seconds": "mean_epoch_seconds"}


def _number(value: Any) -> float | None:
    """``None`` for missing values (SQL NULL, or pandas' NaN), else a float."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dict per (dataset, model, activation), best mean accuracy first within a task.

    Keys: ``dataset, model, activation``; ``n`` (runs ``done`` with a
    metric), ``diverged``, ``failed``, ``unfinished``; ``max_accuracy``,
    ``mean_accuracy``, ``accuracy_std`` (sample std, NaN below 2 runs),
    ``mean_top5``, ``mean_train_loss``, ``mean_test_loss``,
    ``mean_epoch_seconds`` (all over the done runs' last epochs; NaN when
    there are none) and ``lr_min``/``lr_max`` over every run that has a rate.
    Diverged and failed runs are counted, never averaged.
    """
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["model"], r["activation"]), []).append(r)
    out = []
    for (dataset, model, act), runs in groups.items():
        done = [r for r in runs if r["status"] == "done"
                and _number(r.get("test_accuracy")) is not None]
        accs = [_number(r["test_accuracy"]) for r in done]
        mean = _mean(accs)
        std = (math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1))
               if len(accs) > 1 else math.nan)
        lrs = [v for v in (_number(r.get("lr")) for r in runs) if v is not None]
        row = {"dataset": dataset, "model": model, "activation": act, "n": len(done),
               "diverged": sum(r["status"] == "diverged" for r in runs),
               "failed": sum(r["status"] == "failed" for r in runs),
               "unfinished": sum(r["status"] in ("pending", "running") for r in runs),
               "max_accuracy": max(accs) if accs else math.nan,
               "mean_accuracy": mean, "accuracy_std": std,
               "lr_min": min(lrs) if lrs else math.nan, "lr_max": max(lrs) if lrs else math.nan}
        for key, col in _MEANS.items():
            row[col] = _mean([v for v in (_number(r.get(key)) for r in done) if v is not None])
        out.append(row)
    out.sort(key=lambda s: (s["dataset"], s["model"],
                            -s["mean_accuracy"] if not math.isnan(s["mean_accuracy"]) else 1.0,
                            s["activation"]))
    return out
