"""Progress events reach the study's callback from every executor."""

from __future__ import annotations

from collections import Counter

from learnact.study import StudyConfig, run_study


def test_jobs_workers_send_every_event_to_the_callback(npz, tmp_path):
    events = []
    cfg = StudyConfig.from_settings(dict(
        dataset=npz, activations=("relu", "dual_line", "gelu"), epochs=2, lr=0.003))
    counts = run_study(cfg, tmp_path / "r.db", jobs=2, emit=events.append)
    assert counts["done"] == 3
    kinds = Counter(e.kind for e in events)
    assert kinds == {"start": 3, "epoch": 6, "done": 3}
    per_run = Counter((e.run.activation, e.kind) for e in events)
    assert all(per_run[(a, "epoch")] == 2 for a in ("relu", "dual_line", "gelu"))
    epochs = [e for e in events if e.kind == "epoch"]
    assert all(0 <= e.data["test_accuracy"] <= 1 and e.data["lr"] == 0.003 for e in epochs)
