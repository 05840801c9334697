"""The paper's claims as statistics: one verdict per claim the data can speak to.

Each check takes one task's data frames and returns a :class:`Claim`: the
paper's statement with its section, the statistic computed here, and a verdict:

- ``supported``: the 95% interval of the effect lies on the claimed side of 0;
- ``contradicted``: it lies on the other side;
- ``not enough data``: the interval contains 0, there are too few pairs, or
  the data lacks what the claim is about (no Dual Line, no repeating blocks).

Table 1's ranges (§8.1) have no interval: *supported* when every rate chosen
for Dual Line and DP ReLU lies inside the paper's range, *contradicted* when
one lies outside it.

Pairs are matched (by seed, and by site where the claim is about sites), and
every interval is a Student-t interval of the paired differences with a
Wilcoxon signed-rank p-value beside it (:mod:`learnact.report.stats`).

The rank claim (§7 and the abstract: Dual Line in the top 5 by mean accuracy)
is a Friedman test over seeds within the task, and over tasks when there are
several, with the Nemenyi critical difference (Demšar 2006): *supported* when
at most 4 activations are not significantly worse than Dual Line,
*contradicted* when 5 or more are significantly better, else *not enough
data*; nothing is significant unless the Friedman test rejects at α = 0.05.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .stats import mean_ci, wilcoxon_signed_rank

__all__ = ["TOP_K", "Claim", "claims_markdown", "rank_claim", "task_claims"]

# the abstract: "Dual Line achieves top-5 position for mean accuracy among 43 activation functions"
TOP_K = 5
ALPHA = 0.05


@dataclass
class Claim:
    """One claim of the paper, tested on one task.

    ``figure`` is the report file that shows the statistic (relative to the
    task's folder), or ``""``.
    """

    section: str
    statement: str
    statistic: str
    verdict: str
    figure: str = ""


def _verdict(diffs: list[float], claimed_sign: int) -> tuple[str, str]:
    """``(statistic text, verdict)`` for paired differences whose claimed sign is
    ``claimed_sign`` (+1: positive, -1: negative)."""
    mean, _, lo, hi = mean_ci(diffs)
    _, p, used = wilcoxon_signed_rank(diffs)
    if len(diffs) < 2 or math.isnan(lo):
        return f"{len(diffs)} pair(s): too few for an interval", "not enough data"
    text = (f"mean difference {mean:+.4g}, 95% CI [{lo:+.4g}, {hi:+.4g}] over "
            f"{len(diffs)} pairs; Wilcoxon p = {p:.3g}" if used else
            f"all {len(diffs)} differences are 0")
    if lo <= 0 <= hi:
        return text, "not enough data"
    return text, "supported" if (lo > 0) == (claimed_sign > 0) else "contradicted"


def _mean_shift(stats: pd.DataFrame) -> Claim:
    """§3.4: Dual Line's |mean output| is below DP ReLU's, paired by seed and site.

    The (seed, site) pairs are not independent (a seed's sites share one
    network), so the seeds' averages over sites are tested too, and the verdict
    is *supported* or *contradicted* only when both agree; each site's mean
    difference is listed, since the effect need not have one sign everywhere.
    """
    statement = ("The mean shift parameter in Dual Line aids to push the mean activation "
                 "towards zero (compared here with DP ReLU, the same function without it).")
    if stats is None or stats.empty or not {"dual_line", "dp_relu"} <= set(stats["activation"]):
        return Claim("§3.4", statement, "needs activation statistics of dual_line and dp_relu "
                     "runs (schema 2 databases record them)", "not enough data")
    last = stats[stats["epoch"] == stats.groupby("run_id")["epoch"].transform("max")]
    key = ["seed", "site_index"]
    dl = last[last["activation"] == "dual_line"].set_index(key)["mean"].abs()
    dp = last[last["activation"] == "dp_relu"].set_index(key)["mean"].abs()
    both = dl.index.intersection(dp.index)
    diff = (dl.loc[both] - dp.loc[both]).astype(float)
    text, verdict = _verdict(diff.tolist(), -1)
    by_seed = diff.groupby(level="seed").mean().tolist()
    seed_text, seed_verdict = _verdict(by_seed, -1)
    if seed_verdict != verdict:
        verdict = "not enough data"
    by_site = diff.groupby(level="site_index")
    sites = ", ".join(f"site {site} {g.mean():+.3g} ({int((g < 0).sum())} of {len(g)} seeds "
                      "below 0)" for site, g in by_site)
    return Claim("§3.4", statement, "|mean output| of dual_line minus dp_relu at the last "
                 f"epoch, by (seed, site): {text}; by seed, averaged over sites: {seed_text}; "
                 f"by site, mean difference: {sites}", verdict)


def _dual_line_beats_dp_relu(runs: pd.DataFrame) -> Claim:
    """§1/§7: Dual Line's accuracy is above DP ReLU's, paired by seed."""
    from ..study.summary import is_ordinary

    statement = ("The better performance of Dual Line compared to DP ReLU clearly indicates "
                 "the impact of the mean shift parameter.")
    ok = runs[[is_ordinary(r) for r in runs.to_dict("records")]]
    acc = {a: ok[ok["activation"] == a].set_index("seed")["test_accuracy"]
           for a in ("dual_line", "dp_relu")}
    seeds = sorted(set(acc["dual_line"].index) & set(acc["dp_relu"].index))
    if not seeds:
        return Claim("§1, §7", statement, "needs ordinary runs of dual_line and dp_relu with "
                     "a shared seed", "not enough data")
    diffs = [float(acc["dual_line"][s] - acc["dp_relu"][s]) for s in seeds]
    text, verdict = _verdict(diffs, +1)
    return Claim("§1, §7", statement, f"test accuracy of dual_line minus dp_relu by seed: "
                 f"{text}", verdict)


def _first_vs_second(params: pd.DataFrame) -> Claim:
    """§3.3/§8.2: within a block, the first activation's positive slope differs from
    (is larger than) the second's, paired by block and seed."""
    statement = ("The final value of the slope depends on the position of the activation "
                 "with respect to other layers (§3.3); the requirement varies with the "
                 "position within a block (§8.2): tested as A-1's positive slope above A-2's.")
    slopes = params[(params["epoch"] == -1) & (params["param"] == "pos_slope")] \
        if params is not None and not params.empty else None
    if slopes is None or slopes.empty:
        return Claim("§3.3, §8.2", statement, "no activation with a positive slope "
                     "(dp_relu, dual_line, learnable(...)) was run: nothing to pair",
                     "not enough data")
    p = slopes[slopes["block"].notna()]
    if p.empty:
        return Claim("§3.3, §8.2", statement, "this model has no repeating blocks (the "
                     "LeNets), so no activation is the first or second of a block: nothing "
                     "to pair", "not enough data")
    diffs = []
    for (_act, _seed, _block), g in p.groupby(["activation", "seed", "block"]):
        first = g[g["position"] == 1]["value"]
        second = g[g["position"] == 2]["value"]
        if len(first) and len(second):
            diffs.append(float(first.mean() - second.mean()))
    text, verdict = _verdict(diffs, +1)
    acts = ", ".join(sorted(p["activation"].unique()))
    return Claim("§3.3, §8.2", statement, f"pos_slope of A-1 minus A-2 by (activation, seed, "
                 f"block) over {acts}: {text}", verdict)


def _rank(runs: pd.DataFrame) -> Claim:
    """§7.1: Dual Line has the best mean accuracy (LeNet5 on MNIST in the paper)."""
    from ..study.summary import certainty, summarize

    statement = "Dual Line achieves ... best mean accuracy (§7.1, LeNet5 on MNIST)."
    table = [s for s in summarize(runs.to_dict("records")) if s["ranked"]]
    names = [s["activation"] for s in table]
    if "dual_line" not in names or len(names) < 2:
        return Claim("§7.1", statement, "needs dual_line and another ranked activation",
                     "not enough data")
    rank = names.index("dual_line") + 1
    lines = [line for lines in certainty(runs.to_dict("records")).values() for line in lines]
    tied = next((line for line in lines if "indistinguishable from" in line), "")
    best = names[0]
    tied_names = tied.split("indistinguishable from ", 1)[1].split(":")[0].split(", ") if tied \
        else []
    if rank == 1:
        verdict = "not enough data" if tied_names else "supported"
    else:
        verdict = "not enough data" if "dual_line" in tied_names else "contradicted"
    return Claim("§7.1", statement, f"dual_line is {rank} of {len(names)} by mean "
                 f"accuracy (best: {best}). {tied or 'The best is distinguishable.'}",
                 verdict)


RANK_STATEMENT = ("Dual Line achieves top-5 position for mean accuracy among 43 activation "
                  "functions tested with LENET4, LENET5 and WideResNet (abstract; §7.1-7.3: "
                  "1st, 5th and 2nd by mean accuracy).")


def rank_claim(test: dict | None, blocks: str, figure: str = "") -> Claim:
    """The top-5 rank claim from a Friedman/Nemenyi result.

    Args:
        test: :func:`learnact.report.tables.seed_friedman` or
            :func:`~learnact.report.tables.friedman_table`'s dict (``None``:
            too few blocks or activations).
        blocks: what a block is, in words (``"seeds"``, ``"tasks"``).
        figure: the CD diagram's file, linked from the claim.
    """
    section = "§7, abstract" + ("" if blocks == "seeds" else f" (across {blocks})")
    if test is None:
        return Claim(section, RANK_STATEMENT, f"needs at least 2 {blocks} shared by 2 or more "
                     "ranked activations for a Friedman test", "not enough data")
    names, ranks, cd, p = test["activations"], test["avg_ranks"], test["cd"], test["p"]
    k = len(names)
    text = (f"Friedman test over {test['n_blocks']} {blocks} (blocks) and {k} activations: "
            f"χ²_F = {test['chi2']:.3f} (df {k - 1}), p = {p:.3g}; Nemenyi critical "
            f"difference (α = {ALPHA}) = {cd:.3f} ranks.")
    if test.get("dropped"):
        text += f" Left out (a seed without an ordinary run): {', '.join(test['dropped'])}."
    if "dual_line" not in names:
        return Claim(section, RANK_STATEMENT, text + " dual_line is not among the ranked "
                     "activations.", "not enough data", figure)
    mine = ranks[names.index("dual_line")]
    place = 1 + sum(r < mine for r in ranks)
    others = [(n, r) for n, r in zip(names, ranks, strict=True) if n != "dual_line"]
    better = sorted(n for n, r in others if r < mine - cd)
    not_worse = [n for n, r in others if r < mine + cd]  # better, or within the CD
    worse = [n for n, r in others if r >= mine + cd]
    text += (f" dual_line's average rank over {blocks} is {mine:.2f} (place {place} of {k} "
             f"by average rank; the mean-accuracy place can differ). Of the {k - 1} others, "
             f"{len(better)} rank significantly better"
             + (f" ({', '.join(better[:8])}{', ...' if len(better) > 8 else ''})" if better
                else "")
             + f", {len(not_worse) - len(better)} within the critical difference and "
             f"{len(worse)} significantly worse, so its place is between {len(better) + 1} "
             f"and {len(not_worse) + 1}.")
    if k <= TOP_K:
        return Claim(section, RANK_STATEMENT, text + f" With {k} activations every one is in "
                     f"the top {TOP_K}.", "not enough data", figure)
    if p >= ALPHA:
        return Claim(section, RANK_STATEMENT, text + " The Friedman test finds no difference "
                     "among the activations, so no rank is significant.", "not enough data",
                     figure)
    if len(better) >= TOP_K:
        verdict = "contradicted"
    elif len(not_worse) < TOP_K:
        verdict = "supported"
    else:
        verdict = "not enough data"
    return Claim(section, RANK_STATEMENT, text, verdict, figure)


def _lr_range(runs: pd.DataFrame) -> Claim:
    """§8.1 / Table 1: the learning-rate ranges Dual Line and DP ReLU prefer."""
    statement = ("Overall, Dual Line prefers the range 1.4e-3 to 0.363 and DP ReLU 1e-3 to "
                 "0.251 (Table 1).")
    paper = {"dual_line": (1.4e-3, 0.363), "dp_relu": (1e-3, 0.251)}
    parts, inside = [], []
    for act, (lo, hi) in paper.items():
        lrs = runs[(runs["activation"] == act)]["lr"].dropna()
        if lrs.empty:
            continue
        parts.append(f"{act} {lrs.min():.3g} to {lrs.max():.3g} over {len(lrs)} runs")
        inside.append(lo <= lrs.min() and lrs.max() <= hi)
    if not parts:
        return Claim("§8.1", statement, "no dual_line or dp_relu run has a rate",
                     "not enough data")
    verdict = "supported" if all(inside) else "contradicted"
    where = "all inside" if all(inside) else "not all inside"
    return Claim("§8.1", statement, "; ".join(parts) + f" ({where} the paper's ranges: a "
                 "weak check, since the study's own limits, finder picks capped at 0.05 and "
                 "tuning from 3e-4 to 3e-2, lie inside them too)", verdict)


def task_claims(runs: pd.DataFrame, params: pd.DataFrame | None,
                stats: pd.DataFrame | None, *, cd_figure: str = "",
                across: dict | None = None, across_figure: str = "") -> list[Claim]:
    """Every claim, tested on one task's runs, parameters and activation statistics.

    Args:
        cd_figure: the task's critical-difference diagram (over seeds), linked
            from the rank claim.
        across: :func:`learnact.report.tables.friedman_table` of the whole
            database; with it, the rank claim is also tested across tasks.
        across_figure: that test's diagram, relative to the task's folder.
    """
    from .tables import seed_friedman

    claims = [_mean_shift(stats), _dual_line_beats_dp_relu(runs), _first_vs_second(params),
              _rank(runs), rank_claim(seed_friedman(runs), "seeds", cd_figure)]
    if across is not None:
        claims.append(rank_claim(across, "tasks", across_figure))
    return [*claims, _lr_range(runs)]


def claims_markdown(task: str, claims: list[Claim]) -> str:
    """``claims.md`` for one task: a table of section, claim, statistic and verdict."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    def link(figure: str) -> str:
        return f" [{figure.rsplit('/', 1)[-1]}]({figure.replace(' ', '%20')})" if figure else ""

    lines = [f"# The paper's claims on {task}", "",
             "Verdicts: *supported* (the 95% interval lies on the claimed side of 0), "
             "*contradicted* (on the other side), *not enough data* (it contains 0, or the "
             "data lacks what the claim is about). The rank claim counts activations "
             f"significantly better or not significantly worse than dual_line (Friedman "
             f"test, then Nemenyi's critical difference at α = {ALPHA}). For Table 1's "
             "ranges (§8.1), *supported* means that every rate chosen here lies inside the "
             "paper's range and *contradicted* that one lies outside it.", "",
             "| section | the paper says | statistic here | verdict |", "|---|---|---|---|"]
    lines += [f"| {c.section} | {cell(c.statement)} | {cell(c.statistic)}{link(c.figure)} "
              f"| **{c.verdict}** |" for c in claims]
    return "\n".join(lines) + "\n"
