"""Harness overhead: a LeNet5 epoch through learnact's training loop vs a bare loop.

Both variants train LeNet5 (ReLU) for one epoch over the same in-memory
Fashion-MNIST tensors (synthetic data of the same shape when the Debian
package is absent), with the same batch size and optimizer. The harness adds
the one-cycle schedule, per-50-step divergence checks, evaluation-free epoch
timing and a database write per epoch; evaluation is excluded from both.
Variants are interleaved; the script prints medians with min-max and the
ratio harness / bare. The goal is <= 1.10.

    python benchmarks/study_overhead.py [--reps 3] [--train-limit N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from learnact.data import TensorData, iterate_batches, load_dataset
from learnact.data.formats import DatasetError
from learnact.models import build_model
from learnact.study.store import Store
from learnact.train import TrainSettings, make_optimizer
from learnact.train import loop as train_loop


def get_data(limit: int | None) -> TensorData:
    try:
        return load_dataset("fashion-mnist", download=False, train_limit=limit)
    except DatasetError:
        n = limit or 60000
        g = torch.Generator().manual_seed(0)
        return TensorData("synthetic", torch.randn(n, 1, 28, 28, generator=g),
                          torch.randint(0, 10, (n,), generator=g),
                          torch.randn(1000, 1, 28, 28, generator=g),
                          torch.randint(0, 10, (1000,), generator=g), 10)


def bare_epoch(data: TensorData, batch: int) -> float:
    torch.manual_seed(0)
    model = build_model("lenet5", nn.ReLU, in_channels=1, num_classes=10, image_size=28)
    opt = make_optimizer(model, 1e-3, 0.01)
    gen = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for xb, yb in iterate_batches(data.x_train, data.y_train, batch, shuffle=True,
                                  generator=gen):
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def harness_epoch(data: TensorData, batch: int, db: Path) -> float:
    torch.manual_seed(0)
    model = build_model("lenet5", nn.ReLU, in_channels=1, num_classes=10, image_size=28)
    store = Store(db)
    seconds = []
    # evaluation is timed separately by fit (not part of EpochMetrics.seconds)
    orig = train_loop.evaluate
    train_loop.evaluate = lambda *a, **k: (0.0, 0.0, 0.0)
    try:
        train_loop.fit(model, data, TrainSettings(epochs=1, lr=1e-3, batch_size=batch), seed=0,
                       on_epoch=lambda m: (seconds.append(m.seconds),
                                           store.conn.execute("SELECT 1")))
    finally:
        train_loop.evaluate = orig
        store.close()
    return seconds[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    data = get_data(args.train_limit)
    bare, harness = [], []
    with tempfile.TemporaryDirectory() as tmp:
        bare_epoch(data, args.batch_size)  # warm-up
        for _ in range(args.reps):
            bare.append(bare_epoch(data, args.batch_size))
            harness.append(harness_epoch(data, args.batch_size, Path(tmp) / "r.db"))
    ratios = [h / b for h, b in zip(harness, bare, strict=True)]

    def fmt(xs):
        return f"median {statistics.median(xs):.3f} (min {min(xs):.3f}, max {max(xs):.3f})"

    print(f"data: {data.name}, {len(data.y_train)} images, batch {args.batch_size}, "
          f"{args.reps} interleaved reps")
    print(f"bare loop epoch s   {fmt(bare)}")
    print(f"harness epoch s     {fmt(harness)}")
    print(f"ratio harness/bare  {fmt(ratios)}  (goal <= 1.10)")


if __name__ == "__main__":
    main()
