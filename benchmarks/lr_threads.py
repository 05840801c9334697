"""Does the chosen learning rate depend on the torch thread count?

A different number of threads sums floating-point numbers in another order, so
two finder sweeps on the same data drift apart by rounding. ``--jobs 1`` trains
with every core's threads, ``--jobs N`` workers and Ray runs with one (or
``--cpus-per-run``), so this is the difference between executors.

For each activation of the quick preset on Fashion-MNIST (LeNet5, seed 0), this
chooses the rate exactly as a study run does (``choose_lr``) in a process with 1
thread and in one with 2, and prints both rates, how far apart they are, and
the path that chose them, for the study's default rule (``edge``) and for the
previous default (``minimum3``) on the same curves. The goal (issue 19): the
default's rate moves by at most 25%.

    python benchmarks/lr_threads.py [--dataset fashion-mnist] [--train-limit N]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp


def choose(job: dict) -> dict:
    """Choose the rate of one activation with ``job['threads']`` torch threads."""
    import random

    import numpy as np
    import torch

    from learnact.activations.factory import create_activation
    from learnact.data import load_dataset
    from learnact.models import build_model
    from learnact.study import load_preset
    from learnact.train import TrainSettings
    from learnact.train.lr_choice import choose_lr
    from learnact.train.lr_find import minimum3

    torch.set_num_threads(job["threads"])
    cfg = load_preset("quick")
    data = load_dataset(job["dataset"], train_limit=job["train_limit"])
    c, h, _ = data.image_shape

    def seed_all(seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def build():
        return build_model(cfg.model.name, lambda: create_activation(job["activation"]),
                           in_channels=c, num_classes=data.num_classes, image_size=h)

    seed_all(0)
    model = build()
    settings = TrainSettings(epochs=cfg.training.epochs, batch_size=cfg.training.batch_size,
                             weight_decay=cfg.training.weight_decay)
    choice = choose_lr(build, data, settings, seed=0, model=model, seed_everything=seed_all)
    f = choice.finder
    return {**job, "lr": choice.lr, "path": choice.path,
            "minimum3": minimum3(f.lrs, f.losses) if f is not None else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--activations", default=None, help="default: the quick preset's")
    args = ap.parse_args()
    from learnact.study import load_preset

    acts = args.activations.split(",") if args.activations else list(
        load_preset("quick").activations)
    jobs = [{"dataset": args.dataset, "train_limit": args.train_limit, "activation": a,
             "threads": t} for a in acts for t in (1, 2)]
    ctx = mp.get_context("spawn")
    out = {}
    for job in jobs:  # one at a time: a 2-thread job gets both cores
        with ctx.Pool(1) as pool:
            r = pool.apply(choose, (job,))
        out[(r["activation"], r["threads"])] = r
    print(f"{'activation':<11} {'edge 1 thr':>10} {'edge 2 thr':>10} {'move':>6}  "
          f"{'minimum3 1':>10} {'minimum3 2':>10} {'move':>6}  path (1 / 2 threads)")
    worst = {"edge": 0.0, "minimum3": 0.0}
    for a in acts:
        one, two = out[(a, 1)], out[(a, 2)]
        move = abs(two["lr"] / one["lr"] - 1)
        move3 = abs(two["minimum3"] / one["minimum3"] - 1)
        worst["edge"], worst["minimum3"] = max(worst["edge"], move), max(worst["minimum3"], move3)
        print(f"{a:<11} {one['lr']:>10.4g} {two['lr']:>10.4g} {move:>6.0%}  "
              f"{one['minimum3']:>10.4g} {two['minimum3']:>10.4g} {move3:>6.0%}  "
              f"{one['path']} / {two['path']}")
    print(f"largest move: study default {worst['edge']:.0%}, minimum3 {worst['minimum3']:.0%}")


if __name__ == "__main__":
    main()
