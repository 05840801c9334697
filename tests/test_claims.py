"""The paper's claims as statistics (claims.md), and the report's new figures."""

from __future__ import annotations

import pandas as pd
import pytest

from learnact.report.claims import claims_markdown, task_claims


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


def test_claims_say_when_the_data_cannot_speak():
    runs = _runs({"relu": [0.9, 0.91]})
    claims = task_claims(runs, pd.DataFrame(), pd.DataFrame())
    assert [c.verdict for c in claims] == ["not enough data"] * 5
    assert "no repeating blocks" in _claim(claims, "§3.3, §8.2").statistic


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
    assert md.count("\n| §") == 5 and "**contradicted**" in md


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
