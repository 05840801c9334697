"""TensorBoard logging: every run's epochs as scalars, read back from the event files."""

from __future__ import annotations

import sys

import pytest

from learnact.errors import ConfigError
from learnact.study.types import Event, RunSpec

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from learnact.report.tensorboard import TensorBoardLogger, run_folder


def _run(activation: str, seed: int, run_id: str) -> RunSpec:
    from learnact.study import StudyConfig

    return RunSpec(run_id, "s", activation, "lenet5", "d.npz", seed, StudyConfig())


def _metrics(epoch: int, base: float) -> dict:
    return {"epoch": epoch, "train_loss": base - 0.1 * epoch, "test_loss": base + 0.05,
            "test_accuracy": 0.5 + 0.1 * epoch, "test_top5": 0.9, "seconds": 2.0 + epoch,
            "lr": 0.003}


def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_each_run_gets_a_folder_with_its_epochs_as_scalars(tmp_path):
    a, b = _run("dual_line", 0, "0123456789abcdef"), _run("relu", 3, "fedcba9876543210")
    with TensorBoardLogger(tmp_path / "tb") as tb:
        for run in (a, b):
            tb(Event("start", run))
        for epoch in range(3):  # interleaved, as events from two workers arrive
            for run, base in ((a, 2.0), (b, 1.0)):
                tb(Event("epoch", run, _metrics(epoch, base)))
        tb(Event("done", a, {"error": ""}))
        tb(Event("diverged", b, {"error": "loss is nan at epoch 3"}))
    assert sorted(p.relative_to(tmp_path / "tb").as_posix()
                  for p in (tmp_path / "tb").glob("*/*")) == ["dual_line/seed0-01234567",
                                                              "relu/seed3-fedcba98"]
    got = _scalars(tmp_path / "tb" / "dual_line" / "seed0-01234567")
    assert set(got) == {"loss/train", "loss/test", "accuracy/test", "accuracy/test_top5",
                        "time/epoch_seconds", "lr"}
    assert [s for s, _ in got["loss/train"]] == [1, 2, 3]  # steps: finished epochs
    assert [v for _, v in got["loss/train"]] == pytest.approx([2.0, 1.9, 1.8])
    assert [v for _, v in got["accuracy/test"]] == pytest.approx([0.5, 0.6, 0.7])
    assert [v for _, v in got["time/epoch_seconds"]] == pytest.approx([2.0, 3.0, 4.0])
    assert [v for _, v in got["lr"]] == pytest.approx([0.003] * 3)
    relu = _scalars(tmp_path / "tb" / "relu" / "seed3-fedcba98")
    assert [v for _, v in relu["loss/test"]] == pytest.approx([1.05] * 3)
    status = EventAccumulator(str(tmp_path / "tb" / "relu" / "seed3-fedcba98"))
    status.Reload()
    text = status.Tensors("status/text_summary")[0].tensor_proto.string_val[0].decode()
    assert text == "diverged: loss is nan at epoch 3"


def test_a_resumed_run_shows_one_curve(tmp_path):
    run = _run("gelu", 1, "aaaabbbbccccdddd")
    first = TensorBoardLogger(tmp_path)
    first(Event("start", run))
    for epoch in range(3):
        first(Event("epoch", run, _metrics(epoch, 5.0)))
    first.close()  # killed after epoch 3; its checkpoint holds epochs 1 and 2 only
    second = TensorBoardLogger(tmp_path)
    second(Event("resume", run, {"epoch": 1}))
    for epoch in (2, 3):
        second(Event("epoch", run, _metrics(epoch, 1.0)))
    second(Event("done", run, {"error": ""}))
    second.close()
    got = _scalars(tmp_path / "gelu" / "seed1-aaaabbbb")["loss/train"]
    assert [s for s, _ in got] == [1, 2, 3, 4]
    assert [v for _, v in got] == pytest.approx([5.0, 4.9, 0.8, 0.7])


@pytest.mark.slow
def test_a_study_with_two_workers_logs_every_run(npz, tmp_path):
    from learnact.study import Store, StudyConfig, run_study

    cfg = StudyConfig().with_overrides(dataset=npz, activations=("relu", "dual_line", "gelu"),
                                       epochs=2, lr=0.003)
    with TensorBoardLogger(tmp_path / "tb") as tb:
        counts = run_study(cfg, tmp_path / "r.db", jobs=2, emit=tb)
    assert counts["done"] == 3
    store = Store(tmp_path / "r.db")
    try:
        cols, rows = store.export("epochs")
    finally:
        store.close()
    epochs = [dict(zip(cols, row, strict=True)) for row in rows]
    assert len(epochs) == 6
    for e in epochs:
        folder = tmp_path / "tb" / e["activation"] / f"seed{e['seed']}-{e['run_id'][:8]}"
        got = _scalars(folder)
        step = e["epoch"] + 1
        assert dict(got["accuracy/test"])[step] == pytest.approx(e["test_accuracy"], rel=1e-6)
        assert dict(got["loss/train"])[step] == pytest.approx(e["train_loss"], rel=1e-6)
        assert dict(got["time/epoch_seconds"])[step] == pytest.approx(e["seconds"], rel=1e-6)
        assert dict(got["lr"])[step] == pytest.approx(0.003)
    assert len(list((tmp_path / "tb").glob("*/*"))) == 3


def test_folder_names_are_readable_and_stay_inside_the_log_folder():
    assert run_folder(_run("learnable(gelu, mean_shift=false)", 2, "0" * 16)) == \
        "learnable_gelu_mean_shift=false/seed2-00000000"
    assert run_folder(_run("../../etc", 0, "1" * 16)) == "etc/seed0-11111111"
    assert run_folder(_run("..", 0, "1" * 16)) == "activation/seed0-11111111"


def test_without_tensorboard_the_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    with pytest.raises(ConfigError, match=r"pip install 'learnact\[tensorboard\]'") as info:
        TensorBoardLogger(tmp_path)
    assert "\n" not in str(info.value)


def test_a_file_in_the_way_is_a_config_error(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(ConfigError, match="not a folder"):
        TensorBoardLogger(tmp_path / "f")


@pytest.mark.slow
def test_the_study_command_logs_with_tensorboard_flag(npz, tmp_path, capsys):
    from learnact.cli import main

    tb = tmp_path / "tb"
    assert main(["study", "--dataset", npz, "--activations", "relu,dp_relu", "--epochs", "2",
                 "--lr", "0.003", "--db", str(tmp_path / "r.db"), "--tensorboard",
                 str(tb)]) == 0
    folders = sorted(p.relative_to(tb).parts[0] for p in tb.glob("*/*"))
    assert folders == ["dp_relu", "relu"]
    for folder in tb.glob("*/*"):
        assert [step for step, _ in _scalars(folder)["accuracy/test"]] == [1, 2]


def test_the_study_command_without_tensorboard_touches_nothing(npz, tmp_path, capsys,
                                                               monkeypatch):
    from learnact.cli import main

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    db = tmp_path / "r.db"
    assert main(["study", "--dataset", npz, "--db", str(db), "--tensorboard",
                 str(tmp_path / "tb")]) == 2
    assert "learnact[tensorboard]" in capsys.readouterr().err
    assert not db.exists()
