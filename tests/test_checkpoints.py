"""Mid-run checkpoints: a killed run continues after its last finished epoch, exactly."""

from __future__ import annotations

import os
import sqlite3
import subprocess

import pytest
import torch

from kill_cases import kill_after_first_checkpoint, last_epoch, one_run_study
from learnact import activation_parameters
from learnact.activations.factory import create_activation
from learnact.data import load_dataset
from learnact.models import build_model
from learnact.train.loop import TrainSettings, fit


def _model(act: str):
    torch.manual_seed(0)
    return build_model("lenet5", lambda: create_activation(act), in_channels=1, num_classes=10,
                       image_size=28)


@pytest.mark.parametrize("act", ["dual_line", "probact"])
def test_fit_resumed_from_a_saved_checkpoint_equals_an_uninterrupted_fit(npz, tmp_path, act):
    data = load_dataset(npz)
    # mixup (numpy draws), flip+crop (generator draws), ProbAct (global torch draws)
    settings = TrainSettings(epochs=3, lr=3e-3, batch_size=64, mixup_alpha=0.4,
                             augment="flip_crop")
    whole = fit(_model(act), data, settings, seed=5)
    saved = []
    fit(_model(act), data, settings, seed=5, checkpoint=saved.append)
    assert [s["epoch"] for s in saved] == [0, 1]  # none after the last epoch
    path = tmp_path / "c.pt"
    torch.save(saved[0], path)
    state = torch.load(path, weights_only=True)  # plain tensors and values only
    torch.manual_seed(123)  # whatever the global stream holds now, the checkpoint restores it
    resumed = fit(_model(act), data, settings, seed=5, resume=state)
    assert [m.as_dict() | {"seconds": 0} for m in resumed] == [
        m.as_dict() | {"seconds": 0} for m in whole]
    assert [m.epoch for m in resumed] == [0, 1, 2]


@pytest.mark.slow
def test_kill_9_between_epochs_then_resume_gives_the_uninterrupted_result(slow_npz, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same thread count in every process
    whole = tmp_path / "whole.db"
    subprocess.run(one_run_study(whole, slow_npz), env=env, check=True, capture_output=True,
                   timeout=300)
    db = tmp_path / "killed.db"
    ckpts = kill_after_first_checkpoint(db, slow_npz, env)
    out = subprocess.run(one_run_study(db, slow_npz), env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "resume dual_line seed 0 from its checkpoint after epoch" in out.stdout
    assert last_epoch(db) == last_epoch(whole) and last_epoch(db)[3] == "done"
    assert not any(ckpts.glob("*.pt"))  # removed once the result is stored


def test_a_damaged_checkpoint_is_not_trusted_and_the_run_starts_over(npz, tmp_path, caplog):
    from learnact.study import StudyConfig
    from learnact.study.worker import checkpoint_dir, execute_run, expand_runs

    run = expand_runs(StudyConfig.from_settings(dict(dataset=npz, activations=("relu",), epochs=2,
                                  lr=0.003)))[0]
    folder = checkpoint_dir(tmp_path / "r.db")
    folder.mkdir()
    (folder / f"{run.run_id}.pt").write_bytes(b"not a checkpoint")
    events = []
    result = execute_run(run, load_dataset(npz), torch.device("cpu"), events.append,
                         checkpoints=folder)
    assert result.status in ("done", "diverged") and len(result.epochs) == 2
    assert not any(e.kind == "resume" for e in events)
    assert "unreadable" in caplog.text


def test_a_checkpoint_in_another_versions_parameter_layout_starts_the_run_over(
        npz, tmp_path, caplog):
    # learnact 0.2 gave Dual Line three parameters where 0.3 packs them into one: such a
    # checkpoint's model would load (the state dict is converted), its optimizer not
    from learnact.study import StudyConfig
    from learnact.study.worker import checkpoint_dir, execute_run, expand_runs

    run = expand_runs(StudyConfig.from_settings(dict(
        dataset=npz, activations=("dual_line",), epochs=2, lr=0.003)))[0]
    folder, data = checkpoint_dir(tmp_path / "r.db"), load_dataset(npz)
    execute_run(run, data, torch.device("cpu"), lambda e: None, checkpoints=folder)
    path = folder / f"{run.run_id}.pt"
    good = torch.load(path, weights_only=True)
    events = []  # the checkpoint as written: the run continues from it
    execute_run(run, data, torch.device("cpu"), events.append, checkpoints=folder)
    assert [e.kind for e in events if e.kind == "resume"] == ["resume"]

    old = torch.load(path, weights_only=True)
    model, groups = old["fit"]["model"], old["fit"]["optimizer"]["param_groups"]
    extra = max(i for g in groups for i in g["params"]) + 1
    sites = [f"{path}.weight" for path, _, _ in activation_parameters(_model("dual_line"))]
    assert sites and all(model[k].shape == (3,) for k in sites)
    for key in sites:
        pos, neg, shift = model.pop(key)
        prefix = key[: -len("weight")]
        model.update({prefix + "pos_slope": pos.reshape(1), prefix + "neg_slope": neg.reshape(1),
                      prefix + "mean_shift": shift.reshape(1)})
        groups[-1]["params"] += [extra, extra + 1]  # two more parameters per site
        extra += 2
    assert any(k.endswith("pos_slope") for k in model)
    torch.save(old, path)
    caplog.clear()
    events = []
    result = execute_run(run, data, torch.device("cpu"), events.append, checkpoints=folder)
    assert not any(e.kind == "resume" for e in events)
    assert "cannot continue this model" in caplog.text and "starting over" in caplog.text
    assert result.status in ("done", "diverged") and len(result.epochs) == 2
    assert good["fit"]["epoch"] == 0


def test_keep_models_keeps_the_final_weights_and_no_checkpoint(npz, tmp_path):
    from learnact.cli import main

    db = tmp_path / "r.db"
    assert main(["study", "--dataset", npz, "--activations", "dual_line", "--epochs", "2",
                 "--lr", "0.003", "--db", str(db), "--keep-models"]) == 0
    (run_id,) = sqlite3.connect(db).execute("SELECT run_id FROM runs").fetchone()
    saved = torch.load(tmp_path / "r.db.models" / f"{run_id}.pt", weights_only=True)
    assert (saved["activation"], saved["model"], saved["seed"]) == ("dual_line", "lenet5", 0)
    model = _model("dual_line")
    model.load_state_dict(saved["state_dict"])  # every key fits a fresh model
    assert not any((tmp_path / "r.db.checkpoints").glob("*.pt"))
    # not part of a run's identity: the same study without the flag finds it finished
    assert main(["study", "--dataset", npz, "--activations", "dual_line", "--epochs", "2",
                 "--lr", "0.003", "--db", str(db)]) == 0
    assert sqlite3.connect(db).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


@pytest.mark.parametrize("fault", [KeyboardInterrupt, OSError])
def test_a_failed_checkpoint_write_leaves_no_temporary_file(tmp_path, monkeypatch, fault, caplog):
    """Ctrl-C (or SIGTERM in a --jobs worker) or a full disk in the middle of a write:
    the half-written temporary file goes; a full disk costs only the checkpoint."""
    from learnact.study import worker

    def half_then_fault(state, f):
        with open(f, "wb") as out:
            out.write(b"half a checkpoint")
        raise fault("disk full" if fault is OSError else None)

    monkeypatch.setattr(worker.torch, "save", half_then_fault)
    target = tmp_path / "ck" / "run.pt"
    if fault is KeyboardInterrupt:
        with pytest.raises(KeyboardInterrupt):
            worker._save_checkpoint(target, {"run_id": "r"})
    else:
        worker._save_checkpoint(target, {"run_id": "r"})
        assert "could not write checkpoint" in caplog.text
    assert list((tmp_path / "ck").iterdir()) == []
