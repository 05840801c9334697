"""LeNet5 training-step time with learnable activations, as a ratio to ReLU.

Each variant builds LeNet5 with its activation, then times optimizer steps
(forward, cross-entropy, backward, AdamW step) on the same batch of 128
28x28 images. Variants are interleaved; medians with min-max ratios to ReLU
are printed.

    python benchmarks/train_step.py [--steps 20] [--reps 5] [--batch 128] [--threads 1 --clock cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from _timing import add_timing_args, timing_clock
from torch import nn

import learnact
from learnact.kernels import kernel_mode
from learnact.models import build_model
from learnact.train import make_optimizer

clock = time.perf_counter  # set from --clock in main()


def make(factory):
    torch.manual_seed(0)
    model = build_model("lenet5", factory, in_channels=1, num_classes=10, image_size=28)
    return model, make_optimizer(model, 1e-3, 0.01)


def run_steps(model, opt, x, y, steps, mode):
    with kernel_mode(mode):
        start = clock()
        for _ in range(steps):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return (clock() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=128)
    add_timing_args(parser)
    args = parser.parse_args()
    global clock
    clock = timing_clock(parser, args)
    x = torch.randn(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))
    variants = {
        "relu": (make(nn.ReLU), "auto"),
        "dual_line (default)": (make(learnact.DualLine), "auto"),
        "dual_line (reference where form)": (make(learnact.DualLine), "reference"),
        "dp_relu (default)": (make(learnact.DPReLU), "auto"),
        "prelu (native)": (make(nn.PReLU), "auto"),
    }
    for (model, opt), mode in variants.values():
        run_steps(model, opt, x, y, 3, mode)  # warm-up (and the one-time kernel build)
    times = {k: [] for k in variants}
    for _ in range(args.reps):
        for name, ((model, opt), mode) in variants.items():
            times[name].append(run_steps(model, opt, x, y, args.steps, mode))
    print(f"LeNet5, batch {args.batch}, {args.steps} steps x {args.reps} interleaved reps, "
          f"threads {torch.get_num_threads()}, clock {clock.__name__}")
    print(f"{'variant':<34} {'ms/step':>8} {'ratio to relu: median (min-max)':>34}")
    for name, ts in times.items():
        ratios = [t / r for t, r in zip(ts, times["relu"], strict=True)]
        print(f"{name:<34} {1e3 * statistics.median(ts):>8.2f} "
              f"{statistics.median(ratios):>14.3f} ({min(ratios):.3f}-{max(ratios):.3f})")


if __name__ == "__main__":
    main()
