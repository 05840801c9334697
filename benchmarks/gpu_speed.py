"""GPU: forward+backward of Dual Line as a ratio to ReLU, and as a share of copy bandwidth.

For each dtype (float32, bfloat16, float16) on one CUDA device, the variants
are timed with CUDA events, interleaved over repeats:

- relu: ``torch.relu`` forward + backward (the baseline);
- dual_line (default): ``learnact.DualLine()`` in eager mode, which runs the
  Triton kernel when ``triton`` is installed;
- dual_line per-channel: ``DualLine(C)`` on an (N, C, H, W) tensor;
- dual_line (reference where form): the pure-PyTorch form peers use;
- nn.PReLU (native);
- dual_line (torch.compile): the reference form compiled by inductor.

The forward reads x and writes y, and the backward reads x and grad and
writes grad_x: 5 tensor-sized transfers, as for ReLU. "GB/s" counts those
bytes; "of copy" divides by the bandwidth of ``dst.copy_(src)`` measured in
the same run (2 transfers). Medians with min-max over repeats are printed.

    python benchmarks/gpu_speed.py [--numel 268435456] [--reps 20]

Needs a CUDA device; without one it says so and exits with status 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch
from torch import nn

import learnact
from learnact.kernels import dispatch, kernel_mode

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def cuda_time(fn, inner: int = 5) -> float:
    """Seconds per call of ``fn``, from CUDA events around ``inner`` calls."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(inner):
        fn()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3 / inner


def fwd_bwd(module, x, grad):
    def step():
        xx = x.detach().requires_grad_()
        module(xx).backward(grad)
    return step


def where_form(module):
    def call(t):
        with kernel_mode("reference"):
            return module(t)
    return call


def bench_dtype(name: str, dtype: torch.dtype, numel: int, channels: int, reps: int) -> None:
    dev = torch.device("cuda")
    hw = max(1, numel // (8 * channels))
    side = int(hw**0.5)
    shape = (8, channels, side, max(1, hw // side))
    x = torch.randn(shape, device=dev, dtype=dtype)
    grad = torch.randn(shape, device=dev, dtype=dtype)
    dst = torch.empty_like(x)
    dl = learnact.DualLine().to(dev)
    dlc = learnact.DualLine(channels).to(dev)
    variants = {
        "relu": fwd_bwd(torch.relu, x, grad),
        "dual_line (default)": fwd_bwd(dl, x, grad),
        "dual_line per-channel (default)": fwd_bwd(dlc, x, grad),
        "dual_line (reference where form)": fwd_bwd(where_form(dl), x, grad),
        "nn.PReLU (native)": fwd_bwd(nn.PReLU().to(dev), x, grad),
        "dual_line (torch.compile)": fwd_bwd(torch.compile(learnact.DualLine().to(dev)), x, grad),
    }
    copy = lambda: dst.copy_(x)  # noqa: E731
    for fn in [copy, *variants.values()]:  # warm-up: Triton JIT, inductor compile
        fn()
        fn()
    torch.cuda.synchronize()
    times = {k: [] for k in variants}
    copies = []
    for _ in range(reps):
        copies.append(cuda_time(copy))
        for k, fn in variants.items():
            times[k].append(cuda_time(fn))
    nbytes = x.numel() * x.element_size()
    copy_bw = 2 * nbytes / statistics.median(copies)
    reason = dispatch.fused_unavailable_reason(x)
    path = "Triton" if reason is None else f"reference ({reason})"
    print(f"\n{name}: shape {tuple(shape)}, {x.numel():,} elements, {reps} interleaved reps; "
          f"default path: {path}")
    print(f"copy: {copy_bw / 1e9:.0f} GB/s")
    print(f"{'variant':<36} {'median ms':>10} {'ratio to relu: median (min-max)':>34} "
          f"{'GB/s':>7} {'of copy':>8}")
    for k, ts in times.items():
        ratios = [t / r for t, r in zip(ts, times["relu"], strict=True)]
        bw = 5 * nbytes / statistics.median(ts)
        print(f"{k:<36} {1e3 * statistics.median(ts):>10.3f} "
              f"{statistics.median(ratios):>14.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
              f"{'':>6} {bw / 1e9:>7.0f} {bw / copy_bw:>7.0%}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=256 * 1024 * 1024)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--dtypes", default=",".join(DTYPES),
                        help="comma-separated subset of " + ", ".join(DTYPES))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_speed: no CUDA device here; nothing to measure")
        return 0
    names = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    unknown = [d for d in names if d not in DTYPES]
    if unknown:
        parser.error(f"unknown dtype(s) {', '.join(unknown)}; choose from {', '.join(DTYPES)}")
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}")
    for name in names:
        bench_dtype(name, DTYPES[name], args.numel, args.channels, args.reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
