"""The learning-rate choice on data nobody tuned it for, and results that say how sure they are.

Issue 19: a finder curve that cannot choose a rate is detected and the run is
tuned instead; a run that blew up is ``diverged``; a run at chance is flagged
and never ranked; the ranking says when activations are indistinguishable.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3

import numpy as np
import pytest
import torch

from learnact.cli import main, ranking_table
from learnact.data.loader import TensorData, load_dataset
from learnact.study import StudyConfig, run_study
from learnact.study.store import SCHEMA_VERSION, Store
from learnact.study.summary import certainty, summarize
from learnact.study.worker import at_chance
from learnact.train.loop import Diverged, TrainSettings, fit
from learnact.train.lr_choice import choose_lr
from learnact.train.lr_find import ADAM_LR_CAP, check_curve, edge, minimum3
from learnact.train.lr_tune import TUNE_CANDIDATES, split_validation, tune_lr
from synthetic_data import class_images, write_image_folder

SWEEP = [1e-7 * (1e8 ** (i / 99)) for i in range(100)]


def _falling_curve() -> list[float]:
    """Still falling at the top of the sweep (what memorising one batch gives)."""
    return [2.3 - 2.2 * i / 99 for i in range(100)]


def _good_curve() -> list[float]:
    """Flat, a steep descent, a bottom at step 70, then a blow-up."""
    out = []
    for i in range(80):
        if i < 40:
            out.append(2.3)
        elif i <= 70:
            out.append(2.3 - 1.8 * (i - 40) / 30)
        else:
            out.append(0.5 * 1.3 ** (i - 70))
    return out


# ---------------------------------------------------------------- the curve's checks

def test_edge_rule_is_two_thirds_of_the_rate_where_the_curve_reaches_5pct_of_its_minimum():
    lrs = [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    losses = [2.0, 1.2, 1.0, 1.1, 3.0]
    # level 1.05 lies between 1.2 (at 1e-3) and 1.0 (at 1e-2): t = 0.15 / 0.2 = 0.75
    expected = 10 ** (-3 + 0.75) / 1.5
    assert edge(lrs, losses) == pytest.approx(expected, rel=1e-12)
    assert minimum3(lrs, losses) == pytest.approx(1e-2 / 3)


def test_a_curve_still_falling_at_the_end_of_the_sweep_is_flagged():
    check = check_curve(SWEEP, _falling_curve(), batches_per_epoch=500)
    assert "end" in check.problems
    assert "cap" in check.problems  # its pick is 10 / 1.5, far above what Adam tolerates
    assert any("end of the sweep" in r for r in check.reasons)


def test_a_curve_without_a_clear_descent_is_flagged():
    flat = [2.30 - 0.05 * math.sin(i / 7) for i in range(100)]
    assert "flat" in check_curve(SWEEP, flat, batches_per_epoch=500).problems


def test_a_sweep_over_a_handful_of_batches_is_flagged_and_a_good_curve_is_not():
    good = _good_curve()
    lrs = SWEEP[:len(good)]
    assert check_curve(lrs, good, batches_per_epoch=469).problems == []
    assert check_curve(lrs, good, batches_per_epoch=10).problems == []  # each seen 10 times
    check = check_curve(lrs, good, batches_per_epoch=7)
    assert check.problems == ["reuse"]
    assert "7 training batch(es)" in check.reasons[0]


def test_a_pick_that_noise_moves_is_flagged_unstable_and_a_median_pick_is_offered():
    # a plateau 5% above a late dip: the 5% level lies on the plateau, so noise decides
    # whether the curve reaches it at the plateau's start (step 50) or at the dip (step 71)
    lrs = SWEEP[:80]
    losses = ([2.3] * 30 + [2.3 - 1.25 * (i + 1) / 20 for i in range(20)] + [1.05] * 21
              + [1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    check = check_curve(lrs, losses, batches_per_epoch=469)
    assert "unstable" in check.problems
    assert check.pick_spread > 0.25
    assert math.isfinite(check.stable_pick) and check.stable_pick > 0


def test_the_check_draws_leave_global_random_streams_alone():
    torch.manual_seed(3)
    np.random.seed(3)
    check_curve(SWEEP[:80], _good_curve(), batches_per_epoch=7)
    a, b = torch.rand(1), np.random.rand()
    torch.manual_seed(3)
    np.random.seed(3)
    assert torch.rand(1) == a and np.random.rand() == b


# ---------------------------------------------------------------- tuning

def _tiny(n_train=160, n_test=80, classes=4, seed=0, size=28) -> TensorData:
    xtr, ytr = class_images(n_train, size, 1, classes, seed)
    xte, yte = class_images(n_test, size, 1, classes, seed + 1)
    to = lambda x: (torch.from_numpy(x).permute(0, 3, 1, 2).float() - 40) / 80  # noqa: E731
    return TensorData("tiny", to(xtr), torch.from_numpy(ytr), to(xte), torch.from_numpy(yte),
                      classes)


def test_the_validation_split_is_carved_from_training_stratified_and_disjoint():
    data = _tiny()
    split = split_validation(data, seed=0)
    assert len(split.y_train) + len(split.y_test) == len(data.y_train)
    counts = torch.bincount(data.y_train, minlength=4)
    val_counts = torch.bincount(split.y_test, minlength=4)
    assert torch.equal(val_counts, torch.round(0.2 * counts.float()).long())
    # every validation image is a training image, none of them left in the split's train set
    rows = {tuple(x.flatten()[:64].tolist()) for x in data.x_train}
    val_rows = [tuple(x.flatten()[:64].tolist()) for x in split.x_test]
    assert all(r in rows for r in val_rows)
    assert split_validation(data, seed=0).y_test.tolist() == split.y_test.tolist()


@pytest.mark.slow
def test_tuning_never_reads_the_test_split():
    from learnact.activations.factory import create_activation
    from learnact.models import build_model

    data = _tiny()
    settings = TrainSettings(epochs=2, batch_size=64)

    def build():
        return build_model("lenet5", lambda: create_activation("relu"), in_channels=1,
                           num_classes=4, image_size=28)

    first = tune_lr(build, data, settings, seed=0)
    planted = TensorData("tiny", data.x_train, data.y_train, torch.randn_like(data.x_test),
                         torch.randint(0, 4, data.y_test.shape), 4)
    second = tune_lr(build, planted, settings, seed=0)
    assert first.lr == second.lr and first.rows == second.rows
    assert first.lr in TUNE_CANDIDATES
    # rungs at 1 then 2 epochs: 5 candidates, then the better 3; one winner is kept
    assert [r["epochs"] for r in first.rows] == [1] * 5 + [2] * 3
    assert sum(r["kept"] for r in first.rows if r["rung"] == 1) == 1


@pytest.mark.slow
def test_choose_lr_tunes_when_the_data_is_a_handful_of_batches_and_says_why():
    from learnact.activations.factory import create_activation
    from learnact.models import build_model

    data = _tiny()

    def build():
        return build_model("lenet5", lambda: create_activation("relu"), in_channels=1,
                           num_classes=4, image_size=28)

    choice = choose_lr(build, data, TrainSettings(epochs=1, batch_size=128), seed=0)
    assert choice.path == "tune"
    assert "reuse" in choice.check.problems
    assert "successive halving" in choice.reason and "training batch" in choice.reason
    assert choice.lr in TUNE_CANDIDATES and choice.lr <= ADAM_LR_CAP
    fixed = choose_lr(build, data, TrainSettings(), seed=0, lr=0.004)
    assert (fixed.lr, fixed.path, fixed.finder) == (0.004, "fixed", None)
    with pytest.raises(ValueError, match="'find' or 'tune'"):
        choose_lr(build, data, TrainSettings(), seed=0, lr="guess")


# ---------------------------------------------------------------- runs that are not results

def test_a_run_ending_above_a_uniform_guess_loss_is_diverged_with_the_reason():
    data = _tiny()

    class Blown(torch.nn.Module):
        """Logits scaled by 1e4: confidently wrong on most images whatever it learns."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return 1e4 * torch.stack([x[:, 0, 0, 0] + self.w * 0] * 4, 1) * torch.tensor(
                [1.0, -1.0, 0.5, -0.5])

    seen = []
    with pytest.raises(Diverged) as exc:
        fit(Blown(), data, TrainSettings(epochs=2, lr=1e-3), seed=0, on_epoch=seen.append)
    assert "above 1.5 x ln 4" in exc.value.reason and "uniform guess" in exc.value.reason
    assert len(seen) == 2  # the epochs are still reported


@pytest.mark.parametrize(("acc", "n", "expected"), [(0.106, 10000, True), (0.108, 10000, False),
                                                    (0.70, 30, True), (0.75, 30, False)])
def test_at_chance_is_a_one_sided_binomial_test_against_the_commonest_class(acc, n, expected):
    classes = 10 if n == 10000 else 2
    y = torch.arange(n) % classes
    assert at_chance(acc, y, classes) is expected


def test_unbalanced_labels_set_chance_at_the_commonest_class():
    y = torch.tensor([0] * 90 + [1] * 10)
    assert at_chance(0.90, y, 2) and not at_chance(0.99, y, 2)


# ---------------------------------------------------------------- ranking certainty

def _rows(accs: dict[str, list[float]], dataset="d", status=None, flags=None):
    out = []
    for act, values in accs.items():
        for seed, a in enumerate(values):
            out.append({"dataset": dataset, "model": "lenet5", "activation": act, "seed": seed,
                        "status": (status or {}).get(act, "done"), "test_accuracy": a,
                        "flags": (flags or {}).get(act), "lr": 0.01, "lr_path": "finder"})
    return out


def test_a_paired_difference_containing_zero_makes_the_best_indistinguishable():
    rows = _rows({"a": [0.90, 0.80, 0.86], "b": [0.85, 0.84, 0.83], "c": [0.45, 0.55, 0.50]})
    lines = certainty(rows)[("d", "lenet5")]
    assert any("indistinguishable from b: the 95% interval of the paired difference by seed "
               "contains 0" in line for line in lines)
    assert any("seeds disagree more than the two best activations do" in line for line in lines)


def test_overlapping_means_are_not_a_tie_when_every_seed_agrees():
    # the seeds move both alike: the means' intervals overlap widely, but a beats b by
    # 0.004 to 0.006 in every seed, so the paired test separates them
    rows = _rows({"a": [0.905, 0.855, 0.885, 0.875], "b": [0.900, 0.850, 0.879, 0.870]})
    lines = certainty(rows)[("d", "lenet5")]
    assert lines[0] == ("a is ahead of every other ranked activation: every paired difference "
                        "by seed excludes 0")


def test_without_shared_seeds_the_means_intervals_decide():
    rows = _rows({"a": [0.90, 0.91, 0.905]})
    def moved(act: str, seed: int, base: float) -> list[dict]:
        return [{**r, "activation": act, "seed": r["seed"] + seed,
                 "test_accuracy": base + r["seed"] / 100} for r in rows]

    far, near = moved("b", 10, 0.80), moved("c", 20, 0.895)
    lines = certainty(rows + far)[("d", "lenet5")]
    assert lines == ["a is ahead of every other ranked activation: the 95% intervals of the "
                     "means of b (sharing fewer than 2 seeds with it) do not overlap its own"]
    paired = _rows({"a": [0.90, 0.91, 0.905], "p": [0.80, 0.81, 0.805]})
    lines = certainty(paired + far)[("d", "lenet5")]
    assert lines == ["a is ahead of every other ranked activation: every paired difference by "
                     "seed excludes 0, and the 95% intervals of the means of b (sharing fewer "
                     "than 2 seeds with it) do not overlap its own"]
    lines = certainty(rows + far + near)[("d", "lenet5")]
    assert lines[0] == ("a has the best mean accuracy, but on this data it is "
                        "indistinguishable from c: sharing fewer than 2 seeds with it, the 95% "
                        "intervals of the means overlap")
    tied = _rows({"a": [0.90, 0.91, 0.905], "t": [0.91, 0.90, 0.904]})
    lines = certainty(tied + near)[("d", "lenet5")]
    assert lines[0] == ("a has the best mean accuracy, but on this data it is "
                        "indistinguishable from c, t: for t, the 95% interval of the paired "
                        "difference by seed contains 0 (a paired t-test at 5%, one comparison "
                        "at a time); for c, sharing fewer than 2 seeds with it, the 95% "
                        "intervals of the means overlap")


def test_with_one_seed_nothing_tells_activations_apart():
    lines = certainty(_rows({"a": [0.90], "b": [0.85], "c": [0.50]}))[("d", "lenet5")]
    assert lines[0] == ("a has the best mean accuracy, but on this data it is "
                        "indistinguishable from b, c: with fewer than 2 seeds there is no "
                        "interval to tell them apart")


def test_clearly_separated_activations_are_called_so():
    rows = _rows({"a": [0.90, 0.91, 0.905, 0.902], "b": [0.80, 0.81, 0.805, 0.803]})
    lines = certainty(rows)[("d", "lenet5")]
    assert lines == ["a is ahead of every other ranked activation: every paired difference by "
                     "seed excludes 0"]


def test_diverged_and_at_chance_runs_are_counted_never_ranked():
    rows = _rows({"a": [0.80, 0.82], "b": [0.99, 0.98], "c": [0.95, 0.96]},
                 flags={"b": "chance"})
    rows.append({**rows[-1], "seed": 2, "status": "diverged", "test_accuracy": 0.97})
    table = {s["activation"]: s for s in summarize(rows)}
    assert table["a"]["ranked"] and not table["b"]["ranked"] and not table["c"]["ranked"]
    assert (table["b"]["at_chance"], table["b"]["n"]) == (2, 0)
    assert (table["c"]["diverged"], table["c"]["n"], table["c"]["mean_accuracy"]) == (
        1, 2, pytest.approx(0.955))
    text = ranking_table(rows)
    ranked = [line for line in text.splitlines() if line.strip().startswith("1 ")]
    assert len(ranked) == 1 and " a " in ranked[0]
    assert "2 at chance: not ranked" in text and "1 diverged: not ranked" in text
    assert "not ranked: c (1 diverged); b (2 at chance)" in text


def test_long_entry_labels_keep_the_table_aligned():
    label = "learnable(mish, mean_shift=false)"
    text = ranking_table(_rows({label: [0.90, 0.91], "gelu": [0.80, 0.81]}))
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("rank"))
    rows = [line for line in lines if line.strip()[:1] in ("1", "2")]
    column = header.index("mean acc")
    assert len(rows) == 2
    for row in rows:  # every number ends where the header's column ends
        assert row[column:column + 8].strip() in ("0.9050", "0.8050")


# ---------------------------------------------------------------- studies end to end

def _write(path, x_tr, y_tr, x_te, y_te):
    np.savez(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te)
    return path


@pytest.mark.slow
def test_a_tiny_easy_set_trains_at_the_default_and_results_say_how(tmp_path, capsys):
    xtr, ytr = class_images(200, 28, 1, 4, 0)
    xte, yte = class_images(100, 28, 1, 4, 1)
    data = _write(tmp_path / "easy.npz", xtr[..., 0], ytr, xte[..., 0], yte)
    db = tmp_path / "r.db"
    assert main(["study", "--dataset", str(data), "--activations", "relu,dual_line",
                 "--epochs", "3", "--db", str(db)]) == 0
    capsys.readouterr()
    assert main(["results", "--db", str(db), "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2
    for r in rows:
        assert r["status"] == "done" and float(r["test_accuracy"]) >= 0.95
        assert r["lr_path"] == "tune" and "training batch" in r["lr_reason"]
    assert main(["results", "--db", str(db)]) == 0
    assert "tune x1" in capsys.readouterr().out
    con = sqlite3.connect(db)
    env = con.execute("SELECT env FROM runs").fetchone()[0]
    assert '"threads": ' in env
    (tune,) = con.execute("SELECT tune FROM lr_choice LIMIT 1").fetchone()
    assert '"val_accuracy"' in tune and '"rung"' in tune


def test_random_labels_train_at_chance_and_are_flagged_not_ranked(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, size=(300, 28, 28)).astype(np.uint8)
    data = _write(tmp_path / "noise.npz", x[:200], rng.integers(0, 4, 200), x[200:],
                  rng.integers(0, 4, 100))
    db = tmp_path / "r.db"
    main(["study", "--dataset", str(data), "--activations", "relu", "--seeds", "2",
          "--lr", "0.01", "--db", str(db)])
    out = capsys.readouterr().out
    store = Store(db, readonly=True)
    rows = store.results()
    store.close()
    for r in rows:
        assert r["status"] == "done" and r["flags"] == "chance"
        assert r["test_accuracy"] < 0.25 + 2.33 * math.sqrt(0.25 * 0.75 / 100)
    assert "at chance: not ranked" in out
    assert not any(line.strip().startswith("1 ") for line in out.splitlines())


def test_a_tiny_image_folder_and_an_exploding_rate(tmp_path, capsys):
    folder = write_image_folder(tmp_path / "f", classes=2, train_per_class=12, val_per_class=6)
    db = tmp_path / "r.db"
    args = ["study", "--dataset", str(folder), "--image-size", "16", "--activations", "relu",
            "--epochs", "2", "--db", str(db)]
    assert main([*args]) == 0
    assert main([*args[:-2], "--lr", "5", "--activations", "gelu", "--db", str(db)]) == 0
    capsys.readouterr()
    store = Store(db, readonly=True)
    rows = {r["activation"]: r for r in store.results()}
    store.close()
    assert rows["relu"]["lr_path"] == "tune" and rows["relu"]["lr"] in TUNE_CANDIDATES
    assert rows["gelu"]["status"] == "diverged"
    assert "uniform guess" in rows["gelu"]["error"] or "not finite" in rows["gelu"]["error"]


def test_a_schema_1_database_keeps_its_run_ids_and_gains_the_new_columns(tmp_path, npz):
    cfg = StudyConfig.from_settings(dict(dataset=str(npz), activations=("relu",), lr=0.01))
    db = tmp_path / "r.db"
    run_study(cfg, db)
    con = sqlite3.connect(db)
    ids = [r[0] for r in con.execute("SELECT run_id FROM runs")]
    # make it a schema-1 file as the previous release wrote it
    con.execute("DROP TABLE lr_choice")
    con.execute("ALTER TABLE runs DROP COLUMN flags")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    reader = Store(db, readonly=True)  # a reader never migrates
    assert reader.results()[0]["flags"] is None and reader.results()[0]["lr_path"] is None
    reader.close()
    from learnact.report.tables import load_frames

    frames = load_frames(db)
    assert frames.lr_choice.empty and list(frames.runs["lr_path"]) == ["fixed"]
    assert run_study(cfg, db)["done"] == 1  # the same id: nothing retrained
    con = sqlite3.connect(db)
    assert [r[0] for r in con.execute("SELECT run_id FROM runs")] == ids
    assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == (
        str(SCHEMA_VERSION))
    assert "flags" in [r[1] for r in con.execute("PRAGMA table_info(runs)")]
    assert (tmp_path / "r.db.schema1.bak").is_file()


@pytest.mark.slow
def test_the_report_says_how_sure_it_is(tmp_path, slow_npz):
    pytest.importorskip("matplotlib")
    from learnact.report import make_report

    db = tmp_path / "r.db"
    run_study(StudyConfig.from_settings(dict(
        dataset=str(slow_npz), activations=("relu", "gelu", "dual_line"), seeds=2, lr=0.01)), db)
    con = sqlite3.connect(db)
    con.execute("UPDATE runs SET flags = 'chance' WHERE activation = 'gelu'")
    con.commit()
    con.close()
    make_report(db, tmp_path / "rep")
    md = next((tmp_path / "rep").glob("*/ranking.md")).read_text()
    assert "gelu (2 at chance)" in md
    gelu_row = next(line for line in md.splitlines() if line.startswith("| gelu"))
    assert "–" in gelu_row  # no ranks
    assert "ranked)" in md  # the best sentences count ranked activations only
    page = (tmp_path / "rep" / "index.html").read_text()
    assert "not ranked" in page


def test_load_dataset_fixture_sanity(npz):
    assert load_dataset(str(npz)).num_classes == 10


def test_tuning_without_two_images_of_any_class_falls_back_and_says_so():
    data = TensorData("x", torch.randn(3, 1, 28, 28), torch.tensor([0, 1, 2]),
                      torch.randn(2, 1, 28, 28), torch.tensor([0, 1]), 3,
                      torch.tensor([[28, 28]] * 3))
    assert len(split_validation(data, 0).y_test) == 0
    result = tune_lr(lambda: torch.nn.Flatten(), data, TrainSettings(), seed=0)
    assert (result.lr, result.rows, result.n_val) == (1e-3, [], 0)


# ---------------------------------------------------------------- tune_scope=study


def _tuned_rows(db) -> dict[tuple[str, int], tuple[str, float, str, str]]:
    con = sqlite3.connect(db)
    try:
        return {(a, s): (rid, lr, reason, tune) for rid, a, s, lr, reason, tune in con.execute(
            "SELECT r.run_id, r.activation, r.seed, r.lr, c.reason, c.tune "
            "FROM runs r JOIN lr_choice c USING (run_id) WHERE c.path = 'tune'")}
    finally:
        con.close()


def test_shared_tuning_tunes_once_per_activation_as_seed_0_alone_would(npz, tmp_path, monkeypatch,
                                                                      caplog):
    from learnact.study import worker

    calls = []
    real = worker.tune_lr

    def counted(*a, **k):
        calls.append(k["seed"])
        return real(*a, **k)

    from learnact.train import lr_choice

    monkeypatch.setattr(worker, "tune_lr", counted)  # the shared tuning's
    monkeypatch.setattr(lr_choice, "tune_lr", counted)  # a run's own
    base = ["study", "--dataset", npz, "--activations", "relu,gelu", "--epochs", "1",
            "--lr", "tune", "--batch-size", "64"]
    shared_db, own_db = tmp_path / "shared.db", tmp_path / "own.db"
    assert main([*base, "--seeds", "3", "--set", "tune_scope=study", "--db", str(shared_db)]) == 0
    assert calls == [0, 0]  # once per activation, on seed 0, for 6 runs
    shared = _tuned_rows(shared_db)
    assert len(shared) == 6
    for act in ("relu", "gelu"):
        _, lr0, reason, tune0 = shared[(act, 0)]
        assert "shared by every tuned seed (tune_scope=study)" in reason
        assert all(shared[(act, s)][1:] == (lr0, reason, tune0) for s in (1, 2))
    # seed 0 tunes exactly as it does on its own; the scope is part of the run's identity
    calls.clear()
    assert main([*base, "--seeds", "1", "--db", str(own_db)]) == 0
    assert calls == [0, 0]
    own = _tuned_rows(own_db)
    for act in ("relu", "gelu"):
        assert own[(act, 0)][1] == shared[(act, 0)][1]
        assert own[(act, 0)][3] == shared[(act, 0)][3]
        assert own[(act, 0)][0] != shared[(act, 0)][0]
    # a damaged file, or one another learnact version wrote, is computed again (the
    # same result here), with a warning; an intact one is reused
    files = sorted(worker.tuning_dir(worker.checkpoint_dir(shared_db)).glob("*.json"))
    assert len(files) == 2
    files[0].write_text("{not json")
    calls.clear()
    assert main([*base, "--seeds", "4", "--set", "tune_scope=study", "--db", str(shared_db)]) == 0
    assert calls == [0]  # only the damaged one; the other activation's file is reused
    assert "cannot be used" in caplog.text
    older = json.loads(files[1].read_text())
    older["made_by"]["learnact"] = "0.0.1"
    files[1].write_text(json.dumps(older))
    caplog.clear()
    calls.clear()
    assert main([*base, "--seeds", "5", "--set", "tune_scope=study", "--db", str(shared_db)]) == 0
    assert calls == [0] and "'learnact': '0.0.1'" in caplog.text
    again = _tuned_rows(shared_db)
    assert all(again[(a, 3)][1:] == shared[(a, 0)][1:] for a in ("relu", "gelu"))


def test_shared_tuning_orders_runs_by_seed_and_publishes_once(tmp_path):
    from learnact.study.worker import _publish_once, expand_runs

    cfg = StudyConfig.from_settings({"activations": ("relu", "gelu"), "seeds": 2})
    assert [(r.activation, r.seed) for r in expand_runs(cfg)] == [
        ("relu", 0), ("relu", 1), ("gelu", 0), ("gelu", 1)]
    shared = expand_runs(cfg.replace_settings({"tune_scope": "study"}))
    # --jobs workers take every activation's seed 0, which tunes for all seeds, first
    assert [(r.activation, r.seed) for r in shared] == [
        ("relu", 0), ("gelu", 0), ("relu", 1), ("gelu", 1)]
    assert not {r.run_id for r in shared} & {r.run_id for r in expand_runs(cfg)}
    # two seeds that tuned at once: the first file published is the one every seed uses
    path = tmp_path / "tuning" / "k.json"
    assert _publish_once(path, '{"lr": 0.01}') and _publish_once(path, '{"lr": 0.03}')
    assert path.read_text() == '{"lr": 0.01}'
    assert [p.name for p in path.parent.iterdir()] == ["k.json"]


def test_a_bad_tune_scope_is_a_one_line_error(npz, tmp_path, capsys):
    assert main(["study", "--dataset", npz, "--set", "tune_scope=everything",
                 "--db", str(tmp_path / "r.db")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "tune-scope must be one of run, study" in err[0], err
    assert not (tmp_path / "r.db").exists()
