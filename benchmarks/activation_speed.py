"""Forward+backward cost of learnable activations as a ratio to ReLU, side by side.

Variants (per-tensor parameters unless noted), each timed as forward + backward
with a fixed grad tensor:

- relu: ``torch.relu`` (the baseline); copy: ``x.clone()`` (a bandwidth anchor);
- for each CPU kernel variant ``[isa]`` this CPU can run (``baseline``,
  ``avx2``, ``avx512``; forced with ``$LEARNACT_CPU_ISA`` per call, so all
  variants are measured in the same run):
  ``learnact.DualLine()``, ``DualLine(C)`` per-channel, ``DPReLU()`` and
  ``Learnable(G)`` for each ``G`` of ``--bases``, in eager mode as a user gets them;
- the pure-PyTorch ``torch.where`` forms (reference mode), as peer libraries
  write them; native ``nn.PReLU``;
- each ``G`` alone, and ``torch.compile`` of DualLine and of each ``Learnable(G)``.

Every kernel variant is built before timing (``learnact kernels build --isa all``
does the same ahead of time). Variants are interleaved over repeats; medians
with min-max are printed.

``--small`` prints the per-call table for the small tensors of the paper's
LeNets instead (the default variant only, as a model calls it): modules
(``nn.ReLU()``, ``DualLine()``, ...) called ``--calls`` times per repeat, forward
alone and forward + backward, with the parameters' gradients set to ``None``
before each call as ``zero_grad(set_to_none=True)`` does in training.

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736 \\
        python benchmarks/activation_speed.py [--numel 33554432] [--reps 7] [--isa avx2,baseline]
    python benchmarks/activation_speed.py --small [--calls 2000] [--reps 5] \\
        [--threads 1 --clock cpu] [--shapes 128x84,128x120] [--stat fastest-tenth]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from _timing import add_timing_args, timing_clock
from torch import nn

import learnact
from learnact.kernels import kernel_mode

clock = time.perf_counter  # set from --clock in main()


def timed(fn, x, grad):
    xx = x.detach().requires_grad_()
    start = clock()
    y = fn(xx)
    y.backward(grad)
    return clock() - start


def forced(isa, fn):
    """``fn`` run with the CPU kernel variant ``isa``."""

    def call(t):
        old = os.environ.get("LEARNACT_CPU_ISA")
        os.environ["LEARNACT_CPU_ISA"] = isa
        try:
            return fn(t)
        finally:
            if old is None:
                del os.environ["LEARNACT_CPU_ISA"]
            else:
                os.environ["LEARNACT_CPU_ISA"] = old

    return call


def reference(fn):
    def call(t):
        with kernel_mode("reference"):
            return fn(t)

    return call


SMALL_SHAPES = ((128, 84), (128, 120), (128, 16, 10, 10), (128, 6, 28, 28))


def per_call(module, x, grad, calls, backward):
    """Mean seconds per call of ``module`` on ``x`` (forward, or forward + backward)."""
    params = list(module.parameters())
    xx = x.detach().requires_grad_()
    start = clock()
    for _ in range(calls):
        for p in params:
            p.grad = None
        y = module(xx)
        if backward:
            y.backward(grad)
    return (clock() - start) / calls


def fastest_tenth(ts):
    """The mean of the fastest tenth of ``ts`` (at least one): on a shared, noisy host
    the least disturbed samples, a steadier estimate of a call's own cost than the
    median when other work comes and goes."""
    k = max(1, len(ts) // 10)
    return statistics.fmean(sorted(ts)[:k])


def small_table(calls: int, reps: int, shapes=SMALL_SHAPES, stat: str = "median") -> None:
    """Per-call forward and forward + backward times at LeNet sizes, as ratios to ReLU.

    ``stat="median"``: each rep's ratio to the ReLU rep beside it, median (min-max).
    ``stat="fastest-tenth"``: each module's mean of its fastest tenth of reps, and the
    ratio of those means (use many short reps, e.g. ``--calls 100 --reps 150``).
    """
    modules = {
        "relu": nn.ReLU(),
        "dual_line": learnact.DualLine(),
        "dp_relu": learnact.DPReLU(),
        "dual_line per-channel": None,  # built per shape (C = dim 1)
        "nn.PReLU (native)": nn.PReLU(),
        "gelu (G alone)": nn.GELU(),
        "Learnable(gelu)": learnact.Learnable("gelu"),
    }
    print(f"{calls} calls x {reps} interleaved reps per cell, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, clock {clock.__name__}, ATen capability "
          f"{torch.backends.cpu.get_cpu_capability()}; microseconds per call, "
          + ("ratio to relu: median (min-max)" if stat == "median" else
             "mean of each module's fastest tenth of reps, and its ratio to relu's"))
    for shape in shapes:
        x, grad = torch.randn(shape), torch.randn(shape)
        mods = dict(modules, **{"dual_line per-channel": learnact.DualLine(shape[1])})
        for backward in (False, True):
            times = {k: [] for k in mods}
            for m in mods.values():  # warm-up (and the one-time kernel build)
                per_call(m, x, grad, 50, backward)
            for _ in range(reps):
                for name, m in mods.items():
                    times[name].append(per_call(m, x, grad, calls, backward))
            what = "fwd+bwd" if backward else "fwd"
            print(f"\n{tuple(shape)} {what}")
            for name, ts in times.items():
                if stat == "fastest-tenth":
                    t, r = fastest_tenth(ts), fastest_tenth(times["relu"])
                    print(f"  {name:<24} {1e6 * t:>9.2f} us {t / r:>7.3f}")
                    continue
                ratios = [t / r for t, r in zip(ts, times["relu"], strict=True)]
                print(f"  {name:<24} {1e6 * statistics.median(ts):>9.1f} us "
                      f"{statistics.median(ratios):>7.2f} ({min(ratios):.2f}-{max(ratios):.2f})")


def main() -> None:
    from learnact.kernels import cpu

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--numel", type=int, default=32 * 1024 * 1024)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--channels", type=int, default=64)
    parser.add_argument("--isa", default=",".join(cpu.cpu_isas()),
                        help="kernel variants to time (default: all this CPU can run)")
    parser.add_argument("--bases", default="gelu,elu,silu", help="G for Learnable(G)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile rows")
    parser.add_argument("--small", action="store_true",
                        help="the per-call table at LeNet sizes instead")
    parser.add_argument("--calls", type=int, default=2000, help="calls per repeat (--small)")
    parser.add_argument("--stat", choices=("median", "fastest-tenth"), default="median",
                        help="--small's statistic (see small_table)")
    parser.add_argument("--shapes", default=",".join("x".join(map(str, s)) for s in SMALL_SHAPES),
                        help="shapes for --small, e.g. 128x84,128x16x10x10")
    add_timing_args(parser)
    args = parser.parse_args()
    global clock
    clock = timing_clock(parser, args)
    if args.small:
        shapes = [tuple(int(d) for d in s.split("x")) for s in args.shapes.split(",") if s]
        small_table(args.calls, args.reps, shapes, args.stat)
        return
    isas = [i for i in args.isa.split(",") if i]
    bases = [b for b in args.bases.split(",") if b]
    for res in cpu.build(isas):
        if not res.ok:
            raise SystemExit(f"the {res.isa} kernels are unavailable: {res.detail}")
    c = args.channels
    hw = max(1, args.numel // (8 * c))
    side = int(hw**0.5)
    shape = (8, c, side, max(1, hw // side))
    x = torch.randn(shape)
    grad = torch.randn(shape)
    dl, dlc, dp = learnact.DualLine(), learnact.DualLine(c), learnact.DPReLU()
    learn = {b: learnact.Learnable(b) for b in bases}
    variants = {"relu": torch.relu, "copy": lambda t: t.clone()}
    for isa in isas:
        variants[f"dual_line [{isa}]"] = forced(isa, dl)
        variants[f"dual_line per-channel [{isa}]"] = forced(isa, dlc)
        variants[f"dp_relu [{isa}]"] = forced(isa, dp)
    variants["dual_line (reference where form)"] = reference(dl)
    variants["nn.PReLU (native)"] = nn.PReLU()
    if not args.no_compile:
        variants["dual_line (torch.compile)"] = torch.compile(learnact.DualLine())
    for b in bases:
        variants[f"{b} (G alone)"] = learnact.create_activation(b)
        for isa in isas:
            variants[f"Learnable({b}) [{isa}]"] = forced(isa, learn[b])
        variants[f"Learnable({b}) (reference)"] = reference(learn[b])
        if not args.no_compile:
            variants[f"Learnable({b}) (torch.compile)"] = torch.compile(learnact.Learnable(b))
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
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, clock {clock.__name__}, "
          f"ATen capability {torch.backends.cpu.get_cpu_capability()}")
    mmap_max = os.environ.get("MALLOC_MMAP_MAX_", "(unset)")
    trim = os.environ.get("MALLOC_TRIM_THRESHOLD_", "(unset)")
    print(f"allocator: MALLOC_MMAP_MAX_={mmap_max} MALLOC_TRIM_THRESHOLD_={trim}")
    print(f"{'variant':<36} {'median ms':>10} {'ratio to relu: median (min-max)':>34} "
          f"{'vs G alone':>10}")
    for name, ts in times.items():
        ratios = [t / r for t, r in zip(ts, relu, strict=True)]
        alone = next((f"{b} (G alone)" for b in bases if name.startswith(f"Learnable({b})")), None)
        vs_g = ""
        if alone:
            rel = [t / g for t, g in zip(ts, times[alone], strict=True)]
            vs_g = f"{statistics.median(rel):.2f}"
        print(f"{name:<36} {1e3 * statistics.median(ts):>10.2f} "
              f"{statistics.median(ratios):>14.2f} ({min(ratios):.2f}-{max(ratios):.2f})"
              f"{'':>8} {vs_g:>10}")
    print(f"copy fwd+bwd moves {4 * nbytes / 1e9:.2f} GB: "
          f"{4 * nbytes / copy_med / 1e9:.1f} GB/s effective")


if __name__ == "__main__":
    main()
