"""Study entries with arguments: the recipe over any zoo entry, keyword variants."""

from __future__ import annotations

import sqlite3

import pytest
import torch

from learnact.activations.factory import create_activation
from learnact.cli import main
from learnact.errors import ConfigError
from learnact.study import StudyConfig
from learnact.study.entries import parse_entry, split_entries
from learnact.study.worker import expand_runs

SHELL = "gelu,learnable(gelu),learnable(mish, mean_shift=false)"


def test_commas_inside_parentheses_do_not_split():
    assert split_entries(SHELL) == ["gelu", "learnable(gelu)",
                                    "learnable(mish, mean_shift=false)"]
    with pytest.raises(ConfigError, match="never closed"):
        split_entries("relu,learnable(gelu")
    with pytest.raises(ConfigError, match="without its"):
        split_entries("relu),gelu")


@pytest.mark.parametrize(("spelling", "label"), [
    ("gelu", "gelu"),
    ("GELU", "gelu"),
    ("learnable(gelu)", "learnable(gelu)"),
    ("learnable( mish ,mean_shift = False )", "learnable(mish, mean_shift=false)"),
    ("learnable(prelu, pos_slope_init=2, init=0.1)",
     "learnable(prelu, init=0.1, pos_slope_init=2)"),
    ("prelu(init=0.1)", "prelu(init=0.1)"),
])
def test_every_spelling_has_one_canonical_label(spelling, label):
    assert parse_entry(spelling).label == label
    assert parse_entry(label).label == label


def test_entries_build_what_they_say():
    x = torch.linspace(-3, 3, 61)
    torch.manual_seed(0)
    a = parse_entry("learnable(mish, mean_shift=false)").build()(x)
    b = create_activation("mish", learnable=True, mean_shift=False)(x)
    assert torch.equal(a, b)
    # recipe: pos_slope * x for x >= 0, G(x) below, + mean shift -0.22
    y = parse_entry("learnable(gelu)").build()(x)
    ref = torch.where(x >= 0, x, torch.nn.functional.gelu(x)) - 0.22
    assert torch.allclose(y, ref, atol=1e-6)
    p = parse_entry("prelu(init=0.1)").build()
    assert torch.allclose(p(torch.tensor([-1.0])), torch.tensor([-0.1]))


@pytest.mark.parametrize(("spelling", "message"), [
    ("learnable(gelux)", "did you mean gelu"),
    ("gelux(alpha=1)", "unknown activation 'gelux'"),
    ("prelu(foo=1)", "'prelu(foo=1)'"),
    ("learnable(crelu)", "changes the channel count"),
    ("learnable()", "needs a zoo name"),
    ("learnable(mean_shift=false)", "needs a zoo name"),
    ("prelu(init)", "is not key=value"),
    ("prelu(init=1, init=2)", "given twice"),
    ("relu(x=[1)", "cannot read the value"),
])
def test_bad_entries_are_one_error_naming_the_entry(spelling, message):
    with pytest.raises(ConfigError) as exc:
        parse_entry(spelling)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_each_entry_is_its_own_run_and_plain_names_keep_their_ids():
    runs = expand_runs(StudyConfig.from_settings(dict(activations=tuple(split_entries(SHELL)))))
    assert [r.activation for r in runs] == ["gelu", "learnable(gelu)",
                                            "learnable(mish, mean_shift=false)"]
    assert len({r.run_id for r in runs}) == 3
    plain = expand_runs(StudyConfig.from_settings(dict(activations=("gelu",))))[0]
    assert plain.run_id == runs[0].run_id


@pytest.mark.slow
def test_a_study_of_the_recipe_from_the_shell_and_the_learnable_flag(npz, tmp_path, capsys):
    db = tmp_path / "r.db"
    assert main(["study", "--dataset", npz, "--activations", SHELL, "--epochs", "1",
                 "--lr", "0.003", "--db", str(db)]) == 0
    labels = sorted(r[0] for r in sqlite3.connect(db).execute("SELECT activation FROM runs"))
    assert labels == ["gelu", "learnable(gelu)", "learnable(mish, mean_shift=false)"]
    # learned recipe parameters are stored per site
    params = {r[0] for r in sqlite3.connect(db).execute(
        "SELECT p.param FROM act_params p JOIN runs r USING (run_id) "
        "WHERE r.activation = 'learnable(gelu)'")}
    assert params == {"pos_slope", "mean_shift"}
    pytest.importorskip("matplotlib")
    from learnact.report import make_report

    names = {p.name for p in make_report(db, tmp_path / "rep").files}
    assert {"region_learnable_gelu.png", "params_learnable_mish_mean_shift_false.png"} <= names
    capsys.readouterr()
    assert main(["study", "--dataset", npz, "--activations", "relu,prelu(init=0.1)",
                 "--learnable", "--epochs", "1", "--lr", "0.003", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "learnable(relu)" in out and "learnable(prelu, init=0.1)" in out
    assert main(["study", "--dataset", npz, "--activations", "learnable(gelux)",
                 "--db", str(tmp_path / "bad.db")]) == 2
    assert "did you mean gelu" in capsys.readouterr().err
    assert not (tmp_path / "bad.db").exists()


# ------------------------------------------------------------------ per channel


@pytest.mark.parametrize(("spelling", "label"), [
    ("per_channel(dual_line)", "per_channel(dual_line)"),
    ("per_channel( learnable(gelu, mean_shift=False) )",
     "per_channel(learnable(gelu, mean_shift=false))"),
    ("per_channel(prelu(init=0.1))", "per_channel(prelu(init=0.1))"),
])
def test_per_channel_entries_have_canonical_labels(spelling, label):
    assert parse_entry(spelling).label == label
    assert parse_entry(label).per_channel


@pytest.mark.parametrize(("spelling", "message"), [
    ("per_channel(relu)", "relu cannot have one parameter set per channel"),
    ("per_channel(gelu)", "gelu cannot have one parameter set per channel"),
    ("per_channel(per_channel(dp_relu))", "per_channel(...) is given twice"),
    ("per_channel(dual_lin)", "did you mean dual_line"),
])
def test_bad_per_channel_entries(spelling, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.")):
        parse_entry(spelling)


def test_per_channel_sites_get_one_value_per_channel_of_their_input():
    entry = parse_entry("per_channel(learnable(gelu))")
    x = torch.randn(4, 1, 28, 28)
    torch.manual_seed(0)
    model = entry.build_model("lenet5", data_sample=x[:2], in_channels=1, num_classes=10,
                              image_size=28)
    # LeNet5: conv 6, conv 16, fc 120, fc 84
    sizes = [model.get_submodule(s.path).pos_slope.numel() for s in model.sites]
    assert sizes == [6, 16, 120, 84]
    scalar_init = parse_entry("learnable(gelu)").build()
    for s in model.sites:  # every channel starts at the scalar entry's init
        m = model.get_submodule(s.path)
        for name in ("pos_slope", "mean_shift"):
            value = getattr(m, name)
            assert torch.equal(value, getattr(scalar_init, name).expand_as(value)), name
    # each channel learns on its own: channel 0 of the first site gets its own gradient
    model(x).sum().backward()
    grad = model.get_submodule(model.sites[0].path).pos_slope.grad
    assert grad.shape == (6,) and len(set(grad.tolist())) == 6
    # the rest of the model starts from the same weights as the scalar entry's
    torch.manual_seed(0)
    scalar = parse_entry("learnable(gelu)").build_model(
        "lenet5", data_sample=x[:2], in_channels=1, num_classes=10, image_size=28)
    for (name, a), (_, b) in zip(scalar.named_parameters(), model.named_parameters(),
                                 strict=False):
        if "pos_slope" not in name and "mean_shift" not in name:
            assert torch.equal(a, b), name


def test_a_per_channel_study_stores_a_value_per_channel(npz, tmp_path):
    db = tmp_path / "r.db"
    assert main(["study", "--dataset", npz, "--activations", "dp_relu,per_channel(dp_relu)",
                 "--epochs", "1", "--lr", "0.003", "--db", str(db)]) == 0
    con = sqlite3.connect(db)
    counts = dict(con.execute(
        "SELECT r.activation, COUNT(*) FROM act_params p JOIN runs r USING (run_id) "
        "WHERE p.epoch = -1 AND p.param = 'pos_slope' GROUP BY r.activation"))
    con.close()
    assert counts == {"dp_relu": 4, "per_channel(dp_relu)": 6 + 16 + 120 + 84}
