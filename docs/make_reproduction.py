"""Write ``docs/reproduction.md`` from a finished study's database and its report.

    python docs/make_reproduction.py DB REPORT_DIR [--out docs/reproduction.md]
        [--csv-dir docs/fashion-lenet5] [--command "learnact study ..."]
        [--notes docs/reproduction-notes.md] [--allow-unfinished]

``REPORT_DIR`` is the study's ``learnact report`` folder; when it holds no
``index.html`` yet, the report is made there first, so publishing a finished
study is this one command. Every number in the page comes from the database or
from the report's files: the command, the busy wall time (the union of the
runs' start-to-finish intervals, since a study can be stopped and resumed), the
machine (each run's recorded environment), the runs that are not results and
why, the ranking with its statistics, and the claims table. The report's CSVs
and a few key figures are copied into ``--csv-dir``, and the database's own
data is exported beside them as CSV (``data/``: one row per run, per run and
epoch, per learned parameter value, per epoch and site's activation
statistics), so the results can be analysed again without the database, which
is not published. The prose about what
differs from the paper is fixed text here, filled with the study's settings.
What only the people who ran the study know (the machine was shared, the run was
paused) goes in a Markdown file given with ``--notes``, whose text the page
includes under "Notes from the people who ran it", so that regenerating the page
keeps it.

A study with runs still pending or running is refused (exit 2) unless
``--allow-unfinished``, which marks the page as partial at the top.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from learnact._text import csv_cell
from learnact.cli import RESULT_COLUMNS
from learnact.report import ReportError, make_report
from learnact.report import tables as T
from learnact.study.store import Store, open_readonly

__all__ = ["Refused", "busy_time", "export_data", "main", "peak_overlap", "render"]

# the report's figures copied beside the CSVs and shown in the page (those present)
KEY_FIGURES = ("heatmap", "cd_diagram", "learning_curves", "region_dual_line",
               "outputs_dual_line")


# the database's data as CSV in ``--csv-dir``/data: file name, export (None: one row
# per run, as ``learnact results --format csv``), what one row is
DATA_FILES = (("runs.csv", None, "run"),
              ("epochs.csv", "epochs", "run and epoch"),
              ("params.csv", "params", "learned parameter value at a site and epoch (epoch -1: "
               "the end of the run)"),
              ("act_stats.csv", "stats", "epoch and site's activation statistics"))


class Refused(Exception):
    """The database cannot make this page: runs unfinished, or not one task."""


def export_data(db: Path, data_dir: Path) -> list[tuple[str, int, str]]:
    """Write the database's runs, epochs, learned parameters and activation statistics
    as CSV files in ``data_dir`` (the same columns as ``learnact results --format csv``
    and ``--export``); returns ``(file name, rows, what a row is)`` per file."""
    data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(db, readonly=True)
    try:
        tables = []
        for name, what, row in DATA_FILES:
            if what is None:
                cols = ["run_id", *RESULT_COLUMNS]
                rows = [[r.get(c) for c in cols] for r in store.results()]
            else:
                cols, rows = store.export(what)
            tables.append((name, cols, rows, row))
    finally:
        store.close()
    written = []
    for name, cols, rows, row in tables:
        with open(data_dir / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(cols)
            writer.writerows([csv_cell(v) for v in r] for r in rows)
        written.append((name, len(rows), row))
    return written


def _nested(markdown: str) -> str:
    """``markdown`` with its headings moved two levels down (``#`` -> ``###``, at most
    ``######``), so a notes file's own headings sit under the page's notes section;
    fenced code blocks are left alone."""
    out, fence = [], None
    for line in markdown.splitlines():
        stripped = line.lstrip()
        marker = stripped[:3]
        if marker in ("```", "~~~"):
            fence = None if fence == marker else (fence or marker)
        elif fence is None and line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            if level <= 6 and line[level:level + 1] in (" ", ""):
                line = "#" * min(6, level + 2) + line[level:]
        out.append(line)
    return "\n".join(out)


def _check(runs: pd.DataFrame, tasks: list, db: Path, allow_unfinished: bool) -> int:
    """The number of unfinished runs; :class:`Refused` when that or the tasks rule the
    page out."""
    unfinished = int(runs["status"].isin(["pending", "running"]).sum())
    if unfinished and not allow_unfinished:
        raise Refused(f"{db}: {unfinished} of {len(runs)} runs are unfinished; finish the "
                      "study, or pass --allow-unfinished for a page marked partial")
    if len(tasks) != 1:
        raise Refused(f"{db}: {len(tasks)} (dataset, model) tasks; this page is for one")
    return unfinished


def busy_time(intervals: list[tuple[float, float]]) -> tuple[float, int]:
    """``(seconds, stretches)``: the length of the union of ``(start, end)`` intervals
    and how many separate stretches it has (a pause between sessions splits one)."""
    total, stretches, end = 0.0, 0, -math.inf
    for start, stop in sorted(intervals):
        if start > end:
            stretches += 1
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total, stretches


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment (for a study: its ``--jobs``)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    peak = now = 0
    for _, step in events:  # at a tie, -1 sorts first: a run ending as one starts
        now += step
        peak = max(peak, now)
    return peak


def _duration(seconds: float) -> str:
    if round(seconds) < 3600:
        return f"{round(seconds) // 60} min {round(seconds) % 60:02d} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(_cell(c) for c in row) + " |" for row in rows)]


def _num(v, fmt: str = ".4f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _study_meta(db: Path) -> dict:
    con = open_readonly(db)
    try:
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
    finally:
        con.close()
    return json.loads(meta.get("last_study") or "{}")


def _machine(runs: pd.DataFrame) -> list[str]:
    """One line per distinct recorded environment of the finished runs, with its count."""
    keys = ("learnact", "torch", "python", "device", "device_name", "threads", "cpu_kernels")
    seen: dict[tuple, int] = {}
    for env in runs["env"].dropna():
        try:
            e = json.loads(env)
        except ValueError:
            continue
        key = tuple((k, e.get(k)) for k in keys)
        seen[key] = seen.get(key, 0) + 1
    lines = [f"  - {n} run(s): " + ", ".join(f"{k} `{v}`" for k, v in key)
             for key, n in sorted(seen.items(), key=lambda kv: -kv[1])]
    return lines or ["  - no run recorded its environment"]


def _outcomes(runs: pd.DataFrame) -> tuple[list[str], list[list]]:
    """Counts by outcome, and one row per finished run that is not a result (diverged,
    failed, or at chance)."""
    chance = runs["flags"].fillna("").str.split(",").map(lambda f: "chance" in f)
    done = runs["status"] == "done"
    counts = [f"- {len(runs)} runs: {int((done & ~chance).sum())} done, "
              f"{int((done & chance).sum())} done but at chance (left out of the means), "
              f"{int((runs['status'] == 'diverged').sum())} diverged, "
              f"{int((runs['status'] == 'failed').sum())} failed, "
              f"{int(runs['status'].isin(['pending', 'running']).sum())} unfinished.",
              f"- {int((runs['attempts'] > 1).sum())} run(s) took more than one attempt "
              "(a run that fails or is interrupted is retried when the study is rerun)."]
    odd = runs[(done & chance) | runs["status"].isin(["diverged", "failed"])]
    odd = odd.sort_values(["activation", "seed"])
    def text(v) -> str:
        return v.strip() if isinstance(v, str) else ""

    # an error's last line names it (a traceback ends with the exception)
    rows = [[r.activation, r.seed, r.status, text(r.flags), r.attempts,
             text(r.error).splitlines()[-1][:160] if text(r.error) else
             ("test accuracy indistinguishable from guessing" if "chance" in text(r.flags)
              else "")]
            for r in odd.itertuples()]
    return counts, rows


def _ranking(df: pd.DataFrame, task_dir: Path) -> tuple[list[str], list[str]]:
    """The ranking table from the report's ``ranking.csv`` (``df``) and its summary
    sentences from ``ranking.md``."""
    # an activation none of whose runs has finished says nothing yet (a partial study)
    empty = (df["n"] == 0) & (df[["diverged", "at_chance"]].sum(axis=1) == 0)
    df = df[~empty]
    rows = []
    for r in df.itertuples():
        off = ", ".join(f"{int(getattr(r, k))} {label}" for k, label in
                        (("diverged", "diverged"), ("at_chance", "at chance"))
                        if getattr(r, k, 0))
        rank = "–" if pd.isna(r.rank_mean_accuracy) else int(r.rank_mean_accuracy)
        rows.append([rank, r.activation, r.n,
                     f"{_num(r.mean_accuracy)} ± {_num(r.accuracy_std)}",
                     f"[{_num(r.accuracy_ci_low)}, {_num(r.accuracy_ci_high)}]",
                     _num(r.max_accuracy), _num(r.mean_top5), _num(r.mean_train_loss),
                     _num(r.mean_test_loss), _num(r.mean_epoch_seconds, ".1f"),
                     f"{_num(r.lr_min, '.2g')} – {_num(r.lr_max, '.2g')}", off])
    table = _table(["rank", "activation", "runs", "mean accuracy ± std", "95% CI",
                    "max accuracy", "mean top-5", "train loss", "validation loss",
                    "s / epoch", "LR min – max", "not counted"], rows)
    if empty.any():
        table.append(f"| | *{int(empty.sum())} more with no finished run* |" + " |" * 10)
    md = (task_dir / "ranking.md").read_text().splitlines()
    summary = [line for line in md if line.startswith("- ")]
    return table, summary


def _claims(task_dir: Path, copied: dict[Path, str]) -> list[str]:
    """``claims.md``'s preface and table; figure links point at the copies, or are
    dropped (keeping their text) where the figure was not copied."""
    body = (task_dir / "claims.md").read_text().splitlines()[1:]
    while body and not body[0].strip():
        body = body[1:]

    def relink(m: re.Match) -> str:
        target = (task_dir / m.group(2).replace("%20", " ")).resolve()
        return f"[{m.group(1)}]({copied[target]})" if target in copied else m.group(1)

    return [re.sub(r"\[([^\]]+)\]\(([^)]+)\)", relink, line) for line in body]


def render(db: Path, report: Path, out: Path, csv_dir: Path, command: str | None = None,
           allow_unfinished: bool = False, notes: str | None = None) -> str:
    """The page's Markdown; copies the report's CSVs and key figures into ``csv_dir``.

    Raises:
        Refused: runs are unfinished (without ``allow_unfinished``), or the
            database holds more than one (dataset, model) task.
    """
    frames = T.load_frames(db)
    runs, tasks = frames.runs, frames.tasks()
    unfinished = _check(runs, tasks, db, allow_unfinished)
    (dataset, model), = tasks
    task_dir = report / T.task_slugs(tasks)[(dataset, model)]
    study = _study_meta(db)
    settings = study or json.loads(runs["settings"].iloc[0]).get("study_config", {})

    csv_dir.mkdir(parents=True, exist_ok=True)
    copied: dict[Path, str] = {}
    for src in [*sorted(report.glob("*.csv")), *sorted(task_dir.glob("*.csv"))]:
        shutil.copyfile(src, csv_dir / src.name)
        copied[src.resolve()] = os.path.relpath(csv_dir / src.name, out.parent)
    figures = []
    for name in KEY_FIGURES:
        src = task_dir / f"{name}.png"
        if src.exists():
            shutil.copyfile(src, csv_dir / src.name)
            copied[src.resolve()] = os.path.relpath(csv_dir / src.name, out.parent)
            figures.append((name, copied[src.resolve()]))
    data = export_data(db, csv_dir / "data")

    timed = runs.dropna(subset=["started", "finished"])
    intervals = list(zip(timed["started"], timed["finished"], strict=True))
    busy, stretches = busy_time(intervals)
    jobs = peak_overlap(intervals)
    name = settings.get("name", "STUDY")
    command = command or f"learnact study --preset {name} --jobs {jobs} --db {db.name}"
    run_s = timed["finished"] - timed["started"]
    trained = float(frames.epochs[frames.epochs["run_id"].isin(timed["run_id"])]["seconds"]
                    .sum())
    acts = runs["activation"].nunique()
    seeds = runs["seed"].nunique()
    epochs = settings.get("epochs")

    L = [f"# Reproduction: the `{name}` study ({dataset}, {model})", "",
         f"<!-- Generated by docs/make_reproduction.py from {db.name} and its report; "
         "edit the script, not this page. -->", ""]
    if unfinished:
        L += [f"> **Partial:** {unfinished} of {len(runs)} runs were unfinished when this "
              "page was made. Every number below covers the finished runs only.", ""]
    L += ["## What was run", "", "```bash", command,
          f"learnact report --db {db.name} --out {report.name}",
          f"python docs/make_reproduction.py {db.name} {report.name} --out "
          f"{out.as_posix()} --csv-dir {csv_dir.as_posix()}", "```", "",
          f"{acts} activations × {seeds} seeds = {len(runs)} runs of {model} on {dataset}, "
          f"{epochs} epochs each. `--jobs {jobs}` is the most runs that were training at "
          "one moment. Settings as stored with every run:", ""]
    keys = ("dataset", "model", "swap", "seeds", "epochs", "batch_size", "lr", "lr_method",
            "weight_decay", "div_factor", "pct_start", "final_div", "precision", "augment",
            "mixup_alpha", "label_smoothing", "train_limit", "activation_stats")
    rows = [[k, f"`{settings.get(k)}`"] for k in keys if k in settings]
    L += [*_table(["setting", "value"], rows), ""]

    L += ["## How this differs from the paper", ""]
    if dataset == "fashion-mnist":
        L.append("- **Data set:** Fashion-MNIST (60,000 training and 10,000 test images, "
                 "from Debian's `dataset-fashion-mnist` package, read offline), not MNIST, "
                 "which the paper's LeNet results use (§5.3, §7.1-7.2) and which is not "
                 "available offline here. Fashion-MNIST is harder: accuracies near 0.90, "
                 "not 0.99, so only ranks and differences compare with the paper, never "
                 "absolute accuracies.")
    L += [f"- **Epochs:** {epochs} per run. The paper gives no epoch count for its LeNets "
          "(24 epochs are stated for the WideResNet only, §5.4).",
          f"- **Activations:** the {acts} drop-in activations registered in learnact, not the "
          "paper's 43, which its text does not list; the two sets overlap but are not the "
          "same, "
          "so a rank here is among a different field.",
          "- **Training:** Adam with decoupled weight decay (AdamW, weight decay "
          f"{settings.get('weight_decay')}) under fastai's one-cycle schedule, batch "
          f"{settings.get('batch_size')}, the rate from the LR finder with the "
          f"`{settings.get('lr_method')}` rule (a rate it cannot read from the curve is "
          "tuned instead; `lr_paths` in the ranking CSV says which). The paper states Adam "
          "and the LR finder (§5.2) but not the LeNet batch size or schedule.",
          f"- **Precision and hardware:** `{settings.get('precision')}` precision, which is "
          "fp32 on the CPU; the paper used mixed-precision training (§5.2, its reference "
          "12) and does not name its hardware. Times per epoch "
          "are from a 2-core CPU shared by the study's parallel runs and other work, so "
          "compare them within this table only.",
          f"- **Runs:** {seeds} per activation as in the paper (§6), but with matched seeds: "
          "a seed fixes the initial weights and the batch order for every activation, so "
          "runs of one seed are compared in pairs (paired tests, Friedman over seeds).",
          "- **Scope:** only LeNet5. The paper's LeNet4 and WideResNet / CIFAR-10 tasks "
          "are not run here (no CIFAR-10 offline, and a WideResNet-22 epoch takes about "
          "17 min on this 2-core CPU even in bf16).", ""]

    L += ["## Time and machine", ""]
    if intervals:
        L += [f"- **Busy wall time: {_duration(busy)}**, the union of the {len(intervals)} "
              "finished runs' start-to-finish intervals"
              + (f", in {stretches} stretches (the study was stopped and resumed between "
                 "them)" if stretches > 1 else "")
              + ". A run interrupted and redone counts from its last start.",
              f"- First start {_utc(min(s for s, _ in intervals))}, last finish "
              f"{_utc(max(e for _, e in intervals))}.",
              f"- The median run took {_duration(float(run_s.median()))} (shortest "
              f"{_duration(float(run_s.min()))}, longest {_duration(float(run_s.max()))}), "
              "its LR finder sweep included; a run resumed from a checkpoint counts from "
              "its last start only.",
              f"- The runs' own epoch times (median step time × steps, as in the ranking) "
              f"add up to {_duration(trained)}. The intervals above hold more: the LR "
              "finder, evaluation, start-up, and any time the machine was suspended while "
              "runs were in flight."]
    L += [f"- `os.cpu_count()` where this page was made: {os.cpu_count()}. The machine "
          "each run recorded:", *_machine(runs), ""]

    if notes and notes.strip():
        L += ["## Notes from the people who ran it", "", _nested(notes.strip()), ""]

    counts, odd = _outcomes(runs)
    L += ["## Runs", "", *counts, ""]
    if odd:
        L += ["The runs that are not results, and why:", ""]
        L += [*_table(["activation", "seed", "status", "flags", "attempts", "reason"], odd), ""]

    ranking = pd.read_csv(task_dir / "ranking.csv")
    table, summary = _ranking(ranking, task_dir)
    L += ["## Ranking", "",
          "By mean test accuracy at the last epoch over the seeds (the paper's main "
          "measure, §6), ± the sample standard deviation, with a 95% Student-t interval. "
          "Activations with a diverged or at-chance run are not ranked (`–`) and come "
          "last; their other runs' means are shown. Full precision and every rank column: "
          f"[ranking.csv]({copied[(task_dir / 'ranking.csv').resolve()]}).", ""]
    within = T.seed_friedman(runs)
    if within is not None:
        dropped = (f"; left out for missing a seed: {', '.join(within['dropped'])}"
                   if within["dropped"] else "")
        L += [f"Friedman test over {within['n_seeds']} seeds and "
              f"{len(within['activations'])} ranked activations: χ²_F = {within['chi2']:.2f}, "
              f"p = {within['p']:.3g}; Nemenyi critical difference (α = 0.05) = "
              f"{within['cd']:.2f} ranks{dropped}.", ""]
    paired = task_dir / "paired_vs_relu.csv"
    if paired.exists():
        p = pd.read_csv(paired)
        ranked = set(ranking[ranking["rank_mean_accuracy"].notna()]["activation"])
        unranked = sorted(set(p["activation"]) - ranked)
        p = p[p["activation"].isin(ranked)]
        better = p[p["ci_low"] > 0]["activation"].tolist()
        worse = p[p["ci_high"] < 0]["activation"].tolist()
        none = p[p["ci_low"].isna() | p["ci_high"].isna()]["activation"].tolist()
        rest = len(p) - len(better) - len(worse) - len(none)
        L += [f"Paired with relu by seed ([paired_vs_relu.csv]({copied[paired.resolve()]})), "
              f"among the ranked activations: {len(better)} have a 95% interval of the "
              f"accuracy difference above 0 ({', '.join(better) or 'none'}), {len(worse)} "
              f"below 0 ({', '.join(worse) or 'none'}), the other {rest} contain 0"
              + (f"; {', '.join(none)} share fewer than 2 ordinary seeds with relu, so "
                 "they have no interval" if none else "")
              + (f"; the CSV also pairs {', '.join(unranked)}, not ranked, on the seeds "
                 "where it ran ordinarily" if unranked else "") + ".", ""]
    L += [*table, "", *summary, ""]

    L += ["## The paper's claims", "", *_claims(task_dir, copied), ""]

    if figures:
        L += ["## Key figures", ""]
        L += [f"![{name}]({path})" for name, path in figures] + [""]
        L += ["Every figure, with the per-activation ones, is in the report "
              f"(`learnact report --db {db.name}`); it is not committed.", ""]
    L += ["## Files", "",
          f"The report's CSVs, in `{csv_dir.as_posix()}/`: "
          + ", ".join(f"[{Path(v).name}]({v})" for k, v in copied.items()
                      if v.endswith(".csv")) + ". The database is not committed; its data is "
          f"in `{csv_dir.as_posix()}/data/`, one CSV per kind of row (the columns of "
          "`learnact results --format csv` and `--export`):", ""]
    rel = os.path.relpath(csv_dir / "data", out.parent)
    L += [f"- [{name}]({rel}/{name}): {n} rows, one per {row}" for name, n, row in data]
    L += [""]
    return "\n".join(L)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns the exit code (2 for a refused study or an unreadable
    database, with one line on stderr)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("db", type=Path, help="the study's results database")
    parser.add_argument("report", type=Path,
                        help="its report folder (made first when it has no index.html)")
    parser.add_argument("--out", type=Path, default=Path("docs/reproduction.md"))
    parser.add_argument("--csv-dir", type=Path, default=Path("docs/fashion-lenet5"))
    parser.add_argument("--command", help="the study command to print (default: inferred)")
    parser.add_argument("--notes", type=Path,
                        help="a Markdown file of hand-written notes on the run to include")
    parser.add_argument("--allow-unfinished", action="store_true",
                        help="write a page marked partial when runs are unfinished")
    args = parser.parse_args(argv)
    notes = None
    if args.notes is not None:
        try:
            notes = args.notes.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            print(f"make_reproduction: cannot read --notes {args.notes}: {exc}", file=sys.stderr)
            return 2
    try:
        frames = T.load_frames(args.db)
        _check(frames.runs, frames.tasks(), args.db, args.allow_unfinished)
        if not (args.report / "index.html").exists():
            make_report(args.db, args.report)
        text = render(args.db, args.report, args.out, args.csv_dir, args.command,
                      args.allow_unfinished, notes)
    except (Refused, ReportError) as exc:
        print(f"make_reproduction: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    files = sum(1 for f in args.csv_dir.rglob("*") if f.is_file())
    print(f"wrote {args.out} and {files} files in {args.csv_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
