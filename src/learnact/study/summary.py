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

__all__ = ["certainty", "flagged_chance", "is_ordinary", "summarize", "unranked_note"]

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


def flagged_chance(row: dict[str, Any]) -> bool:
    """Whether a run's result carries the ``chance`` flag (at chance accuracy)."""
    flags = row.get("flags")
    return isinstance(flags, str) and "chance" in flags.split(",")


def is_ordinary(row: dict[str, Any]) -> bool:
    """A run that counts as a result: ``done``, with a metric, and not at chance."""
    return (row["status"] == "done" and _number(row.get("test_accuracy")) is not None
            and not flagged_chance(row))


def summarize(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dict per (dataset, model, activation), ranked activations first within a task.

    Keys: ``dataset, model, activation``; ``n`` (ordinary runs: ``done``, with
    a metric, not at chance), ``diverged``, ``at_chance``, ``failed``,
    ``unfinished``; ``ranked``; ``max_accuracy``, ``mean_accuracy``,
    ``accuracy_std`` (sample std, NaN below 2 runs), ``mean_top5``,
    ``mean_train_loss``, ``mean_test_loss``, ``mean_epoch_seconds`` (all over
    the ordinary runs' last epochs; NaN when there are none); ``lr_min``/
    ``lr_max`` over every run that has a rate; ``lr_paths`` (how the rates were
    chosen, e.g. ``"finder x4, tune x1"``).

    How the runs that are not results enter: diverged and at-chance runs are
    counted, never averaged, and an activation with any of them is not
    *ranked* (``ranked`` false): it is listed after the ranked ones, and no
    rank, "best" sentence, paired test or Friedman test counts it. Failed and
    unfinished runs only lower ``n``: they say nothing about the activation.
    """
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["model"], r["activation"]), []).append(r)
    out = []
    for (dataset, model, act), runs in groups.items():
        done = [r for r in runs if is_ordinary(r)]
        accs = [_number(r["test_accuracy"]) for r in done]
        mean = _mean(accs)
        std = (math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1))
               if len(accs) > 1 else math.nan)
        lrs = [v for v in (_number(r.get("lr")) for r in runs) if v is not None]
        paths: dict[str, int] = {}
        for r in runs:
            path = r.get("lr_path")
            if isinstance(path, str) and path:
                paths[path] = paths.get(path, 0) + 1
        row = {"dataset": dataset, "model": model, "activation": act, "n": len(done),
               "diverged": sum(r["status"] == "diverged" for r in runs),
               "at_chance": sum(r["status"] == "done" and flagged_chance(r) for r in runs),
               "failed": sum(r["status"] == "failed" for r in runs),
               "unfinished": sum(r["status"] in ("pending", "running") for r in runs),
               "max_accuracy": max(accs) if accs else math.nan,
               "mean_accuracy": mean, "accuracy_std": std,
               "lr_min": min(lrs) if lrs else math.nan, "lr_max": max(lrs) if lrs else math.nan,
               "lr_paths": ", ".join(f"{p} x{k}" for p, k in sorted(paths.items()))}
        row["ranked"] = row["n"] > 0 and row["diverged"] == 0 and row["at_chance"] == 0
        for key, col in _MEANS.items():
            row[col] = _mean([v for v in (_number(r.get(key)) for r in done) if v is not None])
        out.append(row)
    out.sort(key=lambda s: (s["dataset"], s["model"], not s["ranked"],
                            -s["mean_accuracy"] if not math.isnan(s["mean_accuracy"]) else 1.0,
                            s["activation"]))
    return out


def unranked_note(row: dict[str, Any]) -> str:
    """Why an activation is not ranked, e.g. ``"1 diverged, 2 at chance: not ranked"``;
    ``""`` for a ranked one."""
    if row["ranked"]:
        return ""
    parts = [f"{row[k]} {label}" for k, label in (("diverged", "diverged"),
                                                  ("at_chance", "at chance")) if row[k]]
    if not parts:
        parts = ["no finished run"]
    return ", ".join(parts) + ": not ranked"


_TIE_REASONS = {
    "paired": "the 95% interval of the paired difference by seed contains 0 (a paired t-test "
              "at 5%, one comparison at a time)",
    "overlap": "sharing fewer than 2 seeds with it, the 95% intervals of the means overlap",
    "unknown": "with fewer than 2 seeds there is no interval to tell them apart",
}


def _tie_reasons(why: dict[str, str]) -> str:
    """The reasons of :func:`certainty`'s tie sentence; each names its activations
    only when there is more than one kind."""
    kinds = [k for k in _TIE_REASONS if k in why.values()]
    if len(kinds) == 1:
        return _TIE_REASONS[kinds[0]]
    return "; ".join(f"for {', '.join(n for n, k in why.items() if k == kind)}, "
                     f"{_TIE_REASONS[kind]}" for kind in kinds)


def certainty(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], list[str]]:
    """How sure each task's ranking is, as sentences: (dataset, model) -> lines.

    - The best ranked activation is *indistinguishable* from another ranked
      one when the 95% interval of their paired differences (same seed)
      contains 0: a paired t-test at 5%, one comparison at a time. Runs of one
      seed share initial weights and batch order, so the pairs remove most of
      the seed-to-seed spread; two overlapping intervals of the means are not
      a test and are used only for an activation sharing fewer than 2 seeds
      with the best. With one seed every interval is unknown, and so is every
      order.
    - When the median spread over seeds (the sample std of an activation's
      accuracies) is larger than the gap between the two best means, seeds
      disagree more than the two best activations do, and the lines say so.
    - Activations that are not ranked are named with the reason.
    """
    from ..report.stats import mean_ci

    rows = list(rows)
    table = summarize(rows)
    by_task: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for s in table:
        by_task.setdefault((s["dataset"], s["model"]), []).append(s)
    accs: dict[tuple[str, str, str], dict[int, float]] = {}
    for r in rows:
        if is_ordinary(r):
            accs.setdefault((r["dataset"], r["model"], r["activation"]), {})[r["seed"]] = float(
                r["test_accuracy"])
    out: dict[tuple[str, str], list[str]] = {}
    for task, summaries in by_task.items():
        lines = []
        ranked = [s for s in summaries if s["ranked"]]
        if ranked:
            best = ranked[0]
            best_acc = accs[(*task, best["activation"])]
            _, _, blo, _ = mean_ci(list(best_acc.values()))
            # why each other activation is tied with the best: "paired" (the paired
            # difference's interval contains 0), "overlap" (fewer than 2 shared seeds, the
            # means' intervals overlap) or "unknown" (too few seeds for an interval)
            why: dict[str, str] = {}
            unpaired = []
            for other in ranked[1:]:
                name = other["activation"]
                mine = accs[(*task, name)]
                seeds = sorted(set(mine) & set(best_acc))
                if len(seeds) >= 2:
                    _, _, dlo, dhi = mean_ci([best_acc[k] - mine[k] for k in seeds])
                    if math.isnan(dlo) or dlo <= 0 <= dhi:
                        why[name] = "paired"
                    continue
                unpaired.append(name)
                _, _, _, hi = mean_ci(list(mine.values()))
                if math.isnan(blo) or math.isnan(hi):
                    why[name] = "unknown"
                elif hi >= blo:
                    why[name] = "overlap"
            if len(ranked) > 1 and why:
                lines.append(f"{best['activation']} has the best mean accuracy, but on this "
                             f"data it is indistinguishable from {', '.join(why)}: "
                             + _tie_reasons(why))
            elif len(ranked) > 1:
                reasons = []
                if len(unpaired) < len(ranked) - 1:
                    reasons.append("every paired difference by seed excludes 0")
                if unpaired:
                    reasons.append(f"the 95% intervals of the means of {', '.join(unpaired)} "
                                   "(sharing fewer than 2 seeds with it) do not overlap its own")
                lines.append(f"{best['activation']} is ahead of every other ranked activation: "
                             + ", and ".join(reasons))
            stds = sorted(s["accuracy_std"] for s in ranked if not math.isnan(s["accuracy_std"]))
            if len(ranked) > 1 and stds:
                spread = stds[len(stds) // 2] if len(stds) % 2 else (
                    stds[len(stds) // 2 - 1] + stds[len(stds) // 2]) / 2
                gap = ranked[0]["mean_accuracy"] - ranked[1]["mean_accuracy"]
                if spread > gap:
                    lines.append(
                        "seeds disagree more than the two best activations do: the median "
                        f"std over seeds ({spread:.4f}) is larger than the gap between the two "
                        f"best means ({gap:.4f})")
        unranked = [s for s in summaries if not s["ranked"]]
        if unranked:
            lines.append("not ranked: " + "; ".join(
                f"{s['activation']} ({unranked_note(s).removesuffix(': not ranked')})"
                for s in unranked))
        out[task] = lines
    return out
