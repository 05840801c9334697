"""The command line: output, files written, and one-line errors with exit code 2."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import learnact
from learnact.cli import main, zoo_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_list_prints_every_activation(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in learnact.list_activations(shape_changing=None):
        assert re.search(rf"^{name}\b", out, re.M), name
    assert f"{len(learnact.list_activations(shape_changing=None))} activation(s)" in out
    assert "pos_slope, neg_slope, mean_shift" in out


def test_list_filters(capsys):
    assert main(["list", "*line", "--kind", "learnable"]) == 0
    out = capsys.readouterr().out
    assert "dual_line" in out and "relu6" not in out


def test_list_no_match_is_an_error(capsys):
    assert main(["list", "nothing*"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no activation matches" in err[0]


def test_readme_table_is_generated_from_the_registry():
    text = README.read_text()
    start = text.index("<!-- zoo-table:start -->") + len("<!-- zoo-table:start -->")
    end = text.index("<!-- zoo-table:end -->")
    table = zoo_table(learnact.list_activations(shape_changing=None), markdown=True)
    assert text[start:end].strip() == table, (
        "README table is stale: regenerate it with `learnact list --format markdown`"
    )


def test_plot_writes_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "sub" / "curves.png"
    assert main(["plot", "relu", "dual_line", "*elish", "--out", str(out)]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert "4 activation(s)" in capsys.readouterr().out


def test_the_recipe_is_drawn_over_fixed_activations_only():
    import math

    from learnact.report.curves import response_data

    gelu = response_data("gelu", x_range=(-1.0, 1.0), points=3)
    assert list(gelu) == ["gelu", "learnable (recipe + mean shift)",
                          "learnable (recipe, no shift)"]
    # at init the recipe is G(x) for x < 0 and slope 1 for x >= 0, shifted by -0.22
    xs, plain = gelu["gelu"]
    assert xs == [-1.0, 0.0, 1.0] and plain[1] == 0.0
    assert math.isclose(plain[2], 0.8413, rel_tol=1e-3)
    recipe = [plain[0], 0.0, 1.0]
    assert gelu["learnable (recipe, no shift)"][1] == pytest.approx(recipe, abs=1e-6)
    assert gelu["learnable (recipe + mean shift)"][1] == pytest.approx(
        [y - 0.22 for y in recipe], abs=1e-6)
    # Dual Line already learns its slopes and shift: no recipe over it
    dual = response_data("dual_line", x_range=(-1.0, 1.0), points=3)
    assert list(dual) == ["dual_line"]
    assert dual["dual_line"][1] == pytest.approx([-0.01 - 0.22, -0.22, 1.0 - 0.22], abs=1e-6)


@pytest.mark.slow
def test_plot_all(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "all.svg"
    assert main(["plot", "all", "--out", str(out), "--no-learnable"]) == 0
    assert out.read_text().count("<svg") >= 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["plot", "reluu", "--out", "x.png"], "unknown activation 'reluu'; closest: relu"),
        (["plot", "zz*", "--out", "x.png"], "no activation matches 'zz*'"),
        (["plot", "relu", "--out", "x.txt"], "--out must end in .png, .svg or .pdf"),
        (["plot", "relu", "--out", "x.png", "--xmin", "3", "--xmax", "1"], "--xmin"),
    ],
)
def test_plot_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
def test_console_script_runs():
    proc = subprocess.run([sys.executable, "-m", "learnact.cli", "list", "dual_line"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "dual_line" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "learnact.cli", "frobnicate"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_a_bug_inside_learnact_keeps_its_traceback_and_exit_1():
    # a ValueError that is not a LearnactError is a bug, not a user mistake
    import subprocess
    import sys

    code = ("import sys, learnact.cli as c\n"
            "def broken(*a, **k):\n"
            "    raise ValueError('internal bug')\n"
            "c.zoo_table = broken\n"
            "sys.exit(c.main(['list']))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "ValueError: internal bug" in out.stderr


def test_user_errors_are_learnact_errors_and_still_value_errors():
    import learnact
    from learnact.study.config import load_preset

    with pytest.raises(learnact.ConfigError, match="unknown preset") as info:
        load_preset("nope")
    assert isinstance(info.value, ValueError) and isinstance(info.value, learnact.LearnactError)
    with pytest.raises(learnact.ConfigError, match="unknown activation"):
        learnact.get_spec("relux")


@pytest.mark.slow
def test_lr_find_prints_every_suggestion_and_plots_the_curve(npz, tmp_path, capsys):
    out = tmp_path / "lr.png"
    assert main(["lr-find", "dual_line", "--dataset", npz, "--batch-size", "32",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for rule in ("minimum3", "valley", "steep", "minimum"):
        line = next(ln for ln in text.splitlines() if ln.strip().startswith(rule))
        assert 1e-7 <= float(line.split()[1]) <= 10
    assert "(the study's rule)" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_lr_find_starts_from_a_config_file_and_marks_its_rule(npz, tmp_path, capsys):
    cfg = tmp_path / "mine.toml"
    cfg.write_text(f'[settings]\ndataset = "{npz}"\nbatch_size = 32\nlr_method = "minimum3"\n')
    out = tmp_path / "lr.png"
    assert main(["lr-find", "relu", "--preset", str(cfg), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "batch 32" in text
    marked = [ln.split()[0] for ln in text.splitlines() if "(the study's rule)" in ln]
    assert marked == ["minimum3"]
    assert main(["lr-find", "relu", "--preset", "nope", "--out", str(out)]) == 2
    assert "unknown preset 'nope'" in capsys.readouterr().err


def test_lr_find_bad_activation_is_one_line(capsys, npz, tmp_path):
    assert main(["lr-find", "relux", "--dataset", npz, "--out", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown activation 'relux'" in err[0]
    assert not (tmp_path / "x.png").exists()
