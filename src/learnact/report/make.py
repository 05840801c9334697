"""The whole report: figures, tables and ``index.html`` for every (dataset, model) task."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

from .._text import csv_cell, printable
from ..errors import ReportError

__all__ = ["ReportResult", "make_report"]

# tables with more rows than this start closed in the page (the ranking never does)
LONG_TABLE = 15


@dataclass
class ReportResult:
    """What :func:`make_report` wrote."""

    index: Path
    files: list[Path] = field(default_factory=list)
    tasks: list[tuple[str, str]] = field(default_factory=list)


def _csv(df) -> str:
    """``df`` as CSV with every text cell made safe (:func:`learnact._text.csv_cell`)."""
    from pandas.api.types import is_numeric_dtype

    return df.apply(lambda col: col if is_numeric_dtype(col) else col.map(csv_cell)).to_csv(
        index=False)


def _plain(df):
    """``df`` with control characters in text cells escaped (a newline would split a row)."""
    from pandas.api.types import is_numeric_dtype

    return df.apply(lambda col: col if is_numeric_dtype(col) else
                    col.map(lambda v: printable(v) if isinstance(v, str) else v))


def _check_out(out: Path) -> None:
    """Refuse an output path that is a file, or under one, before anything is read."""
    for folder in (out, *out.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ReportError(f"--out {out}: {folder} is a file, not a folder; give a "
                                  "folder for the report")
            return


def make_report(db: str | Path, out: str | Path, fmt: str = "png", *,
                embed_figures: bool = False) -> ReportResult:
    """Write the full report for database ``db`` into directory ``out``.

    ``index.html`` links each figure by its path relative to ``out``, so it is
    read beside them; with ``embed_figures`` it holds them as data URIs instead
    and works alone (at 56 activations, about 70 times larger).

    Raises:
        ReportError: the database is missing, unreadable or empty, or ``out``
            is (or lies under) a file.
        ValueError: ``fmt`` is not ``png`` or ``svg``.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"format must be png or svg, got {fmt!r}")
    _check_out(Path(out))
    import matplotlib.pyplot as plt
    import pandas as pd

    from . import figures as F
    from . import tables as T
    from .claims import claims_markdown, task_claims
    from .page import details, image_html, page, table_html
    from .tables import slug as _slug
    from .tables import task_slugs

    frames = T.load_frames(db)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportError(f"--out {out}: cannot make the folder ({exc.strerror or exc})"
                          ) from None
    result = ReportResult(index=out / "index.html", tasks=frames.tasks())
    slugs = task_slugs(result.tasks)

    def save(fig, path: Path, caption: str) -> str:
        fig.savefig(path, dpi=110)
        plt.close(fig)
        result.files.append(path)
        return image_html(path, caption, None if embed_figures else out)

    def write(path: Path, text: str) -> None:
        path.write_text(text)
        result.files.append(path)

    source = html.escape(printable(str(db)))
    at_chance = int(frames.runs["flags"].fillna("").str.split(",")
                    .map(lambda f: "chance" in f).sum())
    sections = [
        f"<p class=note>From <code>{source}</code>: {len(frames.runs)} runs, "
        f"{int((frames.runs['status'] == 'done').sum())} done ({at_chance} at chance), "
        f"{int((frames.runs['status'] == 'diverged').sum())} diverged, "
        f"{int((frames.runs['status'] == 'failed').sum())} failed, "
        f"{int(frames.runs['status'].isin(['pending', 'running']).sum())} unfinished. "
        "Click a column header to sort.</p>",
        "<nav class=toc>" + "".join(
            f"<a href='#{slugs[t]}'>{html.escape(printable(f'{t[0]} / {t[1]}'))}</a>"
            for t in result.tasks) + "<a href='#learning-rates'>learning rates</a>"
        "<a href='#across-tasks'>across tasks</a></nav>"]

    lr_overview, lr_per = T.lr_table(frames)
    fried = T.friedman_table(frames.runs)
    for dataset, model in result.tasks:
        task = printable(f"{dataset} / {model}")
        slug = slugs[(dataset, model)]
        tdir = out / slug
        tdir.mkdir(exist_ok=True)
        runs = frames.runs[(frames.runs["dataset"] == dataset) & (frames.runs["model"] == model)]
        table = T.summary_table(runs)
        summary = T.ranking_summary(table, runs=runs)
        seeds = int(runs["seed"].nunique())
        sec = [f"<h2 id='{slug}'>{html.escape(task)}</h2>",
               f"<p class=note>{len(table)} activation(s), {seeds} seed(s).</p>"]
        sec.append(save(F.heatmap(table, task), tdir / f"heatmap.{fmt}",
                        f"{task}: rows sorted by mean accuracy; darker is better per column, "
                        "each on its own scale (printed under its name); framed cells lie "
                        "beyond it"))
        cols = ["activation", "n", "diverged", "at_chance", "mean_accuracy", "accuracy_std",
                "accuracy_ci_low", "accuracy_ci_high", "max_accuracy", "mean_top5",
                "mean_train_loss", "mean_test_loss", "mean_epoch_seconds", "lr_min", "lr_max",
                "lr_paths", *[c for c in table.columns if c.startswith("rank_")]]
        write(tdir / "ranking.csv", _csv(table[cols]))
        md = (T.to_markdown(_plain(table[cols])) + "\n\n"
              + "\n".join(f"- {printable(s)}" for s in summary) + "\n")
        write(tdir / "ranking.md", md)
        sec.append("<h3>Ranking (mean ± std and 95% CI over seeds)</h3>")
        sec.append("<ul class=summary>" + "".join(f"<li>{html.escape(s)}</li>" for s in summary)
                   + "</ul>")
        sec.append(table_html(table[cols], f"ranking-{slug}",
                              table["ranked"].map(lambda r: "" if r else "diverged")))
        paired = T.paired_vs_baseline(runs)
        write(tdir / "paired_vs_relu.csv", _csv(paired))
        if "relu" in set(runs["activation"]) and not paired.empty:
            sec.append("<h3>Paired against relu (by seed, test accuracy)</h3>")
            sec.append(details(f"{len(paired)} activations", table_html(paired,
                                                                       f"paired-{slug}"),
                               open_=len(paired) <= LONG_TABLE))
        timing = T.timing_spread(frames, dataset, model)
        if not timing.empty:
            spread = timing["spread"].fillna(0.0)  # NaN: a zero median, nothing to compare
            worst = timing.loc[spread.idxmax()]
            sec.append(
                "<p class=note>Timing: an epoch's seconds are the median training-step time "
                "times the steps per epoch; the first steps of each epoch (a quarter, at most "
                "5) are left out, and the fused kernels are built before any run starts, so "
                "neither warm-up nor a build counts. Over epochs and seeds, an activation's "
                f"epoch time spread (max − min over median) by a median of "
                f"{100 * timing['spread'].median():.0f}% (largest: {worst['activation']}, "
                f"{100 * spread.max():.0f}%, "
                f"over {int(worst['epochs'])} epochs). Differences smaller than that spread "
                "are noise.</p>")
        per = lr_per[(lr_per["dataset"] == dataset) & (lr_per["model"] == model)]
        if not per.empty:
            sec.append("<h3>Learning-rate range per activation</h3>")
            sec.append(details(f"{len(per)} activations",
                               table_html(per[["activation", "lr_min", "lr_max", "runs",
                                               "chosen_by"]], f"lr-{slug}"),
                               open_=len(per) <= LONG_TABLE))
        ep = frames.epochs.merge(runs[["run_id", "activation", "seed"]], on="run_id")
        if int(ep["epoch"].max() if not ep.empty else 0) >= 1:
            ranked = list(table[table["ranked"].astype(bool)]["activation"])
            shown = list(dict.fromkeys(
                ranked[:6] + [a for a in ("relu", "dp_relu", "dual_line") if a in ranked]))
            sec.append(save(F.learning_curves(ep, shown, f"Learning curves on {task}"),
                            tdir / f"learning_curves.{fmt}",
                            f"{task}: test accuracy and training loss per epoch, mean over "
                            "seeds with a min–max band, for the 6 best ranked activations "
                            "and relu, dp_relu and dual_line"))
        within = T.seed_friedman(runs)
        cd_figure = ""
        if within is not None:
            cd_figure = f"cd_diagram.{fmt}"
            cd_html = save(F.cd_diagram(within["activations"], within["avg_ranks"], within["cd"],
                                        f"{task}: average rank by test accuracy over "
                                        f"{within['n_seeds']} seeds (1 = best)"),
                           tdir / cd_figure,
                           f"{task}: critical-difference diagram over seeds (Friedman "
                           f"p = {within['p']:.3g}); activations joined by a bar are not "
                           "significantly different (Nemenyi, α = 0.05)")
        claims = task_claims(runs, frames.params[frames.params["run_id"].isin(runs["run_id"])],
                             frames.act_stats[frames.act_stats["run_id"].isin(runs["run_id"])],
                             cd_figure=cd_figure, across=fried,
                             across_figure=f"../cd_diagram.{fmt}")
        write(tdir / "claims.md", claims_markdown(task, claims))
        sec.append("<h3>The paper's claims</h3>")
        sec.append(table_html(pd.DataFrame([vars(c) for c in claims]).drop(columns="figure"),
                              f"claims-{slug}"))
        if within is not None:
            sec.append(cd_html)
        curves = T.finder_curves(frames, dataset, model)
        if not curves.empty:
            sec.append(save(F.lr_finder_curves(curves, f"LR finder on {task}"),
                            tdir / f"lr_finder.{fmt}",
                            f"{task}: each activation's LR-finder curve (lowest seed), the "
                            "chosen rate marked"))
        params = frames.params[(frames.params["dataset"] == dataset)
                               & (frames.params["model"] == model)]
        per_act: dict[str, list[str]] = {}
        for act in sorted(params["activation"].unique()):
            figs = per_act.setdefault(act, [])
            figs.append(save(F.param_positions(params, act, f"{act} on {task}"),
                             tdir / f"params_{_slug(act)}.{fmt}",
                             f"{act}: values by site position over all seeds"))
            if params[params["activation"] == act]["block"].notna().any():
                figs.append(save(F.param_boxplots(params, act, f"{act} on {task}: within "
                                                  "blocks"),
                                 tdir / f"blocks_{_slug(act)}.{fmt}",
                                 f"{act}: per block, by position (A-1, A-2, ...)"))
            figs.append(save(F.response_region(params, act, title=f"{act} on {task}"),
                             tdir / f"region_{_slug(act)}.{fmt}",
                             f"{act}: initial curve and min–max envelope of learned curves"))
            mine = params[params["activation"] == act]
            if mine["epoch"].max() >= 1:
                figs.append(save(F.param_trajectories(params, act, f"{act} on {task}: over "
                                                      "training"),
                                 tdir / f"trajectory_{_slug(act)}.{fmt}",
                                 f"{act}: each site's values per epoch (mean over seeds, "
                                 "min–max band)"))
        stats = frames.act_stats[frames.act_stats["run_id"].isin(runs["run_id"])]
        for act in sorted(stats["activation"].unique()):
            per_act.setdefault(act, []).append(save(
                F.activation_means(stats, act, f"{act} on {task}: outputs on the probe batch"),
                tdir / f"outputs_{_slug(act)}.{fmt}",
                f"{act}: each site's mean output and share of zero gradients per epoch (mean "
                "over seeds, min–max band)"))
        if per_act:
            # one closed section per activation: 53 activations' figures would bury the rest
            sec.append("<h3>Per activation: learned parameters and outputs</h3>")
            sec += [details(f"{printable(act)} ({len(figs)} figure{'s' * (len(figs) > 1)})",
                            "".join(figs), open_=act in ("dual_line", "dp_relu"))
                    for act, figs in sorted(per_act.items())]
        sections += sec

    if not lr_overview.empty:
        write(out / "lr_table.csv", _csv(lr_overview))
        write(out / "lr_table.md", T.to_markdown(_plain(lr_overview)) + "\n")
        sections += ["<h2 id='learning-rates'>Learning rates (the paper's Table 1)</h2>",
                     table_html(lr_overview, "lr-overview")]
        by_act = T.lr_by_activation(frames)
        write(out / "lr_by_activation.csv", _csv(by_act))
        write(out / "lr_by_activation.md", T.to_markdown(_plain(by_act)) + "\n")
        sections += ["<h3>Each activation's learning-rate range across tasks</h3>",
                     details(f"{len(by_act)} activations",
                             table_html(by_act, "lr-by-activation"),
                             open_=len(by_act) <= LONG_TABLE)]
    sections.append("<h2 id='across-tasks'>Across tasks</h2>")
    if fried is None:
        sections.append("<p class=note>A Friedman test and critical-difference diagram need "
                        "at least two (dataset, model) tasks sharing two or more activations; "
                        "this database has fewer.</p>")
    else:
        sections.append(f"<p>Friedman test over {fried['n_tasks']} tasks and "
                        f"{len(fried['activations'])} activations: χ²<sub>F</sub> = "
                        f"{fried['chi2']:.3f}, p = {fried['p']:.3g}. Nemenyi critical difference "
                        f"(α = 0.05): {fried['cd']:.3f}.</p>")
        sections.append(save(F.cd_diagram(fried["activations"], fried["avg_ranks"], fried["cd"],
                                          "Average rank by mean accuracy (1 = best)"),
                             out / f"cd_diagram.{fmt}", "Critical-difference diagram"))
    result.index.write_text(page("learnact report", sections))
    result.files.append(result.index)
    return result
