"""Tables computed from a results database: summaries, ranks, LR ranges, paired tests.

Everything here is a function of data frames read by :func:`load_frames`;
nothing is typed in by hand. Needs pandas (``pip install learnact[plot]``).
"""

from __future__ import annotations

import hashlib
import math
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import ReportError
from .stats import average_ranks, friedman, mean_ci, nemenyi_cd, wilcoxon_signed_rank

__all__ = [
    "METRICS",
    "Frames",
    "friedman_table",
    "load_frames",
    "lr_by_activation",
    "lr_table",
    "paired_vs_baseline",
    "ranking_summary",
    "seed_friedman",
    "slug",
    "summary_table",
    "task_slugs",
]


def slug(text: str) -> str:
    """``text`` as a file-name part: runs of other characters become ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def task_slugs(tasks: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """A distinct folder name and page anchor per (dataset, model) task.

    ``<dataset file stem>_<model>``, as before, where that is unique; tasks
    whose stems collide (``A/d.npz`` and ``B/d.npz``) get a short hash of the
    whole dataset path appended, so no task overwrites another's files.
    """
    plain = {t: slug(f"{Path(t[0]).stem}_{t[1]}") or "task" for t in tasks}
    counts: dict[str, int] = {}
    for name in plain.values():
        counts[name] = counts.get(name, 0) + 1
    return {t: name if counts[name] == 1 else
            f"{name}-{hashlib.sha256(t[0].encode()).hexdigest()[:8]}"
            for t, name in plain.items()}


# column -> (label, higher is better)
METRICS = {
    "max_accuracy": ("max accuracy", True),
    "mean_accuracy": ("mean accuracy", True),
    "mean_top5": ("mean top-5", True),
    "mean_train_loss": ("mean train loss", False),
    "mean_test_loss": ("mean validation loss", False),
    "mean_epoch_seconds": ("time per epoch (s)", False),
}


@dataclass
class Frames:
    """The database as data frames.

    Attributes:
        runs: one row per run, with its last-epoch metrics and mean epoch time.
        epochs: one row per (run, epoch).
        params: activation parameter values with site, block and position.
        lr_find: one row per run that used the LR finder.
        lr_choice: one row per run: how its rate was chosen (``path``,
            ``reason``); empty for databases older than schema 2.
        act_stats: per run, epoch and site: the output's ``mean``, ``std``,
            ``frac_neg``, ``frac_zero_grad`` and ``hist`` on the probe batch, with
            the run's activation, model, dataset and seed; empty before schema 2.
    """

    runs: pd.DataFrame
    epochs: pd.DataFrame
    params: pd.DataFrame
    lr_find: pd.DataFrame
    lr_choice: pd.DataFrame | None = None
    act_stats: pd.DataFrame | None = None

    def tasks(self) -> list[tuple[str, str]]:
        """The (dataset, model) pairs present, sorted."""
        pairs = self.runs[["dataset", "model"]].drop_duplicates()
        return sorted(map(tuple, pairs.to_numpy().tolist()))


def load_frames(db: str | Path) -> Frames:
    """Read a results database into :class:`Frames`.

    Raises:
        ReportError: the file is missing, unreadable, or holds no runs.
    """
    from ..study.store import StoreError, open_readonly, read_tables

    path = Path(db)
    try:
        con = open_readonly(path)  # never writes, leaves no -wal/-shm behind
    except StoreError as exc:
        raise ReportError(str(exc)) from exc
    try:
        try:
            tables = {name: pd.DataFrame.from_records(rows, columns=cols)
                      for name, (cols, rows) in read_tables(con).items()}
        finally:
            con.close()
        runs, epochs = tables["runs"], tables["epochs"]
        params, lr_find, lr_choice = tables["params"], tables["lr_find"], tables["lr_choice"]
        act_stats = tables["act_stats"]
    except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
        raise ReportError(f"{path}: not a readable learnact results database ({exc})") from exc
    if runs.empty:
        raise ReportError(f"{path} holds no runs; run `learnact study` first")
    last = epochs.sort_values("epoch").groupby("run_id").tail(1).set_index("run_id")
    mean_s = epochs.groupby("run_id")["seconds"].mean()
    runs = runs.join(last[["train_loss", "test_loss", "test_accuracy", "test_top5"]],
                     on="run_id")
    runs["epoch_seconds"] = runs["run_id"].map(mean_s)
    runs["n_epochs"] = runs["run_id"].map(epochs.groupby("run_id").size()).fillna(0)
    choice = lr_choice.set_index("run_id")
    runs["lr_path"] = runs["run_id"].map(choice["path"]).astype(object)
    runs["lr_reason"] = runs["run_id"].map(choice["reason"]).astype(object)
    # databases before schema 2 recorded only the finder's rule: a run with a curve
    # used the finder, any other run with a rate was given one
    found = set(lr_find["run_id"])
    old = runs["lr_path"].isna() & runs["lr"].notna()
    runs.loc[old, "lr_path"] = runs.loc[old, "run_id"].map(
        lambda r: "finder" if r in found else "fixed")
    meta = runs.set_index("run_id")[["activation", "model", "dataset", "seed", "status"]]
    params = params.join(meta, on="run_id")
    act_stats = act_stats.join(meta, on="run_id")
    return Frames(runs, epochs, params, lr_find, lr_choice, act_stats)


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per-activation summary of one task's runs, sorted by mean accuracy.

    Columns: ``activation``, ``n`` (finished runs), ``diverged``, ``failed``,
    the :data:`METRICS`, ``accuracy_std``, ``accuracy_ci_low``/``high``,
    ``lr_min``/``lr_max``, and ``rank_<metric>`` for each metric (1 = best).
    Diverged, at-chance and failed runs are counted but do not enter the
    means, and an activation with a diverged or at-chance run gets no rank
    (``ranked`` false, ranks NA). The per-activation numbers are
    :func:`learnact.study.summary.summarize`'s (the same as ``learnact
    results``); the confidence interval and ranks are added here.
    """
    from ..study.summary import is_ordinary, summarize

    records = runs.to_dict("records")
    rows = []
    for row in summarize(records):
        ok = [r["test_accuracy"] for r in records
              if r["activation"] == row["activation"] and is_ordinary(r)]
        _, _, lo, hi = mean_ci(ok)
        rows.append({k: v for k, v in row.items() if k not in ("dataset", "model", "unfinished")}
                    | {"accuracy_ci_low": lo, "accuracy_ci_high": hi})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    ranked = table["ranked"].astype(bool)
    for col, (_, higher) in METRICS.items():
        # only ranked activations get ranks; the others read as NA ("–")
        table[f"rank_{col}"] = table[col].where(ranked).rank(
            ascending=not higher, method="min").astype("Int64")
    table = table.sort_values(["ranked", "mean_accuracy", "activation"],
                              ascending=[False, False, True], na_position="last")
    return table.reset_index(drop=True)


def _ordinal(n: int) -> str:
    if n == 1:
        return "best"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix} best"


def ranking_summary(table: pd.DataFrame, focus: list[str] | None = None,
                    metrics: tuple[str, ...] = ("max_accuracy", "mean_accuracy", "mean_top5",
                                                "mean_train_loss", "mean_test_loss"),
                    runs: pd.DataFrame | None = None) -> list[str]:
    """Sentences in the style of the paper's sections 7.1-7.3, and how sure they are.

    For each ranked activation in ``focus`` (default: the paper's two and the
    best one), e.g. ``"dual_line: 2nd best max accuracy, best mean accuracy,
    ..."``, counted among the ranked activations only. With the task's
    ``runs``, :func:`learnact.study.summary.certainty`'s sentences follow:
    which activations are indistinguishable from the best, whether seeds
    disagree more than the two best activations, and which are not ranked and why.
    """
    if table.empty:
        return []
    ranked = table[table["ranked"].astype(bool)]
    lines = []
    if not ranked.empty:
        best = ranked.iloc[0]["activation"]
        names = focus if focus is not None else [
            n for n in ("dual_line", "dp_relu") if n in set(ranked["activation"])]
        if best not in names:
            names = [*names, best]
        for name in names:
            row = ranked[ranked["activation"] == name]
            if row.empty:
                continue
            row = row.iloc[0]
            parts = [f"{_ordinal(int(row[f'rank_{m}']))} {METRICS[m][0]}" for m in metrics]
            lines.append(f"{name}: " + ", ".join(parts) + f" (of {len(ranked)} ranked)")
    if runs is not None and not runs.empty:
        from ..study.summary import certainty

        for sentences in certainty(runs.to_dict("records")).values():
            lines += sentences
    return lines


def lr_table(frames: Frames) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The paper's Table 1 and the per-activation LR ranges.

    Returns ``(overview, per_activation)``. ``overview`` has one row per
    (dataset, model) plus an ``Overall`` row: the min and max learning rate
    used and the activation each came from. ``per_activation`` has
    ``dataset, model, activation, lr_min, lr_max, runs``.
    """
    runs = frames.runs.dropna(subset=["lr"]).copy()
    rule = frames.lr_find.set_index("run_id")["method"] if not frames.lr_find.empty else {}

    def chosen_by(r) -> str:
        path = r["lr_path"] if isinstance(r.get("lr_path"), str) else (
            "finder" if r["run_id"] in rule else "fixed")
        if path.startswith("finder"):
            stable = ", median of perturbed picks" if path == "finder-stable" else ""
            return f"LR finder ({rule.get(r['run_id'], '?')}{stable})"
        return {"tune": "tuned (successive halving)"}.get(path, path)

    runs["chosen_by"] = [chosen_by(r) for r in runs.to_dict("records")]

    def chosen(group: pd.DataFrame) -> str:
        return ", ".join(sorted(set(group["chosen_by"])))

    rows = []
    for (dataset, model), group in runs.groupby(["dataset", "model"], sort=True):
        lo, hi = group.loc[group["lr"].idxmin()], group.loc[group["lr"].idxmax()]
        rows.append({"task": f"{dataset} / {model}", "lr_min": lo["lr"],
                     "lr_min_activation": lo["activation"], "lr_max": hi["lr"],
                     "lr_max_activation": hi["activation"], "chosen_by": chosen(group)})
    if not runs.empty:
        lo, hi = runs.loc[runs["lr"].idxmin()], runs.loc[runs["lr"].idxmax()]
        rows.append({"task": "Overall", "lr_min": lo["lr"], "lr_min_activation": lo["activation"],
                     "lr_max": hi["lr"], "lr_max_activation": hi["activation"],
                     "chosen_by": chosen(runs)})
    per = (runs.groupby(["dataset", "model", "activation"])
           .agg(lr_min=("lr", "min"), lr_max=("lr", "max"), runs=("lr", "count"),
                chosen_by=("chosen_by", lambda c: ", ".join(sorted(set(c)))))
           .reset_index())
    return pd.DataFrame(rows), per


def finder_curves(frames: Frames, dataset: str, model: str) -> pd.DataFrame:
    """One LR-finder curve per activation of a task (its lowest seed's run).

    Columns: ``activation, seed, lrs, losses, suggestion, method`` and ``lr``,
    ``lr_path``: the rate the run trained with and the path that chose it
    (``tune`` where the curve could not choose, so ``lr`` differs from
    ``suggestion``).
    """
    import json

    cols = ["activation", "seed", "lrs", "losses", "suggestion", "method", "lr", "lr_path"]
    if frames.lr_find.empty:
        return pd.DataFrame(columns=cols)
    runs = frames.runs[(frames.runs["dataset"] == dataset) & (frames.runs["model"] == model)]
    found = frames.lr_find.merge(runs[["run_id", "activation", "seed", "lr", "lr_path"]],
                                 on="run_id")
    if found.empty:
        return pd.DataFrame(columns=cols)
    first = found.sort_values(["activation", "seed"]).groupby("activation").head(1).copy()
    first["lrs"] = first["lrs"].map(json.loads)
    first["losses"] = first["losses"].map(json.loads)
    return first[cols].reset_index(drop=True)


def timing_spread(frames: Frames, dataset: str, model: str) -> pd.DataFrame:
    """Per activation: median epoch seconds over epochs and seeds, and their spread.

    Columns: ``activation, epochs, median_s, min_s, max_s, spread`` where
    ``spread = (max - min) / median``.
    """
    runs = frames.runs[(frames.runs["dataset"] == dataset) & (frames.runs["model"] == model)]
    ep = frames.epochs.merge(runs[["run_id", "activation"]], on="run_id").dropna(
        subset=["seconds"])
    if ep.empty:
        return pd.DataFrame(columns=["activation", "epochs", "median_s", "min_s", "max_s",
                                     "spread"])
    out = ep.groupby("activation")["seconds"].agg(epochs="count", median_s="median",
                                                  min_s="min", max_s="max").reset_index()
    out["spread"] = (out["max_s"] - out["min_s"]) / out["median_s"].where(out["median_s"] > 0)
    return out


def paired_vs_baseline(runs: pd.DataFrame, baseline: str = "relu") -> pd.DataFrame:
    """Each activation against ``baseline`` on test accuracy, paired by seed.

    Columns: ``activation, pairs, mean_diff, ci_low, ci_high, wilcoxon_p, note``.
    Only seeds where both runs are ordinary results (``done``, not at chance)
    are paired; a side that is not ranked is named in ``note``.
    """
    from ..study.summary import is_ordinary, summarize

    unranked = {s["activation"] for s in summarize(runs.to_dict("records")) if not s["ranked"]}
    done = runs[[is_ordinary(r) for r in runs.to_dict("records")]]
    base = done[done["activation"] == baseline].set_index("seed")["test_accuracy"]
    rows = []
    for act, group in done.groupby("activation", sort=True):
        if act == baseline:
            continue
        mine = group.set_index("seed")["test_accuracy"]
        seeds = sorted(set(mine.index) & set(base.index))
        diffs = [float(mine[s] - base[s]) for s in seeds]
        mean, _, lo, hi = mean_ci(diffs)
        _, p, used = wilcoxon_signed_rank(diffs)
        if act in unranked or baseline in unranked:
            who = act if act in unranked else baseline
            note = (f"{who} is not ranked (diverged or at-chance runs): the pairs use its "
                    "ordinary runs only and are no evidence either way")
        elif not seeds:
            note = f"no seed shared with {baseline}"
        elif len(seeds) < 5:
            note = (f"only {len(seeds)} paired seed(s): the smallest two-sided p-value "
                    f"possible is {2 / 2 ** len(seeds):.3g}, so no test can be significant")
        else:
            note = ""
        rows.append({"activation": act, "pairs": len(seeds), "mean_diff": mean,
                     "ci_low": lo, "ci_high": hi, "wilcoxon_p": p if used else math.nan,
                     "note": note})
    return pd.DataFrame(rows, columns=["activation", "pairs", "mean_diff", "ci_low", "ci_high",
                                       "wilcoxon_p", "note"])


def _ranked_ordinary(runs: pd.DataFrame) -> pd.DataFrame:
    """The ordinary runs (done, not at chance) of activations ranked in their task."""
    from ..study.summary import is_ordinary, summarize

    records = runs.to_dict("records")
    unranked = {(s["dataset"], s["model"], s["activation"]) for s in summarize(records)
                if not s["ranked"]}
    return runs[[is_ordinary(r) and (r["dataset"], r["model"], r["activation"]) not in unranked
                 for r in records]]


def _friedman_of(pivot: pd.DataFrame) -> dict | None:
    """Friedman test and Nemenyi CD on a (blocks x activations) table of accuracies."""
    if pivot.shape[0] < 2 or pivot.shape[1] < 2:
        return None
    scores = pivot.to_numpy(dtype=float)
    ranks = average_ranks(scores, higher_is_better=True)
    chi2, p = friedman(scores)
    return {"activations": [str(c) for c in pivot.columns], "avg_ranks": ranks.tolist(),
            "chi2": chi2, "p": p, "cd": nemenyi_cd(scores.shape[1], scores.shape[0]),
            "n_blocks": scores.shape[0]}


def friedman_table(runs: pd.DataFrame) -> dict | None:
    """Friedman test and Nemenyi CD over tasks, on mean accuracy per (task, activation).

    Uses the activations ranked in every task (no diverged or at-chance run). Returns ``None``
    with fewer than 2 tasks or 2 common activations, else a dict with
    ``activations``, ``avg_ranks``, ``chi2``, ``p``, ``cd``, ``n_tasks`` (= ``n_blocks``).
    """
    done = _ranked_ordinary(runs)
    pivot = done.groupby(["dataset", "model", "activation"])["test_accuracy"].mean().unstack()
    out = _friedman_of(pivot.dropna(axis=1))
    if out is not None:
        out["n_tasks"] = out["n_blocks"]
    return out


def seed_friedman(runs: pd.DataFrame) -> dict | None:
    """Friedman test and Nemenyi CD within one task, each seed a block.

    A seed fixes the initial weights' random stream and the batch order for
    every activation, so runs of one seed are matched the way tasks are across
    tasks. Uses ranked activations' ordinary runs; an activation without a run
    for every seed of the task is left out (``dropped``), and seeds where an
    included activation has no ordinary run are left out. Returns ``None``
    with fewer than 2 seeds or 2 activations, else :func:`friedman_table`'s
    keys with ``n_seeds`` and ``dropped``.
    """
    done = _ranked_ordinary(runs)
    pivot = done.groupby(["seed", "activation"])["test_accuracy"].mean().unstack()
    full = pivot.dropna(axis=1)
    out = _friedman_of(full)
    if out is not None:
        out["n_seeds"] = out["n_blocks"]
        out["dropped"] = sorted(str(c) for c in set(pivot.columns) - set(full.columns))
    return out


def lr_by_activation(frames: Frames) -> pd.DataFrame:
    """The paper's Table 1 per activation: each one's learning-rate range across tasks.

    One row per activation with ``lr_min``, ``lr_max`` and ``runs`` over every
    task, ``tasks`` (how many), and ``<task> min`` / ``<task> max`` for each
    (dataset, model) task, ``<task>`` being the task's folder in the report
    (:func:`task_slugs`; NaN where the activation was not
    run on that task).
    """

    runs = frames.runs.dropna(subset=["lr"]).copy()
    if runs.empty:
        return pd.DataFrame(columns=["activation", "lr_min", "lr_max", "runs", "tasks"])
    slugs = task_slugs(frames.tasks())
    runs["task"] = [slugs[(d, m)] for d, m in zip(runs["dataset"], runs["model"], strict=True)]
    out = (runs.groupby("activation")
           .agg(lr_min=("lr", "min"), lr_max=("lr", "max"), runs=("lr", "count"),
                tasks=("task", "nunique")))
    for task in sorted(runs["task"].unique()):
        per = runs[runs["task"] == task].groupby("activation")["lr"]
        out[f"{task} min"] = per.min()
        out[f"{task} max"] = per.max()
    return out.reset_index().sort_values("activation", kind="mergesort").reset_index(drop=True)


def _fmt(v) -> str:
    if v is pd.NA:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.3g}" if (abs(v) < 1e-3 or abs(v) >= 1e4) and v != 0 else f"{v:.4f}"
    return str(v)


def to_markdown(df: pd.DataFrame) -> str:
    """A plain Markdown table (no extra dependency)."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)
