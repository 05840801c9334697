"""Run ids are stable across releases, and derived from the configuration's fields.

``tests/fixtures/release-*.db`` hold the runs that releases 0.1.0, 0.2.0 and the
0.3.0 development line added for a fixed set of studies, written by their own
code (``tests/fixtures/make_release_dbs.py``). Expanding each stored study with
today's code must give every run the id its release gave it.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from learnact.errors import ConfigError
from learnact.settings import check_fields, key_of, positive_int, setting
from learnact.study.config import StudyConfig
from learnact.study.worker import expand_runs

FIXTURES = Path(__file__).parent / "fixtures"
RELEASES = sorted(FIXTURES.glob("release-*.db"))


def _stored(db: Path) -> dict[str, dict]:
    """study_config (as JSON) -> {(activation, seed): run_id}, from a release's database."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT run_id, activation, seed, settings FROM runs").fetchall()
    finally:
        con.close()
    out: dict[str, dict] = defaultdict(dict)
    for run_id, activation, seed, settings in rows:
        study = json.loads(settings)["study_config"]
        out[json.dumps(study, sort_keys=True)][(activation, seed)] = run_id
    return out


def test_every_release_has_a_fixture():
    assert [p.name for p in RELEASES] == ["release-0.1.0.db", "release-0.2.0.db",
                                          "release-0.3.0.dev0.db"]


@pytest.mark.parametrize("db", RELEASES, ids=lambda p: p.stem)
def test_runs_of_every_release_keep_their_ids(db):
    studies = _stored(db)
    assert len(studies) >= 4  # quick, fashion-lenet5, paper-wrn-cifar10, a custom one
    checked = 0
    for text, ids in studies.items():
        cfg = StudyConfig.from_settings(json.loads(text))
        now = {(r.activation, r.seed): r.run_id for r in expand_runs(cfg)}
        assert now == ids, f"{db.name}: {cfg.name} changed ids"
        checked += len(ids)
    assert checked >= 21


def test_a_new_setting_at_its_default_leaves_ids_alone_and_changes_them_when_set():
    base = StudyConfig(activations=("relu",))
    same = base.with_overrides(label_smoothing=0.0, image_size=None, swap="ReLU",
                               eval_batch_size=256, device="cpu", tags=("x",))
    assert [r.run_id for r in expand_runs(same)] == [r.run_id for r in expand_runs(base)]
    for key, value in {"label_smoothing": 0.1, "image_size": 32, "epochs": 2,
                       "lr_method": "minimum3", "lr": 0.01, "precision": "bf16"}.items():
        changed = base.with_overrides(**{key: value})
        assert expand_runs(changed)[0].run_id != expand_runs(base)[0].run_id, key


def test_integers_and_floats_are_one_setting():
    a = StudyConfig.from_settings({"weight_decay": 0, "lr": 1, "div_factor": 10})
    b = StudyConfig.from_settings({"weight_decay": 0.0, "lr": 1.0, "div_factor": 10.0})
    assert a.training.weight_decay == 0.0 and isinstance(a.training.weight_decay, float)
    assert a.lr_choice.lr == 1.0 and isinstance(a.lr_choice.lr, float)
    assert expand_runs(a)[0].run_id == expand_runs(b)[0].run_id


def test_every_key_is_declared_once_with_help_and_a_known_identity():
    table = StudyConfig.fields_by_key()
    assert len(table) == len(set(table)) >= 25
    for key, (_, f) in table.items():
        assert f.metadata["help"], key
        assert f.metadata["identity"] in ("always", "changed", None), key
    # what decides results is in a run's identity; what does not, is not
    assert table["epochs"][1].metadata["identity"] == "always"
    assert table["device"][1].metadata["identity"] is None
    assert table["keep_models"][1].metadata["identity"] is None


def test_sections_are_typed_and_frozen():
    cfg = StudyConfig.from_settings({"epochs": 3, "model": "lenet4", "lr_method": "minimum3",
                                     "train_limit": 100})
    assert (cfg.training.epochs, cfg.model.name, cfg.lr_choice.method,
            cfg.data.train_limit) == (3, "lenet4", "minimum3", 100)
    assert cfg.get("model") == "lenet4" and cfg.get("lr_method") == "minimum3"
    with pytest.raises(AttributeError):
        cfg.training.epochs = 4  # type: ignore[misc]


@pytest.mark.parametrize("settings, message", [
    ({"epochs": 0}, "epochs must be a positive integer, got 0"),
    ({"batch_size": True}, "batch-size must be a positive integer, got True"),
    ({"pct_start": 1.0}, "pct-start must be in (0, 1), got 1.0"),
    ({"label_smoothing": 1}, "label-smoothing must be in [0, 1), got 1.0"),
    ({"lr": -1}, "lr must be a positive finite number, 'find' or 'tune'"),
    ({"lr": "guess"}, "lr must be a positive finite number, 'find' or 'tune'"),
    ({"lr_method": "best"}, "lr-method must be one of edge, minimum3"),
    ({"image_size": 4}, "image-size must be an integer >= 8 (or none), got 4"),
    ({"model": "resnet"}, "model must be one of lenet4"),
    ({"device": "tpu"}, "device must be one of auto, cpu, cuda"),
    ({"epoch": 2}, "unknown setting 'epoch'; did you mean epochs"),
    ({"precision": "fp16", "device": "cpu"}, "fp16 needs CUDA"),
])
def test_bad_values_are_one_line_errors_naming_the_key(settings, message):
    with pytest.raises(ConfigError) as info:
        StudyConfig.from_settings(settings)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_knob_is_one_declaration():
    """What adding a knob takes: one field with its metadata; checks follow from it."""

    @dataclass(frozen=True)
    class Section:
        grad_clip: int = setting(0, help="clip gradients at this norm", check=positive_int,
                                 key="clip")

        def __post_init__(self):
            check_fields(self)

    (f,) = fields(Section)
    assert key_of(f) == "clip" and f.metadata["identity"] == "always"
    with pytest.raises(ConfigError, match="clip must be a positive integer, got 0"):
        Section()
    assert Section(3).grad_clip == 3
