"""What per-site activation statistics cost, as a share of a LeNet5 training epoch.

For each activation, this trains one epoch on Fashion-MNIST (or ``--dataset``)
and times :func:`learnact.train.act_stats.site_stats` on the study's probe
batch (256 test images) ``--reps`` times, interleaving activations, and prints
the median statistics time, the epoch time (the study's own measure) and their
ratio with min-max. The goal (issue 23): at most 2% of an epoch.

    python benchmarks/act_stats_cost.py [--dataset fashion-mnist] [--reps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--activations", default="relu,dual_line,gelu")
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--train-limit", type=int, default=None)
    args = ap.parse_args()

    import torch

    from learnact.activations.factory import create_activation
    from learnact.data import load_dataset
    from learnact.models import build_model
    from learnact.train import TrainSettings, fit
    from learnact.train.act_stats import probe_indices, site_stats

    data = load_dataset(args.dataset, train_limit=args.train_limit)
    probe = data.x_test[probe_indices(len(data.y_test), 0)]
    acts = args.activations.split(",")
    models, epoch_s = {}, {}
    for act in acts:
        torch.manual_seed(0)
        c, h, _ = data.image_shape
        models[act] = build_model("lenet5", lambda a=act: create_activation(a), in_channels=c,
                                  num_classes=data.num_classes, image_size=h)
        epoch_s[act] = fit(models[act], data, TrainSettings(epochs=1, lr=3e-3),
                           seed=0)[-1].seconds
    times: dict[str, list[float]] = {a: [] for a in acts}
    for _ in range(args.reps):  # interleaved
        for act in acts:
            t0 = time.perf_counter()
            site_stats(models[act], probe)
            times[act].append(time.perf_counter() - t0)
    print(f"torch threads {torch.get_num_threads()}; probe {len(probe)} images; "
          f"{args.reps} reps, interleaved")
    print(f"{'activation':<11} {'stats ms (min-max)':>22} {'epoch s':>8} {'share':>8}")
    for act in acts:
        med = statistics.median(times[act])
        print(f"{act:<11} {1e3 * med:>8.2f} ({1e3 * min(times[act]):.2f}-"
              f"{1e3 * max(times[act]):.2f}) {epoch_s[act]:>8.2f} "
              f"{100 * med / epoch_s[act]:>7.2f}%")


if __name__ == "__main__":
    main()
