"""docs/make_reproduction.py: docs/reproduction.md from a synthetic study with known times."""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("pandas")
pytest.importorskip("matplotlib")

from learnact.study import Store
from learnact.study.types import RunResult

SCRIPT = Path(__file__).resolve().parents[1] / "docs" / "make_reproduction.py"
ACTS = ["dual_line", "dp_relu", "relu", "gelu"]
SEEDS = 3
T0 = 1_790_000_000.0  # 2026-09-21 14:13:20 UTC


def _load():
    spec = importlib.util.spec_from_file_location("make_reproduction", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mr = _load()


def accuracy(act: int, seed: int) -> float:
    return 0.89 + 0.005 * (len(ACTS) - act) + 0.001 * seed


def interval(k: int) -> tuple[float, float]:
    """Run ``k``'s (start, finish): two runs at a time, 100 s each, the first 6 runs in
    one session and the rest in a second one an hour later."""
    start = T0 + 100 * (k // 2) + (3600 if k >= 6 else 0)
    return start, start + 100


def build(path: Path, unfinished: int = 0) -> Path:
    """4 activations x 3 seeds: gelu seed 2 diverges, relu seed 1 fails, relu seed 2 ends at
    chance; the last ``unfinished`` runs are left pending."""
    store = Store(path)
    store.set_meta({"last_study": {"name": "fashion-lenet5", "dataset": "fashion-mnist",
                                   "model": "lenet5", "seeds": SEEDS, "epochs": 2, "lr": "find",
                                   "lr_method": "edge", "batch_size": 128,
                                   "weight_decay": 0.01, "precision": "auto"}})
    ids = [f"{a}-{s}" for a in ACTS for s in range(SEEDS)]
    store.add_runs({"run_id": r, "study": "fashion-lenet5", "activation": r.rsplit("-", 1)[0],
                    "model": "lenet5", "dataset": "fashion-mnist", "seed": int(r[-1]),
                    "settings": {"lr": "find"}} for r in ids)
    env = {"learnact": "0.3", "torch": "2.13.0+cpu", "python": "3.11.7", "device": "cpu",
           "device_name": "x86_64", "threads": 1, "cpu_kernels": "avx512"}
    done = ids[:len(ids) - unfinished]
    for run_id in done:
        assert store.claim([run_id]) == run_id
        act, seed = ACTS.index(run_id.rsplit("-", 1)[0]), int(run_id[-1])
        acc = accuracy(act, seed)
        status, error, flags = "done", None, []
        if run_id == "gelu-2":
            status, error = "diverged", "loss is nan at epoch 2 step 17"
        elif run_id == "relu-1":
            status, error = "failed", "Traceback (most recent call last):\nRuntimeError: boom"
        elif run_id == "relu-2":
            acc, flags = 0.1, ["chance"]
        epochs = [] if status == "failed" else [
            {"epoch": e, "train_loss": 1.1 - acc, "test_loss": 1.2 - acc,
             "test_accuracy": acc - 0.02 * (1 - e), "test_top5": 0.99, "seconds": 10.0}
            for e in range(2)]
        result = RunResult(run_id, status, lr=1e-2 * (1 + act), env=env, error=error,
                           flags=flags, epochs=epochs)
        assert store.record(result)
    store.close()
    with sqlite3.connect(path) as con:
        for k, run_id in enumerate(done):
            con.execute("UPDATE runs SET started = ?, finished = ? WHERE run_id = ?",
                        (*interval(k), run_id))
    return path


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The page and its files for a finished study (the report made by the script)."""
    root = tmp_path_factory.mktemp("pub")
    db = build(root / "fashion-lenet5.db")
    out, csv_dir = root / "docs" / "reproduction.md", root / "docs" / "fashion-lenet5"
    code = mr.main([str(db), str(root / "report"), "--out", str(out), "--csv-dir",
                    str(csv_dir)])
    assert code == 0
    return root, out, csv_dir


def test_busy_time_and_peak_overlap_by_hand():
    assert mr.busy_time([(0, 10), (5, 15), (20, 30)]) == (25, 2)
    assert mr.busy_time([(20, 30), (0, 100)]) == (100, 1)  # one inside another
    assert mr.busy_time([]) == (0.0, 0)
    assert mr.peak_overlap([(0, 10), (5, 15), (6, 7)]) == 3
    assert mr.peak_overlap([(0, 10), (10, 20)]) == 1  # one ends as the next starts


def test_the_page_states_time_machine_and_runs(published):
    _, out, _ = published
    text = out.read_text()
    # 12 runs, 2 at a time, 100 s each: 300 s before the pause and 300 s after
    assert "- **Busy wall time: 10 min 00 s**, the union of the 12 finished runs'" in text
    assert "in 2 stretches" in text
    assert "First start 2026-09-21 14:13 UTC, last finish 2026-09-21 15:23 UTC." in text
    assert "learnact study --preset fashion-lenet5 --jobs 2 --db fashion-lenet5.db" in text
    assert ("The median run took 1 min 40 s (shortest 1 min 40 s, longest 1 min 40 s)"
            in text)
    assert "add up to 3 min 40 s" in text  # 11 runs with 2 epochs of 10 s
    assert ("  - 12 run(s): learnact `0.3`, torch `2.13.0+cpu`, python `3.11.7`, device "
            "`cpu`, device_name `x86_64`, threads `1`, cpu_kernels `avx512`") in text
    assert ("- 12 runs: 9 done, 1 done but at chance (left out of the means), 1 diverged, "
            "1 failed, 0 unfinished.") in text
    rows = [line for line in text.splitlines() if re.match(r"\| (gelu|relu) \| \d \|", line)]
    assert rows == ["| gelu | 2 | diverged |  | 1 | loss is nan at epoch 2 step 17 |",
                    "| relu | 1 | failed |  | 1 | RuntimeError: boom |",
                    "| relu | 2 | done | chance | 1 | test accuracy indistinguishable from "
                    "guessing |"]
    assert "Fashion-MNIST" in text and "**Epochs:** 2 per run." in text
    assert "Partial" not in text


def test_ranking_and_claims_come_from_the_report(published):
    root, out, csv_dir = published
    text = out.read_text()
    ranking = pd.read_csv(root / "report" / "fashion-mnist_lenet5" / "ranking.csv")
    assert list(ranking["activation"]) == ["dual_line", "dp_relu", "relu", "gelu"]
    top = ranking.iloc[0]
    assert (f"| 1 | dual_line | 3 | {top['mean_accuracy']:.4f} ± {top['accuracy_std']:.4f} | "
            f"[{top['accuracy_ci_low']:.4f}, {top['accuracy_ci_high']:.4f}] |") in text
    assert "| – | relu | 1 |" in text and "| 1 at chance |" in text
    assert "| – | gelu | 2 |" in text and "| 1 diverged |" in text
    assert "Friedman test over 3 seeds and 2 ranked activations" in text
    # relu ran ordinarily in seed 0 only: no pair has an interval; gelu is not ranked
    assert ("among the ranked activations: 0 have a 95% interval of the accuracy difference "
            "above 0 (none), 0 below 0 (none), the other 0 contain 0; dp_relu, dual_line "
            "share fewer than 2 ordinary seeds with relu, so they have no interval; the CSV "
            "also pairs gelu, not ranked, on the seeds where it ran ordinarily.") in text
    # the claims table: claims.md's rows, its figure links pointing at the copies
    claims = (root / "report" / "fashion-mnist_lenet5" / "claims.md").read_text()
    rows = [line for line in claims.splitlines() if line.startswith("| §")]
    assert len(rows) >= 5
    for row in rows:
        assert row.replace("](cd_diagram.png)", "](fashion-lenet5/cd_diagram.png)") in text
    # every link resolves beside the page, and the CSVs are the report's, byte for byte
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links and all((out.parent / link).is_file() for link in links)
    report = root / "report"
    for csv in [*report.glob("*.csv"), *(report / "fashion-mnist_lenet5").glob("*.csv")]:
        assert (csv_dir / csv.name).read_bytes() == csv.read_bytes()
    assert {p.suffix for p in csv_dir.iterdir() if p.is_file()} == {".csv", ".png"}
    assert sum(p.stat().st_size for p in csv_dir.glob("*.png")) < 1_500_000


def test_the_database_is_published_as_csv(published):
    _, out, csv_dir = published
    text = out.read_text()
    data = csv_dir / "data"
    runs = pd.read_csv(data / "runs.csv")
    assert len(runs) == 12 and set(runs["run_id"]) == {f"{a}-{s}" for a in ACTS
                                                       for s in range(SEEDS)}
    by_id = runs.set_index("run_id")
    assert by_id.loc["relu-1", "status"] == "failed" and by_id.loc["relu-1", "epochs"] == 0
    assert by_id.loc["relu-2", "flags"] == "chance"
    assert by_id.loc["dual_line-1", "test_accuracy"] == pytest.approx(accuracy(0, 1))
    assert by_id.loc["gelu-2", "error"] == "loss is nan at epoch 2 step 17"
    epochs = pd.read_csv(data / "epochs.csv")
    assert len(epochs) == 22  # 11 runs with 2 epochs; the failed one has none
    first = epochs[(epochs["run_id"] == "dp_relu-2") & (epochs["epoch"] == 0)].iloc[0]
    assert first["test_accuracy"] == pytest.approx(accuracy(1, 2) - 0.02)
    for name in ("params.csv", "act_stats.csv"):  # none recorded: the header alone
        assert len(pd.read_csv(data / name)) == 0
    assert "- [runs.csv](fashion-lenet5/data/runs.csv): 12 rows, one per run" in text
    assert "- [epochs.csv](fashion-lenet5/data/epochs.csv): 22 rows, one per run and epoch" \
        in text


def test_export_data_writes_parameters_and_statistics(tmp_path):
    store = Store(tmp_path / "one.db")
    store.add_runs([{"run_id": "r0", "study": "s", "activation": "dual_line", "model": "lenet5",
                     "dataset": "fashion-mnist", "seed": 0, "settings": {}}])
    assert store.claim(["r0"]) == "r0"
    hist = [0] * 15 + [7, 3, 0]
    store.record(RunResult(
        "r0", "done", lr=0.01, epochs=[{"epoch": 0, "train_loss": 0.5, "test_loss": 0.6,
                                        "test_accuracy": 0.8, "test_top5": 0.99,
                                        "seconds": 1.0}],
        params=[(-1, [(0, "features.1", None, None, "mean_shift", 0, -0.25),
                      (0, "features.1", None, None, "pos_slope", 0, 1.5)])],
        act_stats=[(0, 0, 0.125, 0.5, 0.25, 0.375, hist)]))
    store.close()
    written = mr.export_data(tmp_path / "one.db", tmp_path / "data")
    assert [(name, n) for name, n, _ in written] == [
        ("runs.csv", 1), ("epochs.csv", 1), ("params.csv", 2), ("act_stats.csv", 1)]
    params = pd.read_csv(tmp_path / "data" / "params.csv")
    assert dict(zip(params["param"], params["value"], strict=True)) == {
        "mean_shift": -0.25, "pos_slope": 1.5}
    assert set(params["epoch"]) == {-1} and set(params["path"]) == {"features.1"}
    stats = pd.read_csv(tmp_path / "data" / "act_stats.csv").iloc[0]
    assert (stats["mean"], stats["std"], stats["frac_neg"], stats["frac_zero_grad"]) == (
        0.125, 0.5, 0.25, 0.375)
    assert stats["hist"] == str(hist).replace("'", "")


def test_unfinished_study_is_refused_unless_allowed(tmp_path, capsys):
    db = build(tmp_path / "part.db", unfinished=3)
    out, csv_dir = tmp_path / "docs" / "reproduction.md", tmp_path / "docs" / "csv"
    args = [str(db), str(tmp_path / "report"), "--out", str(out), "--csv-dir", str(csv_dir)]
    assert mr.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "3 of 12 runs are unfinished" in err[0]
    assert not out.exists() and not (tmp_path / "report").exists()
    assert mr.main([*args, "--allow-unfinished"]) == 0
    text = out.read_text()
    assert "> **Partial:** 3 of 12 runs were unfinished" in text
    assert "3 unfinished." in text
    assert "| | *1 more with no finished run* |" in text  # gelu: none of its 3 ran


def test_notes_are_included_and_an_unreadable_file_is_refused(tmp_path, capsys):
    db = build(tmp_path / "s.db")
    out, csv_dir = tmp_path / "docs" / "reproduction.md", tmp_path / "docs" / "csv"
    args = [str(db), str(tmp_path / "report"), "--out", str(out), "--csv-dir", str(csv_dir)]
    assert mr.main([*args, "--notes", str(tmp_path / "missing.md")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot read --notes" in err[0] and "missing.md" in err[0]
    assert not out.exists()
    notes = tmp_path / "notes.md"
    notes.write_text("- The machine was shared: times are not speeds.\n")
    assert mr.main([*args, "--notes", str(notes)]) == 0
    text = out.read_text()
    head = "## Notes from the people who ran it\n\n- The machine was shared: times are not speeds."
    assert head in text
    # after the time and machine, before the runs
    assert text.index("## Time and machine") < text.index(head) < text.index("## Runs")


def test_headings_in_the_notes_nest_under_the_notes_section():
    text = "# Caveats\n\nplain\n\n```bash\n# a shell comment\n```\n#hashtag\n##### deep\n## Two"
    assert mr._nested(text).splitlines() == [
        "### Caveats", "", "plain", "", "```bash", "# a shell comment", "```", "#hashtag",
        "###### deep", "#### Two"]
