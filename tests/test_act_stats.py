"""Per-site activation statistics on a fixed probe batch (the paper's §3.4 needs them)."""

from __future__ import annotations

import json
import sqlite3

import pytest
import torch

from learnact.activations.factory import create_activation
from learnact.models import build_model
from learnact.train.act_stats import HIST_EDGES, probe_indices, site_stats


def _lenet(act: str):
    torch.manual_seed(0)
    return build_model("lenet5", lambda: create_activation(act), in_channels=1, num_classes=10,
                       image_size=28)


def _io(model, x):
    """Each site's input and output, captured independently of site_stats."""
    got = {}
    mods = dict(model.named_modules())
    hooks = [mods[s.path].register_forward_hook(
        lambda _m, i, o, k=s.index: got.__setitem__(k, (i[0].detach(), o.detach())))
        for s in model.sites]
    model.eval()
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return got


@pytest.mark.parametrize("act", ["relu", "dual_line"])
def test_statistics_equal_an_independent_computation(act):
    model = _lenet(act)
    model.train()
    x = torch.randn(64, 1, 28, 28)
    rows = site_stats(model, x)
    assert model.training  # mode restored
    assert all(p.grad is None for p in model.parameters())
    io = _io(model, x)
    assert [r[0] for r in rows] == [s.index for s in model.sites] == [0, 1, 2, 3]
    for index, mean, std, neg, zero, hist in rows:
        inp, out = io[index]
        assert mean == pytest.approx(out.mean().item(), rel=1e-5)
        assert std == pytest.approx(out.std().item(), rel=1e-5)
        assert neg == pytest.approx((out < 0).float().mean().item())
        if act == "relu":  # derivative 0 for x <= 0 (torch's ReLU has 0 at 0)
            assert neg == 0.0
            assert zero == pytest.approx((inp <= 0).float().mean().item())
        else:  # Dual Line's negative slope 0.01: no dead units
            assert zero == 0.0 and neg > 0
        assert len(hist) == len(HIST_EDGES) + 1 and sum(hist) == out.numel()
        assert hist[0] == int((out < -4).sum()) and hist[-1] == int((out > 4).sum())


def test_the_probe_batch_is_the_same_for_every_run_of_a_seed():
    assert torch.equal(probe_indices(1000, 3), probe_indices(1000, 3))
    assert not torch.equal(probe_indices(1000, 3), probe_indices(1000, 4))
    assert len(probe_indices(100, 0)) == 100 and len(probe_indices(10_000, 0)) == 256


def test_a_study_stores_statistics_per_epoch_and_site_and_can_switch_them_off(npz, tmp_path):
    from learnact.study import StudyConfig, run_study

    db = tmp_path / "r.db"
    run_study(StudyConfig.from_settings(dict(
        dataset=npz, activations=("relu", "dual_line"), epochs=2, lr=0.003)), db)
    con = sqlite3.connect(db)
    rows = con.execute("SELECT r.activation, s.epoch, s.site_index, s.frac_neg, s.hist FROM "
                       "act_stats s JOIN runs r USING (run_id) ORDER BY 1, 2, 3").fetchall()
    assert len(rows) == 2 * 2 * 4
    assert all(neg == 0.0 for act, _, _, neg, _ in rows if act == "relu")
    assert all(sum(json.loads(h)) > 0 for *_, h in rows)
    off = tmp_path / "off.db"
    run_study(StudyConfig.from_settings(dict(dataset=npz, activations=("relu",), epochs=1, lr=0.003,
                          activation_stats=False)), off)
    assert sqlite3.connect(off).execute("SELECT COUNT(*) FROM act_stats").fetchone()[0] == 0


def test_results_exports_epochs_parameters_and_statistics_as_csv(npz, tmp_path, capsys):
    import csv
    import io

    from learnact.cli import main

    db = tmp_path / "r.db"
    assert main(["study", "--dataset", npz, "--activations", "relu,dual_line", "--epochs", "2",
                 "--lr", "0.003", "--db", str(db)]) == 0
    capsys.readouterr()

    def export(*flags):
        assert main(["results", "--db", str(db), *flags]) == 0
        return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))

    epochs = export("--per-epoch")
    assert len(epochs) == 4 and [r["epoch"] for r in epochs[:2]] == ["0", "1"]
    assert epochs == export("--export", "epochs")
    con = sqlite3.connect(db)
    acc = con.execute("SELECT test_accuracy FROM epochs e JOIN runs r USING (run_id) WHERE "
                      "r.activation = 'dual_line' AND e.epoch = 1").fetchone()[0]
    assert float(next(r for r in epochs if r["activation"] == "dual_line"
                      and r["epoch"] == "1")["test_accuracy"]) == acc
    params = export("--export", "params")
    # dual_line: 3 scalars x 4 sites, after each of 2 epochs (cheap: snapshots on) and at the end
    assert sum(r["activation"] == "dual_line" for r in params) == 3 * 4 * 3
    assert {r["param"] for r in params} == {"pos_slope", "neg_slope", "mean_shift"}
    stats = export("--export", "stats")
    assert len(stats) == 2 * 2 * 4 and json.loads(stats[0]["hist"])
