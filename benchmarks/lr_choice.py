"""How close does each LR-finder rule land to the best rate of a grid search?

For every activation of the ``quick`` preset, on Fashion-MNIST (the preset's
own settings: LeNet5, 1 epoch, batch 128) and on scikit-learn's ``digits``
(``--digits-epochs``, default 5, since one epoch there is 12 steps), this

1. trains at each rate of a 6-point log grid (``--grid``), seed 0;
2. chooses the rate exactly as a study run does (``choose_lr``: the finder,
   same seed and batches, its curve checked, tuned where it is useless; the
   ``study`` column), and trains at that rate and at the rate each suggestion
   rule picks on the finder's curve (rules that pick the same rate share one
   training);
3. prints, per activation, the grid's best test accuracy and each rule's gap
   to it in points, then each rule's mean and max gap over all activations and
   datasets, and the finder's cost relative to one training run.

The grid's best uses the test split: it is the oracle the rules are measured
against, never a way of choosing. Trainings run in ``--jobs`` processes of one
thread each. ``--out FILE.json`` keeps every number for later analysis.
``digits`` needs scikit-learn (``pip install scikit-learn``); Fashion-MNIST comes
from Debian's ``dataset-fashion-mnist`` or ``--data-dir``. On 2 cores one seed
takes about 20 minutes. Results of seeds 0 and 1: ``results_lr_choice.txt``.

    python benchmarks/lr_choice.py [--jobs 2] [--datasets fashion-mnist,digits]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import time

GRID = (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
# candidate rules measured beside the library's: the lowest loss's rate over k
CANDIDATES = {"min/3": 3.0, "min/5": 5.0}


def _setup(dataset: str, train_limit: int | None):
    import torch

    from learnact.data import load_dataset

    torch.set_num_threads(1)
    return load_dataset(dataset, train_limit=train_limit)


_DATA: dict = {}


def _data(dataset: str, train_limit: int | None):
    key = (dataset, train_limit)
    if key not in _DATA:
        _DATA[key] = _setup(dataset, train_limit)
    return _DATA[key]


def _model(name: str, activation: str, data, seed: int):
    import torch

    from learnact.activations.factory import create_activation
    from learnact.models import build_model

    torch.manual_seed(seed)
    c, h, _ = data.image_shape
    return build_model(name, lambda: create_activation(activation), in_channels=c,
                       num_classes=data.num_classes, image_size=h)


def train_job(job: dict) -> dict:
    """Train one (dataset, activation, lr); returns the test accuracy and seconds."""
    from learnact.train import TrainSettings, fit
    from learnact.train.loop import Diverged

    data = _data(job["dataset"], job["train_limit"])
    model = _model(job["model"], job["activation"], data, job["seed"])
    settings = TrainSettings(epochs=job["epochs"], lr=job["lr"], batch_size=job["batch_size"],
                             weight_decay=job["weight_decay"])
    start = time.perf_counter()
    try:
        acc = fit(model, data, settings, seed=job["seed"])[-1].test_accuracy
    except Diverged:
        acc = 0.0
    return {**job, "accuracy": acc, "seconds": time.perf_counter() - start}


def finder_job(job: dict) -> dict:
    """Choose the rate as a study run does (:func:`learnact.train.lr_choice.choose_lr`:
    the finder, its curve checked, tuned where the curve is useless); returns the
    finder's curve, every rule's pick on it, and the study's own choice as ``study``."""
    from learnact.train import TrainSettings
    from learnact.train.lr_choice import choose_lr
    from learnact.train.lr_find import SUGGESTIONS

    data = _data(job["dataset"], job["train_limit"])
    model = _model(job["model"], job["activation"], data, job["seed"])
    settings = TrainSettings(epochs=job["epochs"], batch_size=job["batch_size"],
                             weight_decay=job["weight_decay"])
    start = time.perf_counter()
    choice = choose_lr(lambda: _model(job["model"], job["activation"], data, job["seed"]),
                       data, settings, seed=job["seed"], model=model,
                       seed_everything=_seed_all)
    seconds = time.perf_counter() - start
    res = choice.finder
    picks = {name: float(rule(res.lrs, res.losses)) for name, rule in SUGGESTIONS.items()}
    lowest = res.lrs[min(range(len(res.losses)), key=res.losses.__getitem__)]
    picks.update({name: lowest / k for name, k in CANDIDATES.items() if name not in picks})
    picks["study"] = float(choice.lr)
    return {**job, "lrs": res.lrs, "losses": res.losses, "picks": picks, "seconds": seconds,
            "path": choice.path}


def _seed_all(seed: int) -> None:
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="fashion-mnist,digits")
    ap.add_argument("--activations", default=None, help="default: the quick preset's")
    ap.add_argument("--digits-epochs", type=int, default=5)
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write every number to this JSON file")
    args = ap.parse_args()

    from learnact.study import load_preset

    cfg = load_preset("quick")
    acts = args.activations.split(",") if args.activations else list(cfg.activations)
    base = {"model": cfg.model.name, "batch_size": cfg.training.batch_size,
            "weight_decay": cfg.training.weight_decay,
            "seed": args.seed, "train_limit": args.train_limit}
    tasks = [{**base, "dataset": ds, "activation": a,
              "epochs": args.digits_epochs if ds == "digits" else cfg.training.epochs}
             for ds in args.datasets.split(",") for a in acts]
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.jobs) as pool:
        finders = pool.map(finder_job, tasks)
        jobs = []
        for t, f in zip(tasks, finders, strict=True):
            lrs = sorted({*GRID, *(round(v, 12) for v in f["picks"].values())})
            jobs += [{**t, "lr": lr} for lr in lrs]
        trained = pool.map(train_job, jobs)
    acc = {(j["dataset"], j["activation"], j["lr"]): j for j in trained}
    rules = list(finders[0]["picks"])
    gaps: dict[str, list[float]] = {r: [] for r in rules}
    cost = []
    print(f"grid {', '.join(f'{g:g}' for g in GRID)}; rules {', '.join(rules)}; seed {args.seed}")
    for t, f in zip(tasks, finders, strict=True):
        grid = {g: acc[(t["dataset"], t["activation"], g)]["accuracy"] for g in GRID}
        best_lr = max(grid, key=grid.get)
        row = [f"{t['dataset']:<13} {t['activation']:<11} best {grid[best_lr]:.4f} @ {best_lr:g}"]
        for r in rules:
            lr = round(f["picks"][r], 12)
            gap = 100 * (grid[best_lr] - acc[(t["dataset"], t["activation"], lr)]["accuracy"])
            gaps[r].append(gap)
            row.append(f"{r} {lr:.2g}: {gap:+.2f}")
        runs = [acc[(t["dataset"], t["activation"], g)]["seconds"] for g in GRID]
        cost.append(f["seconds"] / statistics.median(runs))
        row.append(f"(study path: {f['path']})")
        print("  ".join(row))
    print("\ngap to the grid's best, in accuracy points (lower is better)")
    for r in rules:
        print(f"  {r:<8} mean {statistics.mean(gaps[r]):.2f}  max {max(gaps[r]):.2f}")
    paths = [f["path"] for f in finders]
    print("study paths: " + ", ".join(f"{p} x{paths.count(p)}" for p in sorted(set(paths))))
    print(f"choice cost (finder, plus tuning where taken) / one training run: "
          f"median {statistics.median(cost):.2f} "
          f"(min {min(cost):.2f}, max {max(cost):.2f})")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"finders": finders, "trained": trained, "gaps": gaps}, fh)


if __name__ == "__main__":
    main()
