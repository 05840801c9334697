"""Your own model: --model package.module:factory, with act or with swapped activations."""

from __future__ import annotations

import sqlite3

import pytest
import torch

from learnact.activations.learnable import DualLine
from learnact.cli import main
from learnact.errors import ConfigError
from learnact.models import build_model


def test_a_factory_that_uses_act_gets_one_module_per_site():
    model = build_model("user_models:small", DualLine, in_channels=1, num_classes=10,
                        image_size=28)
    assert [s.path for s in model.sites] == ["1", "5"]
    assert all(isinstance(model.get_submodule(s.path), DualLine) for s in model.sites)
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_a_model_that_ignores_act_has_its_activations_swapped():
    model = build_model("user_models:relu_net", DualLine, in_channels=1, num_classes=10,
                        image_size=28)
    assert not any(isinstance(m, torch.nn.ReLU) for m in model.modules())
    assert [s.path for s in model.sites] == ["1", "5"]
    gelu = build_model("user_models:gelu_net", DualLine, in_channels=1, num_classes=3,
                       image_size=8, swap="GELU")
    assert [s.path for s in gelu.sites] == ["2"]
    with pytest.raises(ConfigError, match="neither uses act"):
        build_model("user_models:gelu_net", DualLine, in_channels=1, num_classes=3,
                    image_size=8)


@pytest.mark.parametrize(("spec", "message"), [
    ("no_such_module_xyz:f", "cannot import no_such_module_xyz"),
    ("user_models:missing", "has no missing"),
    ("user_models:not_a_model", "returned int"),
    ("user_models", "model must be one of lenet4"),
])
def test_bad_model_specs_are_one_line_errors(spec, message, npz, tmp_path, capsys):
    db = tmp_path / "r.db"
    assert main(["study", "--dataset", npz, "--model", spec, "--lr", "0.01",
                 "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not db.exists()


def test_a_study_of_your_own_model_records_its_sites(npz, tmp_path):
    db = tmp_path / "r.db"
    assert main(["study", "--dataset", npz, "--model", "user_models:relu_net",
                 "--activations", "relu,dual_line", "--lr", "0.003", "--db", str(db)]) == 0
    con = sqlite3.connect(db)
    rows = con.execute("SELECT DISTINCT p.site_index, p.path FROM act_params p JOIN runs r "
                       "USING (run_id) WHERE r.activation = 'dual_line' ORDER BY 1").fetchall()
    assert rows == [(0, "1"), (1, "5")]
    assert {r[0] for r in con.execute("SELECT model FROM runs")} == {"user_models:relu_net"}
