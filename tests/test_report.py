"""Reports from a synthetic database with known values."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from learnact.cli import main
from learnact.report import make_report
from learnact.report import stats as S
from learnact.report import tables as T
from learnact.study import Store
from learnact.study.types import LRFindRecord, RunResult

ACTS8 = ["relu", "gelu", "dual_line", "dp_relu", "tanh", "mish", "prelu", "silu"]


def accuracy(act_index: int, seed: int, task: int) -> float:
    """The known value stored for a run: deterministic, distinct per activation."""
    return 0.9 - 0.004 * act_index + 0.001 * ((seed * 7 + act_index + task) % 5)


# the activations of realistic_accuracy that collapse: every seed, or one seed, at 0.10
COLLAPSED, COLLAPSED_SEED, SLOW_SEED = (11, 37), (20, 3), (44, 2)


def realistic_accuracy(act_index: int, seed: int, task: int) -> float:
    """Accuracies as a 5-epoch Fashion-MNIST LeNet5 study gives them: most in
    0.88-0.91, two activations collapsed to chance (0.10) on every seed, one on
    one seed, and one seed of another that learned late (0.62, not at chance)."""
    if act_index in COLLAPSED or (act_index, seed) == COLLAPSED_SEED:
        return 0.1
    if (act_index, seed) == SLOW_SEED:
        return 0.62
    return 0.88 + 0.03 * ((act_index * 0.618034) % 1) + 0.001 * ((seed * 7 + act_index) % 5 - 2)


def realistic_chance(acts) -> set[tuple[str, int]]:
    """The (activation, seed) runs of :func:`realistic_accuracy` a study flags as at chance."""
    return {(acts[i], s) for i in COLLAPSED for s in range(5)} | {
        (acts[COLLAPSED_SEED[0]], COLLAPSED_SEED[1])}


def build_db(path, acts, seeds, tasks=(("fashion-mnist", "lenet5"),), diverge=(),
             per_epoch=False, accuracy=accuracy, chance=()):
    """A database of known values; ``per_epoch`` adds parameter snapshots and
    activation statistics for each epoch, as a study records them by default.
    ``accuracy(act_index, seed, task)`` gives each run's final test accuracy, and
    the ``(activation, seed)`` runs in ``chance`` carry the at-chance flag."""
    store = Store(path)
    for t, (dataset, model) in enumerate(tasks):
        # rows built by hand so that unregistered (user) activation names work too
        runs = [SimpleNamespace(run_id=f"{dataset}-{model}-{act}-{seed}", activation=act,
                                seed=seed) for act in acts for seed in range(seeds)]
        store.add_runs({"run_id": r.run_id, "study": "synthetic", "activation": r.activation,
                        "model": model, "dataset": dataset, "seed": r.seed,
                        "settings": {"lr": 1e-3}} for r in runs)
        n_sites, blocks = (19, True) if model == "wrn22" else (4, False)
        for run in runs:
            assert store.claim([run.run_id]) == run.run_id
            i = acts.index(run.activation)
            acc = accuracy(i, run.seed, t)
            status = "diverged" if (run.activation, run.seed) in diverge else "done"
            result = RunResult(run.run_id, status, lr=1e-3 * (1 + i) * (1 + run.seed),
                               flags=["chance"] if (run.activation, run.seed) in chance else [],
                               epochs=[
                {"epoch": epoch, "train_loss": 1.0 - acc + 0.1 * (1 - epoch),
                 "test_loss": 1.2 - acc, "test_accuracy": acc - 0.05 * (1 - epoch),
                 "test_top5": min(1.0, acc + 0.08), "seconds": 1.0 + 0.01 * i}
                for epoch in range(2)])
            if run.activation in ("dual_line", "dp_relu", "prelu"):
                rows = []
                names = {"dual_line": ["pos_slope", "neg_slope", "mean_shift"],
                         "dp_relu": ["pos_slope", "neg_slope"], "prelu": ["weight"]}[run.activation]
                for s in range(n_sites):
                    block = (s // 2 if s < 18 else None) if blocks else None
                    pos = (s % 2 + 1 if s < 18 else None) if blocks else None
                    for name in names:
                        base = {"pos_slope": 1.0, "neg_slope": 0.01, "mean_shift": -0.22,
                                "weight": 0.25}[name]
                        rows.append((s, f"site{s}", block, pos, name, 0,
                                     base + 0.01 * s + 0.001 * run.seed))
                result.params.append((-1, rows))
                if per_epoch:
                    result.params += [(e, [(*r[:6], r[6] * (0.9 + 0.05 * e)) for r in rows])
                                      for e in range(2)]
            if per_epoch:
                result.act_stats = [(e, s, 0.1 * s - 0.02 * e + 0.001 * i, 1.0, 0.3, 0.1 * e,
                                     [1, 2, 3]) for e in range(2) for s in range(n_sites)]
            if model == "wrn22":  # this task's rates come from the LR finder
                lrs = [1e-5 * 10 ** (k / 10) for k in range(40)]
                losses = [2.3 - 0.02 * k + 0.001 * i for k in range(40)]
                result.lr_find = LRFindRecord("valley", result.lr, lrs, losses)
            assert store.record(result)
    store.close()
    return path


@pytest.fixture(scope="module")
def db8(tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "r.db"
    return build_db(path, ACTS8, 5, tasks=(("fashion-mnist", "lenet5"), ("mnist", "wrn22")),
                    diverge={("tanh", 4)})


def test_summary_numbers_equal_a_recomputation(db8):
    frames = T.load_frames(db8)
    runs = frames.runs[(frames.runs["dataset"] == "fashion-mnist")]
    table = T.summary_table(runs).set_index("activation")
    for i, act in enumerate(ACTS8):
        seeds = [s for s in range(5) if (act, s) != ("tanh", 4)]
        accs = [accuracy(i, s, 0) for s in seeds]
        row = table.loc[act]
        assert row["n"] == len(seeds)
        assert row["mean_accuracy"] == pytest.approx(np.mean(accs))
        assert row["max_accuracy"] == pytest.approx(max(accs))
        assert row["accuracy_std"] == pytest.approx(np.std(accs, ddof=1))
        half = {4: 2.7764451, 3: 3.1824463}[len(seeds) - 1] * np.std(accs, ddof=1) / math.sqrt(
            len(seeds))
        assert row["accuracy_ci_low"] == pytest.approx(np.mean(accs) - half, rel=1e-6)
        assert row["mean_train_loss"] == pytest.approx(np.mean([1 - a for a in accs]))
        assert row["mean_epoch_seconds"] == pytest.approx(1.0 + 0.01 * i)
        assert row["lr_min"] == pytest.approx(1e-3 * (1 + i))
        assert row["lr_max"] == pytest.approx(1e-3 * (1 + i) * 5)
    assert table.loc["tanh", "diverged"] == 1
    # a diverged run keeps tanh out of the ranking: listed last, with no ranks
    assert not table.loc["tanh", "ranked"] and pd.isna(table.loc["tanh", "rank_mean_accuracy"])
    ranked = table[table["ranked"].astype(bool)]
    means = ranked["mean_accuracy"]
    assert list(table.index) == [*means.sort_values(ascending=False).index, "tanh"]
    assert table.loc[means.idxmax(), "rank_mean_accuracy"] == 1
    assert sorted(ranked["rank_mean_accuracy"]) == list(range(1, len(ranked) + 1))
    # lower is better for losses
    assert table.loc[table["mean_test_loss"].idxmin(), "rank_mean_test_loss"] == 1


def test_generated_summary_sentences(db8):
    frames = T.load_frames(db8)
    table = T.summary_table(frames.runs[frames.runs["dataset"] == "fashion-mnist"])
    lines = T.ranking_summary(table)
    rank = int(table.set_index("activation").loc["dual_line", "rank_mean_accuracy"])
    expected = "best" if rank == 1 else f"{rank}{ {2: 'nd', 3: 'rd'}.get(rank, 'th') } best"
    assert lines[0].startswith("dual_line: ")
    assert f"{expected} mean accuracy" in lines[0]
    assert any(line.startswith("dp_relu:") for line in lines)


def test_lr_table_matches(db8):
    frames = T.load_frames(db8)
    overview, per = T.lr_table(frames)
    assert list(overview["task"]) == ["fashion-mnist / lenet5", "mnist / wrn22", "Overall"]
    overall = overview.iloc[-1]
    assert overall["lr_min"] == pytest.approx(1e-3) and overall["lr_min_activation"] == "relu"
    assert overall["lr_max"] == pytest.approx(1e-3 * 8 * 5)
    assert overall["lr_max_activation"] == "silu"
    assert len(per) == 16
    # which rule chose the rates: the finder on one task, fixed rates on the other
    assert list(overview["chosen_by"]) == ["fixed", "LR finder (valley)",
                                           "LR finder (valley), fixed"]
    assert set(per[per["model"] == "wrn22"]["chosen_by"]) == {"LR finder (valley)"}


def test_finder_curves_and_timing_spread(db8):
    frames = T.load_frames(db8)
    curves = T.finder_curves(frames, "mnist", "wrn22")
    assert len(curves) == 8 and set(curves["seed"]) == {0}  # the lowest seed of each
    row = curves.set_index("activation").loc["gelu"]
    assert row["suggestion"] == pytest.approx(2e-3) and len(row["lrs"]) == 40
    assert row["losses"][1] == pytest.approx(2.3 - 0.02 + 0.001)
    assert T.finder_curves(frames, "fashion-mnist", "lenet5").empty
    # spread over epochs and seeds: built by hand
    runs = pd.DataFrame({"run_id": ["a", "b"], "activation": ["relu", "relu"],
                         "dataset": ["d", "d"], "model": ["m", "m"]})
    epochs = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "seconds": [1.0, 1.2, 0.9, 3.0]})
    spread = T.timing_spread(T.Frames(runs, epochs, pd.DataFrame(), pd.DataFrame()), "d", "m")
    row = spread.iloc[0]
    assert (row["epochs"], row["median_s"], row["min_s"], row["max_s"]) == (4, 1.1, 0.9, 3.0)
    assert row["spread"] == pytest.approx(2.1 / 1.1)


def test_paired_against_relu(db8):
    frames = T.load_frames(db8)
    runs = frames.runs[frames.runs["dataset"] == "fashion-mnist"]
    paired = T.paired_vs_baseline(runs).set_index("activation")
    diffs = [accuracy(1, s, 0) - accuracy(0, s, 0) for s in range(5)]
    assert paired.loc["gelu", "mean_diff"] == pytest.approx(np.mean(diffs))
    assert paired.loc["gelu", "pairs"] == 5
    assert paired.loc["gelu", "wilcoxon_p"] == pytest.approx(S.wilcoxon_signed_rank(diffs)[1])
    assert paired.loc["tanh", "pairs"] == 4
    assert paired.loc["tanh", "note"].startswith("tanh is not ranked")


def test_stats_against_known_values():
    assert S.t_quantile_975(4) == pytest.approx(2.776445, rel=1e-5)
    assert S.chi2_sf(3.841459, 1) == pytest.approx(0.05, abs=1e-6)
    # Demšar (2006), table 5: q_0.05 for the Nemenyi test
    for k, q in {2: 1.960, 3: 2.343, 4: 2.569, 5: 2.728, 10: 3.164}.items():
        assert S.studentized_range_q(k) == pytest.approx(q, abs=2e-3)
    # exact Wilcoxon: all 5 differences positive -> p = 2/32
    assert S.wilcoxon_signed_rank([0.1, 0.2, 0.3, 0.4, 0.5])[1] == pytest.approx(0.0625)
    w, p, n = S.wilcoxon_signed_rank([1, -2, 3, 4, 5, 6, 7, -8])
    assert (w, n) == (26.0, 8)
    # brute force over the 2^8 sign patterns
    import itertools
    sums = [sum(r for r, s in zip(range(1, 9), signs, strict=True) if s)
            for signs in itertools.product([0, 1], repeat=8)]
    assert p == pytest.approx(2 * sum(s <= 10 for s in sums) / 256)


@pytest.mark.parametrize("diffs", [
    [0.001, 0.001, 0.002, 0.0007, 0.0013],             # all positive, two tied: p = 2/32
    [0.0012, -0.0004, 0.0012, 0.0003, -0.0003, 0.002],  # ties across signs
    [0.5, 0.5, 0.5, -0.5, 0.25, 0.25, -0.25, 1.0, 2.0],
    [1, 1, 1, 1, 1, 1, -1, 2, 2, -2, 3, 3, 3, 0],       # and a zero, which is dropped
])
def test_wilcoxon_is_exact_with_ties_brute_force(diffs):
    """Tied differences (accuracies tie in steps of 1e-4) get the exact sign-flip
    p-value over their average ranks, not the normal approximation."""
    import itertools

    w, p, n = S.wilcoxon_signed_rank(diffs)
    d = np.array([x for x in diffs if x != 0], dtype=float)
    ranks = S._rank(np.abs(d))
    assert n == d.size and w == pytest.approx(ranks[d > 0].sum())
    total = ranks.sum()
    lo = min(w, total - w)
    sums = [float(sum(r for r, s in zip(ranks, signs, strict=True) if s))
            for signs in itertools.product([0, 1], repeat=n)]
    assert p == pytest.approx(min(1.0, 2 * sum(s <= lo + 1e-9 for s in sums) / 2**n))
    if n == 5 and (d > 0).all():
        assert p == pytest.approx(0.0625)  # the normal approximation gave 0.042


def test_wilcoxon_never_goes_below_the_smallest_exact_p_on_five_pairs():
    rng = np.random.default_rng(0)
    for _ in range(200):
        diffs = np.round(rng.normal(0.001, 0.001, 5), 4)  # accuracy steps of 1e-4
        if np.count_nonzero(diffs) == 5:
            assert S.wilcoxon_signed_rank(diffs.tolist())[1] >= 0.0625 - 1e-12


def test_friedman_and_cd_ranks_on_a_hand_computed_example():
    # 4 tasks x 3 methods; by hand: ranks per row (1 = best)
    scores = np.array([[0.90, 0.85, 0.80],   # 1 2 3
                       [0.88, 0.89, 0.70],   # 2 1 3
                       [0.91, 0.80, 0.80],   # 1 2.5 2.5
                       [0.70, 0.75, 0.72]])  # 3 1 2
    ranks = S.average_ranks(scores)
    np.testing.assert_allclose(ranks, [7 / 4, 6.5 / 4, 10.5 / 4])
    chi2, p = S.friedman(scores)
    expected = 12 * 4 / (3 * 4) * (sum(r * r for r in ranks) - 3 * 16 / 4)
    assert chi2 == pytest.approx(expected)
    assert 0 < p <= 1
    assert S.nemenyi_cd(3, 4) == pytest.approx(2.343 * math.sqrt(3 * 4 / 24), abs=2e-3)


@pytest.mark.slow
def test_report_writes_everything(db8, tmp_path):
    result = make_report(db8, tmp_path / "rep")
    names = {p.relative_to(tmp_path / "rep").as_posix() for p in result.files}
    for task in ("fashion-mnist_lenet5", "mnist_wrn22"):
        for f in ("heatmap.png", "ranking.csv", "ranking.md", "paired_vs_relu.csv",
                  "params_dual_line.png", "region_dual_line.png"):
            assert f"{task}/{f}" in names
    assert "mnist_wrn22/blocks_dual_line.png" in names
    assert "mnist_wrn22/lr_finder.png" in names  # the finder's curves, where it chose
    assert "fashion-mnist_lenet5/lr_finder.png" not in names
    assert "fashion-mnist_lenet5/blocks_dual_line.png" not in names  # no blocks in LeNet
    assert {"cd_diagram.png", "lr_table.csv", "lr_table.md", "index.html"} <= names
    for p in result.files:
        assert p.stat().st_size > 100, p
        if p.suffix == ".png":
            assert p.read_bytes()[:4] == b"\x89PNG"
    csv = pd.read_csv(tmp_path / "rep" / "fashion-mnist_lenet5" / "ranking.csv")
    assert len(csv) == 8
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    assert page.count('class="sortable"') >= 4
    assert "median training-step time" in page and "spread (max − min over median)" in page


def links_of(index) -> set:
    """The files ``index`` shows as images, each checked to exist and to lie in its folder."""
    import re
    from html import unescape
    from urllib.parse import unquote

    srcs = [unquote(unescape(m)) for m in re.findall(r'<img [^>]*src="([^"]*)"', index.read_text())]
    assert srcs and not any(s.startswith(("data:", "/", "http")) or ".." in s for s in srcs)
    files = {index.parent / s for s in srcs}
    missing = [f for f in files if not f.is_file()]
    assert not missing, missing
    return files


def test_report_on_a_subset_svg(tmp_path):
    db = build_db(tmp_path / "one.db", ["dual_line"], 1)
    result = make_report(db, tmp_path / "rep", "svg")
    assert (tmp_path / "rep" / "fashion-mnist_lenet5" / "heatmap.svg").stat().st_size > 1000
    page = result.index.read_text()
    assert "across tasks" in page.lower()
    assert links_of(result.index) == {p for p in result.files if p.suffix == ".svg"}
    # --embed-figures: the same figures inside the page, which then works alone
    assert main(["report", "--db", str(db), "--out", str(tmp_path / "alone"),
                 "--format", "svg", "--embed-figures"]) == 0
    alone = (tmp_path / "alone" / "index.html").read_text()
    assert 'src="data:image/svg+xml;base64,' in alone and 'src="fashion' not in alone
    assert alone.count("<img ") == page.count("<img ") > 0
    assert len(alone) > len(page) + 1000


def test_report_cli_errors(tmp_path, capsys):
    assert main(["report", "--db", str(tmp_path / "missing.db"), "--out", str(tmp_path)]) == 2
    assert "no results database" in capsys.readouterr().err
    empty = tmp_path / "empty.db"
    Store(empty).close()
    assert main(["report", "--db", str(empty), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds no runs" in err[0]
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"junk" * 500)
    assert main(["report", "--db", str(junk), "--out", str(tmp_path / "o")]) == 2


def _overlaps(texts) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose boxes overlap (a figure's labels must not)."""
    boxes = [(t.get_text(), t.get_window_extent()) for t in texts if t.get_text()]
    return [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:]
            if ba.overlaps(bb)]


@pytest.mark.slow
def test_report_every_activation_and_3_more_5_seeds_renders(tmp_path):
    from PIL import Image

    import learnact

    # the whole registry (53 today) plus 3 user-registered names: one row each
    acts = [*learnact.list_activations(), "custom_a", "custom_b", "custom_c"]
    n = len(acts)
    assert n >= 50
    db = build_db(tmp_path / "big.db", acts, 5, per_epoch=True, accuracy=realistic_accuracy,
                  chance=realistic_chance(acts))
    t = time.perf_counter()
    result = make_report(db, tmp_path / "rep")
    elapsed = time.perf_counter() - t
    task = tmp_path / "rep" / "fashion-mnist_lenet5"
    assert len(pd.read_csv(task / "ranking.csv")) == n
    # the page links its figures (embedded, it was 4.4 MB here and 11.7 MB on a real run)
    size = result.index.stat().st_size
    assert 10_000 < size < 1_500_000, size
    figures = {p for p in result.files if p.suffix == ".png"}
    assert links_of(result.index) == figures
    # figures grow with the rows at 110 dpi: the heatmap 0.26 in a row, the CD diagram
    # 0.24 in per label row (half the activations) plus its bars' band, 11 in wide above 30
    width, height = Image.open(task / "heatmap.png").size
    assert width == round(11.5 * 110) and abs(height - 110 * (0.26 * n + 1.9)) <= 1
    width, height = Image.open(task / "cd_diagram.png").size
    assert width == 11 * 110 and height >= 110 * (1.3 + 0.24 * math.ceil(n / 2))
    page = result.index.read_text()
    assert f"{5 * n} runs, {5 * n} done (11 at chance), 0 diverged" in page
    # per-activation figures sit in closed sections; dual_line's and dp_relu's start open
    assert page.count("<details open><summary>dual_line (") == 1
    assert page.count("<details><summary>relu (1 figure)</summary>") == 1
    assert "[cd_diagram.png](cd_diagram.png)" in (task / "claims.md").read_text()
    print(f"report of {n} activations x 5 seeds: {elapsed:.1f}s, index.html {size} bytes")


@pytest.mark.parametrize("k", [8, 53])
def test_cd_diagram_labels_do_not_overlap_and_the_figure_grows(k):
    from learnact.report import figures as F

    names = [f"activation_{i}" for i in range(k)]
    ranks = [float(1 + i) for i in range(k)]
    cd = S.nemenyi_cd(k, 5)
    fig = F.cd_diagram(names, ranks, cd, "title")
    fig.canvas.draw()
    ax = fig.axes[0]
    assert _overlaps(ax.texts) == []
    cliques = F.cd_cliques(ranks, cd)
    assert len(ax.collections) >= len(cliques)
    w, h = fig.get_size_inches()
    assert w == (9.0 if k <= 30 else 11.0)
    assert h >= 1.3 + 0.24 * math.ceil(k / 2)
    ticks = sorted(int(t.get_text()) for t in ax.texts if t.get_text().isdigit())
    assert ticks == (list(range(1, k + 1)) if k <= 20 else [1, *range(5, k + 1, 5)])


def test_cd_wider_than_the_axis_is_said_so():
    from learnact.report import figures as F

    fig = F.cd_diagram(["a", "b", "c"], [1.0, 2.0, 3.0], 5.5)
    assert any("CD = 5.50 (wider than the axis" in t.get_text() for t in fig.axes[0].texts)
    assert F.cd_cliques([1.0, 2.0, 3.0], 5.5) == [(0, 2)]
    assert F.cd_cliques([1.0, 1.5, 3.0, 3.2], 1.0) == [(0, 1), (2, 3)]


def test_heatmap_rows_and_finder_panels_at_53_activations():
    import learnact
    from learnact.report import figures as F

    acts = learnact.list_activations()
    table = pd.DataFrame({"activation": acts, "lr_min": 1e-3, "lr_max": 1e-2, "diverged": 0,
                          "rank_mean_accuracy": range(1, len(acts) + 1),
                          **{c: np.linspace(0.9, 0.8, len(acts)) for c in T.METRICS}})
    fig = F.heatmap(table)
    fig.canvas.draw()
    labels = fig.axes[0].get_yticklabels()
    assert [t.get_text() for t in labels[:2]] == [f"{acts[0]}  1", f"{acts[1]}  2"]
    assert _overlaps(labels) == []
    assert fig.get_size_inches()[1] == pytest.approx(0.26 * len(acts) + 1.9)
    curves = pd.DataFrame({"activation": acts, "lrs": [[1e-4, 1e-3, 1e-2]] * len(acts),
                           "losses": [[2.3, 2.0, 1.8]] * len(acts), "suggestion": 1e-3,
                           "method": "valley", "lr": 1e-3, "lr_path": "finder"})
    fig = F.lr_finder_curves(curves)
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == [f"{a} 0.001" for a in acts]
    assert fig.get_size_inches()[1] == pytest.approx(1.45 * math.ceil(len(acts) / 6) + 0.9)
    assert len(F.lr_finder_curves(curves.head(5)).axes) == 1  # a few share one panel
    # a curve far above the others (SLAF's loss starts near 50) gets its own y scale
    # instead of an empty panel; the others keep the shared one
    curves.at[3, "losses"] = [50.0, 40.0, 20.0]
    shown = [ax for ax in F.lr_finder_curves(curves).axes if ax.get_visible()]
    assert shown[3].get_title() == f"{acts[3]} 0.001 (own y scale)"
    low, high = shown[3].get_ylim()
    assert low < 20.0 and high >= 50.0
    others = {tuple(round(v, 6) for v in ax.get_ylim()) for k, ax in enumerate(shown) if k != 3}
    assert len(others) == 1 and max(next(iter(others))) < 20.0


def test_a_collapsed_activation_does_not_flatten_the_heatmap():
    """An activation at 0.10 (a collapse a database without the at-chance flag averages
    in) must not squeeze the other 52 rows into one colour: the scale spans the rest,
    and the outlier takes the scale's end colour in a red frame."""
    from learnact.report import figures as F

    n = 53
    acc = np.linspace(0.91, 0.88, n)
    acc[-1] = 0.10
    table = pd.DataFrame({"activation": [f"act_{i}" for i in range(n)], "lr_min": 1e-3,
                          "lr_max": 1e-2, "diverged": 0, "at_chance": 0,
                          "rank_mean_accuracy": range(1, n + 1),
                          **{c: np.linspace(0.1, 0.2, n) for c in T.METRICS},
                          "mean_accuracy": acc})
    fig = F.heatmap(table)
    ax = fig.axes[0]
    j = list(T.METRICS).index("mean_accuracy")
    colour = ax.images[0].get_array()[:, j]  # 0.08 + 0.84 x the position on the scale
    assert colour[:-1].max() == pytest.approx(0.92) and colour[-2] == pytest.approx(0.08)
    assert colour[-1] == pytest.approx(0.08)  # clipped to the worse end
    assert F.heatmap_scale(acc) == (pytest.approx(acc[-2]), pytest.approx(0.91))
    frames = [p for p in ax.patches if p.get_gid() == "clipped"]
    assert [(round(p.get_x() + p.get_width() / 2), round(p.get_y() + p.get_height() / 2))
            for p in frames] == [(j, n - 1)]
    assert ax.get_xticklabels()[j].get_text() == "mean accuracy\n0.8806 – 0.9100"
    assert "framed cells lie beyond it" in ax.get_xlabel()
    # no outlier: min-max as before, nothing framed
    fig = F.heatmap(table.assign(mean_accuracy=np.linspace(0.91, 0.88, n)))
    assert not [p for p in fig.axes[0].patches if p.get_gid() == "clipped"]
    assert "framed" not in fig.axes[0].get_xlabel()
    assert F.heatmap_scale([0.5] * 5 + [0.2]) == (0.2, 0.5)  # no quartile spread: min-max
    assert all(math.isnan(v) for v in F.heatmap_scale([math.nan]))


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_index_html_in_headless_chromium(db8, tmp_path):
    result = make_report(db8, tmp_path / "rep")
    url = result.index.resolve().as_uri() + "#selftest"
    proc = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", "--virtual-time-budget=5000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    dom = proc.stdout
    start = dom.index('<pre id="selftest">') + len('<pre id="selftest">')
    report = json.loads(dom[start:dom.index("</pre>", start)].replace("&quot;", '"'))
    ranking = report[0]  # the first table is the first task's ranking
    assert ranking["rows"] == len(ACTS8)
    ns = [float(v) for v in ranking["asc"]]
    assert ns == sorted(ns)
    assert [float(v) for v in ranking["desc"]] == sorted(ns, reverse=True)


def test_block_boxplots_show_every_position_of_a_bottleneck():
    from learnact.report import figures as F

    rows = [{"activation": "dual_line", "epoch": -1, "block": b, "position": pos,
             "param": "pos_slope", "value": 1.0 + 0.01 * b + 0.1 * pos + 0.001 * seed}
            for b in range(16) for pos in (1, 2, 3) for seed in range(3)]
    fig = F.param_boxplots(pd.DataFrame(rows), "dual_line")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["A-1 (first in block)", "A-2", "A-3"]
    ax = fig.axes[0]
    assert len(ax.get_xticks()) == 16 and len(ax.patches) == 16 * 3  # one box per position


def test_the_zero_gradient_share_axis_starts_at_zero_and_shows_a_constant_zero():
    from learnact.report import figures as F

    rows = [{"activation": a, "site_index": site, "epoch": e, "seed": seed,
             "mean": 0.1 * site, "frac_zero_grad": share}
            for a, share in (("dual_line", 0.0), ("relu", 0.5))
            for site in range(2) for e in range(3) for seed in range(2)]
    stats = pd.DataFrame(rows)
    flat = F.activation_means(stats, "dual_line").axes[1].get_ylim()
    assert flat == pytest.approx((0.0, 0.05))  # not -0.04 to 0.04 around a constant 0
    half = F.activation_means(stats, "relu").axes[1].get_ylim()
    assert half == pytest.approx((0.0, 0.55))
