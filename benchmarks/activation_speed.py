"""Forward+backward cost of learnable activations as a ratio to ReLU, side by side.

Variants (per-tensor parameters unless noted), each timed as forward + backward
of ``y.sum()``-style gradients with a fixed grad tensor:

- relu: ``torch.relu`` (the baseline);
- copy: ``x.clone()`` forward + a copy backward, for an effective-bandwidth anchor;
- dual_line (default): ``learnact.DualLine()`` in eager mode, as a user gets it
  (the fused CPU kernel when it is available);
- dual_line (reference): the pure-PyTorch ``torch.where`` form, as peer libraries
  write it;
- dual_line per-channel: ``DualLine(C)`` on an (N, C, H, W) tensor;
- dp_relu;
- prelu: native ``nn.PReLU()``;
- dual_line compiled: ``torch.compile`` of the same module (compiled before timing).

The first call builds the C++ kernel once per machine (cached across processes).

Variants are interleaved over repeats; medians with min-max are printed.

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 \\
        python benchmarks/activation_speed.py [--numel 33554432] [--reps 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from torch import nn

import learnact
from learnact.kernels import kernel_mode


def timed(fn, x, grad):
    xx = x.detach().requires_grad_()
    start = time.perf_counter()
    y = fn(xx)
    y.backward(grad)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=32 * 1024 * 1024)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--channels", type=int, default=64)
    args = parser.parse_args()
    c = args.channels
    hw = max(1, args.numel // (8 * c))
    side = int(hw**0.5)
    shape = (8, c, side, max(1, hw // side))
    x = torch.randn(shape)
    grad = torch.randn(shape)
    dl, dlc, dp, pr = learnact.DualLine(), learnact.DualLine(c), learnact.DPReLU(), nn.PReLU()
    def where_form(t):
        with kernel_mode("reference"):
            return dl(t)

    gelu, lg = nn.GELU(), learnact.Learnable("gelu")

    def lg_reference(t):
        with kernel_mode("reference"):
            return lg(t)

    variants = {
        "relu": torch.relu,
        "copy": lambda t: t.clone(),
        "dual_line (default, eager)": dl,
        "dual_line (reference where form)": where_form,
        "dual_line per-channel (default)": dlc,
        "dp_relu (default)": dp,
        "nn.PReLU (native)": pr,
        "dual_line (torch.compile)": torch.compile(learnact.DualLine()),
        "gelu (G alone)": gelu,
        "Learnable(gelu) (default, eager)": lg,
        "Learnable(gelu) (reference)": lg_reference,
        "Learnable(gelu) (torch.compile)": torch.compile(learnact.Learnable("gelu")),
    }
    times = {k: [] for k in variants}
    for fn in variants.values():  # warm-up, including the one-time compile
        timed(fn, x, grad)
    for _ in range(args.reps):
        for name, fn in variants.items():
            times[name].append(timed(fn, x, grad))
    relu = times["relu"]
    copy_med = statistics.median(times["copy"])
    nbytes = x.numel() * x.element_size()
    print(f"shape {tuple(shape)} = {x.numel():,} float32 elements, {args.reps} interleaved reps, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    mmap_max = os.environ.get("MALLOC_MMAP_MAX_", "(unset)")
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_", "(unset)")
    print(f"allocator: MALLOC_MMAP_MAX_={mmap_max} MALLOC_TRIM_THRESHOLD_={trim}")
    print(f"{'variant':<36} {'median ms':>10} {'ratio to relu: median (min-max)':>34} "
          f"{'vs copy':>8}")
    for name, ts in times.items():
        ratios = [t / r for t, r in zip(ts, relu, strict=True)]
        print(f"{name:<36} {1e3 * statistics.median(ts):>10.2f} "
              f"{statistics.median(ratios):>14.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
              f"{'':>8} {statistics.median(ts) / copy_med:>8.2f}")
    print(f"copy fwd+bwd moves {4 * nbytes / 1e9:.2f} GB: "
          f"{4 * nbytes / copy_med / 1e9:.1f} GB/s effective")


if __name__ == "__main__":
    main()
