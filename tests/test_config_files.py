"""Config files, every setting as a flag or --set, and --print-config round trips."""

from __future__ import annotations

import json

import pytest

from learnact.cli import main
from learnact.errors import ConfigError
from learnact.study import StudyConfig
from learnact.study.config import config_toml, load_config, load_preset
from learnact.study.worker import expand_runs

SHELL = "gelu,learnable(gelu),learnable(mish, mean_shift=false)"


@pytest.mark.slow
def test_a_toml_config_in_the_presets_layout_studies_the_recipe(tmp_path, npz, capsys):
    cfg = tmp_path / "recipe.toml"
    cfg.write_text(f'name = "recipe"\ndescription = "the paper\'s §4"\n[settings]\n'
                   f'dataset = "{npz}"\nactivations = ["gelu", "learnable(gelu)", '
                   f'"learnable(mish, mean_shift=false)"]\nepochs = 1\nlr = 0.003\n')
    loaded = load_config(cfg)
    assert (loaded.name, loaded.get("lr"), loaded.get("epochs")) == ("recipe", 0.003, 1)
    db = tmp_path / "r.db"
    assert main(["study", "--config", str(cfg), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "study recipe:" in out and "learnable(mish, mean_shift=false)" in out


def test_print_config_reads_back_to_the_same_runs(tmp_path, npz, capsys):
    args = ["study", "--dataset", npz, "--activations", SHELL, "--weight-decay", "0.05",
            "--mixup", "0.2", "--label-smoothing", "0.1", "--lr-method", "minimum3",
            "--set", "pct_start=0.3", "--set", "seeds=2", "--print-config"]
    assert main(args) == 0
    text = capsys.readouterr().out
    path = tmp_path / "resolved.toml"
    path.write_text(text)
    again = load_config(path)
    keys = ("weight_decay", "mixup_alpha", "label_smoothing", "lr_method", "pct_start")
    assert ([again.get(k) for k in keys], again.seeds) == ([0.05, 0.2, 0.1, "minimum3", 0.3], 2)
    first = StudyConfig.from_settings(dict(
        dataset=npz, activations=tuple(again.activations), weight_decay=0.05, mixup_alpha=0.2,
        label_smoothing=0.1, lr_method="minimum3", pct_start=0.3, seeds=2,
        epochs=again.get("epochs")))
    assert [r.run_id for r in expand_runs(again)] == [r.run_id for r in expand_runs(first)]
    assert config_toml(again) == text
    # --preset takes a path too, and the JSON form of the same file reads the same
    data = {"name": again.name, "settings": {"dataset": npz, "seeds": 2, "lr": "find"}}
    (tmp_path / "c.json").write_text(json.dumps(data))
    assert load_preset(str(tmp_path / "c.json")).seeds == 2


def test_the_built_in_presets_still_load_and_round_trip(tmp_path):
    for name in ("quick", "fashion-lenet5", "paper-wrn-cifar10"):
        cfg = load_preset(name)
        path = tmp_path / f"{name}.toml"
        path.write_text(config_toml(cfg))
        assert load_config(path) == cfg


@pytest.mark.parametrize(("text", "suffix", "message"), [
    ("[settings]\nepoch = 3\n", ".toml", "unknown setting 'epoch'; did you mean epochs?"),
    ("epochs = 3\n[settings]\nepochs = 4\n", ".toml", "given twice"),
    ("not toml at all = = 1", ".toml", "not valid TOML"),
    ("{", ".json", "not valid JSON"),
    ('{"settings": {"seeds": 0}}', ".json", "seeds must be a positive integer"),
])
def test_bad_config_files_are_one_line_errors(tmp_path, capsys, text, suffix, message):
    path = tmp_path / f"c{suffix}"
    path.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert message in str(exc.value)
    assert main(["study", "--config", str(path), "--db", str(tmp_path / "r.db")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "r.db").exists()


def test_set_names_the_closest_field_and_missing_files_are_errors(tmp_path, capsys):
    assert main(["study", "--set", "weight_decy=0.1", "--print-config"]) == 2
    assert "did you mean weight_decay" in capsys.readouterr().err
    assert main(["study", "--config", str(tmp_path / "none.toml"), "--print-config"]) == 2
    assert "cannot read config" in capsys.readouterr().err


def test_an_unknown_flag_names_the_subcommand_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["study", "--mixupp", "0.2"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == ("learnact study: error: unrecognized arguments: --mixupp 0.2 "
                   "(see learnact study --help)\n")
