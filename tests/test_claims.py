"""The paper's claims as statistics (claims.md), and the report's new figures."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from learnact.report import stats as S
from learnact.report import tables as T
from learnact.report.claims import claims_markdown, rank_claim, task_claims

EIGHT = ["dual_line", "relu", "gelu", "silu", "mish", "elu", "selu", "tanh"]


def _stats(dl: list[float], dp: list[float]) -> pd.DataFrame:
    rows = []
    for act, means in (("dual_line", dl), ("dp_relu", dp)):
        for k, m in enumerate(means):
            rows.append({"run_id": f"{act}{k // 4}", "activation": act, "seed": k // 4,
                         "site_index": k % 4, "epoch": 1, "mean": m})
            rows.append({"run_id": f"{act}{k // 4}", "activation": act, "seed": k // 4,
                         "site_index": k % 4, "epoch": 0, "mean": 99.0})  # not the last
    return pd.DataFrame(rows)


def _runs(acc: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"run_id": f"{a}{s}", "activation": a, "seed": s, "status": "done",
                          "test_accuracy": v, "flags": None, "lr": 0.01, "dataset": "d",
                          "model": "lenet5"} for a, vals in acc.items()
                         for s, v in enumerate(vals)])


def _claim(claims, section):
    return next(c for c in claims if c.section == section)


@pytest.mark.parametrize(("dl", "dp", "verdict"), [
    ([0.1, -0.1, 0.05, 0.2] * 2, [0.5, 0.6, 0.55, 0.7] * 2, "supported"),
    ([0.5, 0.6, 0.55, 0.7] * 2, [0.1, -0.1, 0.05, 0.2] * 2, "contradicted"),
    ([0.1, 0.6, 0.05, 0.7, 0.5, 0.1, 0.6, 0.1], [0.5, 0.1, 0.55, 0.2, 0.1, 0.6, 0.1, 0.5],
     "not enough data"),
])
def test_the_mean_shift_claim_pairs_absolute_means_by_seed_and_site(dl, dp, verdict):
    runs = _runs({"dual_line": [0.9, 0.9], "dp_relu": [0.9, 0.9]})
    claim = _claim(task_claims(runs, None, _stats(dl, dp)), "§3.4")
    assert claim.verdict == verdict
    assert "over 8 pairs" in claim.statistic


def test_the_mean_shift_claim_needs_the_seeds_to_agree_and_lists_each_site():
    # every site of a seed moves alike: 12 (seed, site) pairs look certain (CI about
    # [-0.15, -0.05]), but 3 seed averages of -0.2, -0.1 and 0.0 are not
    dl = [0.3] * 4 + [0.4] * 4 + [0.5] * 4
    claim = _claim(task_claims(_runs({"relu": [0.9]}), None, _stats(dl, [0.5] * 12)), "§3.4")
    assert claim.verdict == "not enough data"
    assert "by (seed, site): mean difference -0.1, 95% CI [-0.154" in claim.statistic
    assert "by seed, averaged over sites: mean difference -0.1, 95% CI [-0.348" \
        in claim.statistic
    assert ("by site, mean difference: site 0 -0.1 (2 of 3 seeds below 0), site 1 -0.1 "
            "(2 of 3 seeds below 0)") in claim.statistic
    # one site pulling the other way is shown even when the verdict stands
    dl = [0.1, 0.7, 0.1, 0.1] * 2
    claim = _claim(task_claims(_runs({"relu": [0.9]}), None, _stats(dl, [0.5] * 8)), "§3.4")
    assert ("by site, mean difference: site 0 -0.4 (2 of 2 seeds below 0), site 1 +0.2 "
            "(0 of 2 seeds below 0)") in claim.statistic


def test_claims_say_when_the_data_cannot_speak():
    runs = _runs({"relu": [0.9, 0.91]})
    claims = task_claims(runs, pd.DataFrame(), pd.DataFrame())
    assert [c.verdict for c in claims] == ["not enough data"] * 6
    assert "no activation with a positive slope" in _claim(claims, "§3.3, §8.2").statistic
    lenet = pd.DataFrame([{"activation": "dual_line", "seed": 0, "block": None,
                           "position": None, "param": "pos_slope", "value": 1.2,
                           "epoch": -1}])
    claim = _claim(task_claims(runs, lenet, None), "§3.3, §8.2")
    assert claim.verdict == "not enough data"
    assert claim.statistic.startswith("this model has no repeating blocks")


def test_dual_line_against_dp_relu_and_the_rank_claim():
    runs = _runs({"dual_line": [0.95, 0.96, 0.955, 0.951], "dp_relu": [0.90, 0.91, 0.905, 0.9],
                  "relu": [0.80, 0.81, 0.805, 0.803]})
    claims = task_claims(runs, None, None)
    assert _claim(claims, "§1, §7").verdict == "supported"
    assert _claim(claims, "§7.1").verdict == "supported"
    runs = _runs({"dual_line": [0.80, 0.81, 0.805, 0.80], "dp_relu": [0.90, 0.91, 0.905, 0.9]})
    claims = task_claims(runs, None, None)
    assert _claim(claims, "§1, §7").verdict == "contradicted"
    assert _claim(claims, "§7.1").verdict == "contradicted"
    md = claims_markdown("d / lenet5", claims)
    assert md.count("\n| §") == 6 and "**contradicted**" in md


def test_the_lr_range_claim_and_its_legend():
    runs = _runs({"dual_line": [0.9, 0.9], "dp_relu": [0.9, 0.9]})
    runs["lr"] = [0.002, 0.3, 0.0015, 0.2]
    claim = _claim(task_claims(runs, None, None), "§8.1")
    assert claim.verdict == "supported"
    assert claim.statistic.startswith("dual_line 0.002 to 0.3 over 2 runs; dp_relu 0.0015 to "
                                      "0.2 over 2 runs (all inside the paper's ranges: a weak "
                                      "check")
    runs["lr"] = [0.002, 0.3, 0.0005, 0.2]  # dp_relu below the paper's 1e-3
    claim = _claim(task_claims(runs, None, None), "§8.1")
    assert claim.verdict == "contradicted" and "(not all inside the paper's ranges" \
        in claim.statistic
    md = claims_markdown("d / lenet5", [claim])
    assert "For Table 1's ranges (§8.1), *supported* means that every rate chosen here" in md


def test_first_against_second_activation_in_blocks():
    rows = []
    for seed in range(3):
        for block in range(4):
            for pos, value in ((1, 1.3 + 0.01 * block), (2, 0.9 + 0.02 * seed)):
                rows.append({"activation": "dual_line", "seed": seed, "block": block,
                             "position": pos, "param": "pos_slope", "value": value,
                             "epoch": -1})
    claim = _claim(task_claims(_runs({"relu": [0.9]}), pd.DataFrame(rows), None),
                   "§3.3, §8.2")
    assert claim.verdict == "supported" and "12 pairs" in claim.statistic


@pytest.mark.slow
def test_the_report_writes_claims_curves_trajectories_and_outputs(npz, tmp_path):
    pytest.importorskip("matplotlib")
    from learnact.report import make_report
    from learnact.study import StudyConfig, run_study

    db = tmp_path / "r.db"
    run_study(StudyConfig().with_overrides(dataset=npz, activations=("relu", "dp_relu",
                                                                     "dual_line"),
                                           seeds=2, epochs=2, lr=0.003), db)
    result = make_report(db, tmp_path / "rep")
    names = {p.name for p in result.files}
    assert {"claims.md", "learning_curves.png", "trajectory_dual_line.png",
            "outputs_dual_line.png", "outputs_relu.png"} <= names
    md = next((tmp_path / "rep").glob("*/claims.md")).read_text()
    assert "§3.4" in md and "by (seed, site)" in md


def _ordered(order: list[str], seeds: int, noise: bool = False) -> pd.DataFrame:
    """Runs where ``order`` is the accuracy order (best first) in every seed; with
    ``noise`` the order rotates by seed, so no activation is better overall."""
    acc = {}
    for i, act in enumerate(order):
        acc[act] = [0.9 - 0.01 * ((i + s) % len(order) if noise else i) + 0.0001 * s
                    for s in range(seeds)]
    return _runs(acc)


def test_the_rank_claim_is_a_friedman_test_over_seeds_with_nemenyi():
    # dual_line best in all 20 seeds: ranks 1..8 exactly
    runs = _ordered(EIGHT, 20)
    claim = _claim(task_claims(runs, None, None, cd_figure="cd_diagram.png"), "§7, abstract")
    chi2 = 12 * 20 / (8 * 9) * (sum(r * r for r in range(1, 9)) - 8 * 81 / 4)
    assert chi2 == pytest.approx(140.0)
    cd = S.studentized_range_q(8) * math.sqrt(8 * 9 / (6 * 20))
    assert S.studentized_range_q(8) == pytest.approx(3.031, abs=2e-3)  # Demšar's table
    assert f"over 20 seeds (blocks) and 8 activations: χ²_F = {chi2:.3f} (df 7)" \
        in claim.statistic
    assert f"p = {S.chi2_sf(chi2, 7):.3g}" in claim.statistic
    assert f"critical difference (α = 0.05) = {cd:.3f} ranks" in claim.statistic
    # not significantly worse than rank 1: ranks below 1 + cd = 3.35, i.e. relu and gelu
    assert "average rank over seeds is 1.00 (place 1 of 8 by average rank; " in claim.statistic
    assert "Of the 7 others, 0 rank significantly better, 2 within the critical difference " \
        "and 5 significantly worse, so its place is between 1 and 3." in claim.statistic
    assert claim.verdict == "supported" and claim.figure == "cd_diagram.png"
    md = claims_markdown("d / lenet5", [claim])
    assert "[cd_diagram.png](cd_diagram.png) | **supported** |" in md


def test_the_rank_claim_is_contradicted_when_five_are_significantly_better():
    claim = rank_claim(T.seed_friedman(_ordered([*EIGHT[1:], "dual_line"], 20)), "seeds")
    # rank 8; better means a rank below 8 - 2.35: ranks 1-5
    assert "5 rank significantly better (elu, gelu, mish, relu, silu)" in claim.statistic
    assert "so its place is between 6 and 8" in claim.statistic
    assert claim.verdict == "contradicted"
    # with 6 seeds the critical difference (4.29) leaves only 3 significantly better
    claim = rank_claim(T.seed_friedman(_ordered([*EIGHT[1:], "dual_line"], 6)), "seeds")
    assert "3 rank significantly better" in claim.statistic
    assert claim.verdict == "not enough data"


def test_the_rank_claim_needs_the_friedman_test_to_reject():
    test = T.seed_friedman(_ordered(EIGHT, 8, noise=True))
    assert test["chi2"] == pytest.approx(0.0) and test["p"] == pytest.approx(1.0)
    claim = rank_claim(test, "seeds")
    assert claim.verdict == "not enough data"
    assert "finds no difference" in claim.statistic


def test_the_seed_friedman_leaves_out_unranked_and_incomplete_activations():
    runs = _ordered(EIGHT, 6)
    runs = runs[~((runs["activation"] == "silu") & (runs["seed"] == 2))]  # silu lacks seed 2
    runs.loc[(runs["activation"] == "tanh") & (runs["seed"] == 0), "status"] = "diverged"
    test = T.seed_friedman(runs)
    assert test["dropped"] == ["silu"]
    assert test["activations"] == sorted(set(EIGHT) - {"silu", "tanh"})
    assert test["n_seeds"] == 6
    ranks = dict(zip(test["activations"], test["avg_ranks"], strict=True))
    assert ranks == {"dual_line": 1.0, "relu": 2.0, "gelu": 3.0, "mish": 4.0, "elu": 5.0,
                     "selu": 6.0}
    claim = rank_claim(test, "seeds")
    assert "Left out (a seed without an ordinary run): silu." in claim.statistic


def test_the_rank_claim_across_tasks_and_table_one_per_activation(tmp_path):
    from test_report import build_db

    acts = ["relu", "gelu", "dual_line", "dp_relu", "tanh", "mish", "prelu", "silu"]
    db = build_db(tmp_path / "r.db", acts, 3,
                  tasks=(("fashion-mnist", "lenet5"), ("mnist", "lenet5"), ("mnist", "wrn22")))
    frames = T.load_frames(db)
    across = T.friedman_table(frames.runs)
    runs = frames.runs[(frames.runs["dataset"] == "mnist") & (frames.runs["model"] == "lenet5")]
    claims = task_claims(runs, None, None, across=across, across_figure="../cd_diagram.png")
    claim = _claim(claims, "§7, abstract (across tasks)")
    assert f"over 3 tasks (blocks) and 8 activations: χ²_F = {across['chi2']:.3f}" \
        in claim.statistic
    assert claim.figure == "../cd_diagram.png"
    # Table 1 per activation: build_db gives activation i the rates 1e-3 (1 + i) (1 + seed)
    table = T.lr_by_activation(frames).set_index("activation")
    assert list(table.index) == sorted(acts)
    for i, act in enumerate(acts):
        assert table.loc[act, "lr_min"] == pytest.approx(1e-3 * (1 + i))
        assert table.loc[act, "lr_max"] == pytest.approx(1e-3 * (1 + i) * 3)
        assert table.loc[act, "runs"] == 9 and table.loc[act, "tasks"] == 3
        assert table.loc[act, "mnist_wrn22 max"] == pytest.approx(1e-3 * (1 + i) * 3)
    assert [c for c in table.columns if c.endswith(" min")] == [
        "fashion-mnist_lenet5 min", "mnist_lenet5 min", "mnist_wrn22 min"]
