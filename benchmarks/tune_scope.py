"""What ``tune_scope=study`` saves: a tuned study's wall time, own-seed tuning vs shared.

Runs the same small study (``--lr tune``: every run is tuned) with
``tune_scope=run`` (each seed tunes on its own split) and ``tune_scope=study``
(seed 0 tunes once per activation, the other seeds reuse it), each into a fresh
database, ``--reps`` times, interleaving the two, in this process (one worker).
Prints each scope's median wall time with min-max and the median ratio. With S
seeds the tuning share of the time falls by about (S-1)/S.

    python benchmarks/tune_scope.py [--dataset fashion-mnist] [--train-limit 3000]
        [--activations relu,gelu] [--seeds 3] [--epochs 2] [--reps 2]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--train-limit", type=int, default=3000)
    ap.add_argument("--activations", default="relu,gelu")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()

    import torch

    from learnact.study import StudyConfig, run_study

    base = {"dataset": args.dataset, "train_limit": args.train_limit,
            "activations": tuple(args.activations.split(",")), "seeds": args.seeds,
            "epochs": args.epochs, "lr": "tune"}
    scopes = ("run", "study")
    times: dict[str, list[float]] = {s: [] for s in scopes}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for scope in scopes:  # interleaved
                cfg = StudyConfig.from_settings({**base, "tune_scope": scope})
                t0 = time.perf_counter()
                run_study(cfg, Path(tmp) / f"{scope}-{rep}.db")
                times[scope].append(time.perf_counter() - t0)
    print(f"{args.dataset} (train limit {args.train_limit}), {args.activations}, "
          f"{args.seeds} seeds x {args.epochs} epochs, --lr tune; torch threads "
          f"{torch.get_num_threads()}; {args.reps} reps, interleaved")
    for scope in scopes:
        t = times[scope]
        print(f"tune_scope={scope:<6} {statistics.median(t):7.1f} s ({min(t):.1f}-{max(t):.1f})")
    ratios = [s / r for s, r in zip(times["study"], times["run"], strict=True)]
    print(f"study / run: {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
