"""One GPU session, one table: is learnact right and fast on this GPU?

Sections (rows of one table, each with a verdict):

- ``triton``: the Triton kernels against the reference path, values and every
  gradient, for DualLine(C), DPReLU and Learnable(gelu, C), in float32,
  bfloat16 and float16, NCHW and channels-last, under dtype tolerances;
- ``bandwidth``: each Triton kernel (Dual Line forward/backward, recipe
  forward/backward) as a share of a copy's bandwidth, timed with CUDA events
  after a warm-up, medians of interleaved repeats;
- ``amp``: a small conv net with Dual Line and Learnable(gelu) under autocast
  bf16 and fp16 (with a GradScaler), loss and gradients against float32;
- ``wrn22``: one epoch of the ``paper-wrn-cifar10`` preset on generated
  CIFAR-sized data (50,000 images), through ``python -m learnact study``;
- ``xresnet50``: one epoch of the ``imagenette-xresnet50-128`` preset on a
  generated image folder (Imagenette's 9,469 + 3,925 images by default).

The epochs are timed by the study itself (the ``seconds`` it stores), so they
include what a real run pays: data on the device, augmentation, mixed precision.

    python benchmarks/gpu_check.py              # on a CUDA machine, under 8 minutes
    python benchmarks/gpu_check.py --dry-run    # CPU, tiny sizes, a few seconds

``--dry-run`` runs every section on the CPU at toy sizes: the Triton kernels in
Triton's interpreter (when ``triton`` is installed), timings that mean nothing,
the study epochs on a few images. It checks that the script works end to end
(the test suite runs it). Exit status 1 when any row fails.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

# dtype -> (atol, rtol): values and grad_x, then parameter gradients (sums over many
# elements, looser in low precision); the same table as the kernel tests
TOL = {torch.float32: (1e-5, 1e-5), torch.bfloat16: (1e-2, 2e-2), torch.float16: (2e-3, 2e-3)}
PTOL = {torch.float32: (1e-3, 1e-4), torch.bfloat16: (0.5, 0.02), torch.float16: (0.1, 0.01)}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass
class Row:
    """One line of the table."""

    section: str
    case: str
    result: str
    ok: bool


@dataclass(frozen=True)
class Sizes:
    """Everything the dry run shrinks."""

    shape: tuple[int, int, int, int]     # (N, C, H, W) for the kernel checks
    bench_numel: int                     # elements per bandwidth measurement
    reps: int                            # interleaved timing repeats
    cifar_train: int                     # generated CIFAR-sized images
    cifar_test: int
    folder_train: int                    # generated image-folder images
    folder_val: int
    folder_side: int                     # their side in pixels (Imagenette-160: 160)
    folder_classes: int
    extra_study_args: tuple[str, ...]    # e.g. --image-size for the dry run
    study_env: tuple[tuple[str, str], ...] = ()  # environment for the study subprocess
    study_activations: str = "relu,dual_line"


FULL = Sizes((16, 64, 56, 56), 1 << 28, 20, 50_000, 10_000, 9_469, 3_925, 160, 10, ())
# The dry run's studies take the reference path (no kernel build) and LeNet5 in place
# of the presets' WRN-22 and XResNet-50, which take minutes per step on a shared CPU:
# it checks the script's plumbing (data, presets, the store), not the models.
DRY = Sizes((2, 3, 5, 7), 4096, 3, 20, 10, 4, 2, 40, 2,
            ("--model", "lenet5", "--image-size", "32", "--batch-size", "4"),
            (("LEARNACT_KERNELS", "reference"),), "dual_line")


# ------------------------------------------------------------------ the kernels


def _modules(channels: int) -> dict[str, Callable[[], nn.Module]]:
    import learnact

    return {
        "DualLine(C)": lambda: learnact.DualLine(channels),
        "DPReLU": lambda: learnact.DPReLU(),
        "Learnable(gelu, C)": lambda: learnact.Learnable("gelu", num_parameters=channels),
    }


def _perturbed(build: Callable[[], nn.Module], device: torch.device) -> nn.Module:
    module = build().to(device)
    with torch.no_grad():
        for i, p in enumerate(module.parameters()):
            p.add_(0.05 * (i + 1) * torch.arange(p.numel(), device=device).view_as(p))
    return module


def _triton_call(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The module through its Triton kernel: by dispatch on CUDA, directly otherwise."""
    from learnact.kernels import kernel_mode

    if x.is_cuda:
        with kernel_mode("fused"):  # raises, saying why, if Triton cannot run
            return module(x)
    from learnact.kernels import triton_kernels as T
    from learnact.kernels.layout import kernel_layout, memory_format

    xk, inner = kernel_layout(x, module.pos_slope.shape[-1])
    if hasattr(module, "base"):  # the recipe, as dispatch.run_recipe does it on CUDA
        gk = module.base(torch.where(xk == float("inf"), 0.0, xk)).contiguous(
            memory_format=memory_format(xk))
        return T.RecipeTriton.apply(xk, gk, module.pos_slope, module.mean_shift, inner)
    shift = getattr(module, "mean_shift", None)
    return T.DualLineTriton.apply(xk, module.pos_slope, module.neg_slope, shift, inner)


def _fwd_bwd(module, x, fn):
    module.zero_grad(set_to_none=True)
    x = x.detach().clone().requires_grad_()
    y = fn(module, x)
    g = torch.linspace(-1, 1, y.numel(), device=y.device).reshape(y.shape).to(y.dtype)
    y.backward(g)
    return y.detach(), x.grad, {n: p.grad.clone() for n, p in module.named_parameters()}


def _reference(module, x):
    from learnact.kernels import kernel_mode

    with kernel_mode("reference"):
        return module(x)


def check_triton(device: torch.device, sizes: Sizes) -> list[Row]:
    """Triton against the reference: every dtype, both layouts, three modules."""
    rows = []
    gen = torch.Generator().manual_seed(0)
    base = torch.randn(sizes.shape, generator=gen) * 3
    base.view(-1)[:4] = torch.tensor([0.0, -0.0, 1e4, -1e4])
    for dname, dtype in DTYPES.items():
        for layout in ("nchw", "channels_last"):
            x = base.to(device=device, dtype=dtype)
            if layout == "channels_last":
                x = x.contiguous(memory_format=torch.channels_last)
            for mname, build in _modules(sizes.shape[1]).items():
                module = _perturbed(build, device)
                case = f"{mname} {dname} {layout}"
                try:
                    fast = _fwd_bwd(module, x, _triton_call)
                    ref = _fwd_bwd(module, x, _reference)
                except Exception as exc:  # a row that says why, not a crashed check
                    rows.append(Row("triton", case, f"error: {exc}"[:70], False))
                    continue
                rows.append(_compare("triton", case, fast, ref, dtype))
    return rows


def _compare(section, case, fast, ref, dtype) -> Row:
    (y_f, gx_f, gp_f), (y_r, gx_r, gp_r) = fast, ref
    atol, rtol = TOL[dtype]
    patol, prtol = PTOL[dtype]
    worst, ok = 0.0, y_f.dtype == dtype and gx_f.dtype == dtype
    pairs = [(y_f, y_r, atol, rtol), (gx_f, gx_r, atol, rtol)]
    pairs += [(gp_f[n], gp_r[n], patol, prtol) for n in gp_r]
    for a, b, at, rt in pairs:
        a, b = a.double(), b.double()
        err = (a - b).abs()
        ok &= bool((err <= at + rt * b.abs()).all())
        worst = max(worst, float(err.max()))
    return Row(section, case, f"max |diff| {worst:.2e} (y, grad_x, {len(gp_r)} params)", ok)


def _timer(device: torch.device):
    if device.type == "cuda":
        def run(fn, inner=5):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(
                enable_timing=True)
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3 / inner
        return run

    def run_cpu(fn, inner=1):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        return (time.perf_counter() - t0) / inner
    return run_cpu


def check_bandwidth(device: torch.device, sizes: Sizes, dry: bool) -> list[Row]:
    """Each Triton kernel's bytes per second as a share of a copy's (float32 and bf16)."""
    try:
        from learnact.kernels import triton_kernels as T
    except Exception as exc:
        return [Row("bandwidth", "triton kernels", f"cannot import: {exc}"[:70], False)]
    rows = []
    for dname in ("fp32", "bf16"):
        rows += _bandwidth_rows(T, device, sizes, DTYPES[dname], dname, dry)
    return rows


def _bandwidth_rows(T, device, sizes: Sizes, dtype, dname: str, dry: bool) -> list[Row]:
    timer = _timer(device)
    x = torch.randn(sizes.bench_numel, device=device).to(dtype)
    g, gx, dst = torch.randn_like(x), torch.randn_like(x), torch.empty_like(x)
    one = torch.ones(1, device=device)
    kernels = {  # name -> (call, tensor-sized transfers)
        "dual_line forward": (lambda: T.forward(x, one, one, one, 1), 2),
        "dual_line backward": (lambda: T.backward(g, x, one, one, 1), 3),
        "recipe forward": (lambda: T.recipe_forward(x, gx, one, one, 1), 3),
        "recipe backward": (lambda: T.recipe_backward(g, x, one, 1), 4),
    }
    calls = {"copy": lambda: dst.copy_(x), **{k: v[0] for k, v in kernels.items()}}
    for fn in calls.values():
        fn()  # warm-up: Triton compiles each specialisation once
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(sizes.reps):  # interleaved, so drift hits every variant alike
        for name, fn in calls.items():
            times[name].append(timer(fn))
    nbytes = x.numel() * x.element_size()
    copy_bw = 2 * nbytes / statistics.median(times["copy"])
    rows = []
    for name, (_, transfers) in kernels.items():
        shares = [transfers * nbytes / t / copy_bw for t in times[name]]
        med = statistics.median(shares)
        note = " (dry run: not a measurement)" if dry else ""
        # a fused elementwise kernel should move its bytes at no less than half a copy's rate
        rows.append(Row("bandwidth", f"{name} {dname}",
                        f"{med:.0%} of copy ({min(shares):.0%}-{max(shares):.0%}), "
                        f"copy {copy_bw / 1e9:.0f} GB/s{note}", dry or med >= 0.5))
    return rows


# ------------------------------------------------------------------ mixed precision


def check_amp(device: torch.device) -> list[Row]:
    """Autocast bf16 and fp16 (GradScaler) through a conv net: loss and grads vs float32."""
    import learnact

    rows = []
    precisions = ["bf16", "fp16"] if device.type == "cuda" else ["bf16"]
    for act_name in ("dual_line", "learnable(gelu)"):
        torch.manual_seed(0)
        act = (learnact.DualLine(16) if act_name == "dual_line"
               else learnact.Learnable("gelu", num_parameters=16))
        # no conv bias: before batch norm its gradient is 0 up to rounding, so any
        # relative error of it would be noise
        net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), act,
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
        net = net.to(device).to(memory_format=torch.channels_last)
        x = torch.randn(8, 3, 16, 16, device=device).contiguous(
            memory_format=torch.channels_last)
        y = torch.randint(0, 10, (8,), device=device)

        def step(precision, net=net, x=x, y=y):
            net.zero_grad(set_to_none=True)
            scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
            with torch.autocast(device.type, dtype=DTYPES.get(precision, torch.float32),
                                enabled=precision != "fp32"):
                loss = nn.functional.cross_entropy(net(x), y)
            scaler.scale(loss).backward()
            scale = scaler.get_scale() if precision == "fp16" else 1.0
            return float(loss.detach()), [p.grad.float() / scale for p in net.parameters()]

        loss32, grads32 = step("fp32")
        for precision in precisions:
            loss, grads = step(precision)
            rel = max(float((a - b).norm() / (b.norm() + 1e-12))
                      for a, b in zip(grads, grads32, strict=True))
            finite = all(bool(torch.isfinite(a).all()) for a in grads)
            ok = finite and abs(loss - loss32) < 0.05 and rel < 0.1
            rows.append(Row("amp", f"{act_name} {precision} channels_last",
                            f"loss {loss:.4f} vs fp32 {loss32:.4f}, worst grad rel err {rel:.3f}",
                            ok))
    return rows


# ------------------------------------------------------------------ study epochs


def _write_cifar_npz(path: Path, n_train: int, n_test: int) -> Path:
    rng = np.random.default_rng(0)

    def images(n):
        y = np.arange(n) % 10  # every class in both splits, however small
        x = rng.integers(0, 60, size=(n, 32, 32, 3), dtype=np.uint8)
        x[np.arange(n), (y * 3) % 30] = 255  # a class-dependent bright row: learnable
        return x, y.astype(np.int64)

    (xtr, ytr), (xte, yte) = images(n_train), images(n_test)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return path


def _write_image_folder(root: Path, n_train: int, n_val: int, side: int, classes: int) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            c = i % classes
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True, exist_ok=True)
            img = rng.integers(0, 60, size=(side, side * 4 // 3, 3), dtype=np.uint8)
            r = c * (side - 8) // max(classes - 1, 1)
            img[r:r + 8] = 255
            Image.fromarray(img).save(d / f"img_{i}.jpg", quality=90)
    return root


def _study_epoch(section: str, preset: str, dataset: Path, workdir: Path, device: str,
                 extra: tuple[str, ...], images: int, sizes: Sizes) -> list[Row]:
    db = workdir / f"{section}.db"
    env = dict(sizes.study_env)
    cmd = [sys.executable, "-m", "learnact", "study", "--preset", preset, "--dataset",
           str(dataset), "--activations", sizes.study_activations, "--seeds", "1",
           "--epochs", "1",
           "--lr", "3e-3", "--db", str(db), "--device", device, *extra]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return [Row(section, f"{preset} 1 epoch", f"exit {out.returncode}: {tail}"[:90], False)]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT r.activation, e.seconds, e.test_accuracy FROM epochs e "
                            "JOIN runs r USING (run_id) ORDER BY r.activation").fetchall()
    result = []
    for act, seconds, acc in rows:
        result.append(Row(section, f"{preset} 1 epoch, {act}",
                          f"{seconds:.1f} s ({images / seconds:,.0f} img/s), "
                          f"test acc {acc:.3f}", seconds > 0))
    if not result:
        result.append(Row(section, f"{preset} 1 epoch", "no epoch recorded", False))
    result.append(Row(section, f"{preset} wall time ({len(rows)} runs, data prep included)",
                      f"{wall:.0f} s", True))
    return result


def check_studies(device: torch.device, sizes: Sizes, workdir: Path) -> list[Row]:
    """One epoch of the WRN-22 CIFAR preset and of the XResNet-50 Imagenette preset."""
    dev = "cuda" if device.type == "cuda" else "cpu"
    npz = _write_cifar_npz(workdir / "cifar-like.npz", sizes.cifar_train, sizes.cifar_test)
    no_image_size = tuple(a for i, a in enumerate(sizes.extra_study_args)
                          if "--image-size" not in sizes.extra_study_args[max(i - 1, 0):i + 1])
    rows = _study_epoch("wrn22", "paper-wrn-cifar10", npz, workdir, dev, no_image_size,
                        sizes.cifar_train, sizes)
    try:
        folder = _write_image_folder(workdir / "imagenette-like", sizes.folder_train,
                                     sizes.folder_val, sizes.folder_side, sizes.folder_classes)
    except ImportError:
        return [*rows, Row("xresnet50", "image folder", "Pillow is not installed", False)]
    rows += _study_epoch("xresnet50", "imagenette-xresnet50-128", folder, workdir, dev,
                         sizes.extra_study_args, sizes.folder_train, sizes)
    return rows


# ------------------------------------------------------------------ main


def print_table(rows: list[Row], header: str) -> None:
    """The one table: section, case, result, verdict."""
    widths = [max(len(r.section) for r in rows), max(len(r.case) for r in rows)]
    print(header)
    print(f"{'section':<{widths[0]}}  {'case':<{widths[1]}}  {'ok':<4}  result")
    print(f"{'-' * widths[0]}  {'-' * widths[1]}  ----  ------")
    for r in rows:
        print(f"{r.section:<{widths[0]}}  {r.case:<{widths[1]}}  "
              f"{'ok' if r.ok else 'FAIL':<4}  {r.result}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU, tiny sizes, Triton's interpreter: checks the script, "
                             "measures nothing")
    parser.add_argument("--skip-studies", action="store_true",
                        help="leave out the two study epochs")
    args = parser.parse_args(argv)
    if args.dry_run:
        # read when Triton decorates its kernels, so before anything imports triton
        os.environ.setdefault("TRITON_INTERPRET", "1")
        device, sizes = torch.device("cpu"), DRY
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run with --dry-run to check the script on "
              "the CPU", file=sys.stderr)
        return 2
    else:
        device, sizes = torch.device("cuda"), FULL
    t0 = time.perf_counter()
    rows: list[Row] = []
    try:
        import triton  # noqa: F401

        have_triton = True
    except ImportError:
        have_triton = False
        rows.append(Row("triton", "import", "triton is not installed (pip install "
                        "learnact[gpu])", False))
    sections: list[tuple[str, Callable[[], list[Row]]]] = []
    if have_triton:
        sections += [("triton", lambda: check_triton(device, sizes)),
                     ("bandwidth", lambda: check_bandwidth(device, sizes, args.dry_run))]
    sections.append(("amp", lambda: check_amp(device)))
    tmp = tempfile.TemporaryDirectory(prefix="learnact-gpu-check-")
    if not args.skip_studies:
        sections.append(("studies", lambda: check_studies(device, sizes, Path(tmp.name))))
    with tmp:
        for name, run in sections:
            t1 = time.perf_counter()
            rows += run()
            rows.append(Row(name, "section time", f"{time.perf_counter() - t1:.1f} s", True))
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU (dry run)"
    print_table(rows, f"learnact gpu_check on {name}, torch {torch.__version__}, "
                      f"{time.perf_counter() - t0:.0f} s")
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
