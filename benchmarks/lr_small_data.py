"""The default learning-rate choice on small data sets nobody tuned it for.

Three data sets, each trained the way a new user would train it (``relu``,
``dual_line`` and ``gelu``, 2 seeds, 3 epochs, LeNet5, every other setting at
its default), once with the study's default LR choice and once with a fixed
``--lr 1e-2`` for comparison:

- ``stripes``: 4 classes of stripe and square patterns, 800 train / 400 test,
  28x28 grayscale (``.npz``);
- ``digits``: scikit-learn's handwritten digits upscaled to 28x28, 1,000 train /
  797 test (``.npz``; needs scikit-learn);
- ``folder``: a 2-class colour image folder, 60 train / 30 val images of mixed
  sizes, trained at ``--image-size 28``.

It prints one row per (data set, LR setting): the accuracy of every run, the
lowest and the mean, and the rates chosen with the path that chose them. The
goals (issue 19): every run >= 0.95 on stripes; >= 0.75 with a mean >= 0.82
on digits; >= 0.80 with a mean >= 0.90 on the folder.

    python benchmarks/lr_small_data.py [--only stripes,digits,folder] [--fixed]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

GOALS = {"stripes": (0.95, 0.0), "digits": (0.75, 0.82), "folder": (0.80, 0.90)}


def stripes(path: Path, seed: int = 0) -> Path:
    """4 classes: horizontal stripes, vertical stripes, a filled square, a hollow square."""
    rng = np.random.default_rng(seed)

    def make(n: int):
        y = rng.integers(0, 4, size=n)
        x = rng.integers(0, 40, size=(n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(y):
            period = int(rng.integers(3, 6))
            if c == 0:
                x[i, ::period, :] = 220
            elif c == 1:
                x[i, :, ::period] = 220
            else:
                s = int(rng.integers(8, 16))
                r0, c0 = rng.integers(0, 28 - s, size=2)
                if c == 2:
                    x[i, r0:r0 + s, c0:c0 + s] = 220
                else:
                    x[i, r0:r0 + s, c0] = x[i, r0:r0 + s, c0 + s - 1] = 220
                    x[i, r0, c0:c0 + s] = x[i, r0 + s - 1, c0:c0 + s] = 220
        return x, y.astype(np.int64)

    xtr, ytr = make(800)
    xte, yte = make(400)
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return path


def digits(path: Path) -> Path:
    """scikit-learn's 1,797 digits at 28x28: the first 1,000 of a seeded order train."""
    import torch
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    x = (x.squeeze(1).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(1).permutation(len(x))
    tr, te = order[:1000], order[1000:]
    np.savez(path, x_train=x[tr], y_train=y[tr], x_test=x[te], y_test=y[te])
    return path


def folder(root: Path, seed: int = 0) -> Path:
    """2 classes of colour images of mixed sizes: a warm disc or a cool bar on noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    sizes = [(40, 30), (30, 40), (36, 36), (50, 44)]
    for split, per_class in (("train", 30), ("val", 15)):
        for c, name in enumerate(("disc", "bar")):
            d = root / split / name
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                h, w = sizes[i % len(sizes)]
                img = rng.integers(0, 90, size=(h, w, 3)).astype(np.uint8)
                yy, xx = np.mgrid[:h, :w]
                if c == 0:
                    cy, cx = h / 2 + rng.normal(0, 3), w / 2 + rng.normal(0, 3)
                    mask = (yy - cy) ** 2 + (xx - cx) ** 2 < (min(h, w) / 3) ** 2
                    img[mask] = (230, 120, 40)
                else:
                    mask = np.abs(xx - w / 2 - rng.normal(0, 3)) < w / 8
                    img[mask] = (40, 120, 230)
                Image.fromarray(img).save(d / f"{i}.{'png' if i % 2 else 'jpg'}", quality=95)
    return root


def run_case(name: str, path: Path, lr: str, extra: dict, db: Path) -> dict:
    """Train the three activations x 2 seeds at ``lr``; return accuracies and rates."""
    from learnact.study import StudyConfig, run_study
    from learnact.study.store import Store

    cfg = StudyConfig.from_settings(dict(name=f"{name}-{lr}", dataset=str(path), model="lenet5",
                      activations=("relu", "dual_line", "gelu"), seeds=2, epochs=3,
                      lr="find" if lr == "default" else float(lr), **extra))
    t0 = time.perf_counter()
    run_study(cfg, db)
    seconds = time.perf_counter() - t0
    store = Store(db, readonly=True)
    try:
        rows = [r for r in store.results() if r["study"] == cfg.name]
    finally:
        store.close()
    accs = [r["test_accuracy"] if r["status"] == "done" and r["test_accuracy"] is not None
            else 0.0 for r in rows]
    return {"accs": accs, "status": [r["status"] for r in rows],
            "flags": [r.get("flags") or "" for r in rows],
            "lrs": [r["lr"] for r in rows],
            "how": [r.get("lr_path") or "" for r in rows],
            "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="stripes,digits,folder")
    parser.add_argument("--fixed", action="store_true", help="also train at a fixed 1e-2")
    args = parser.parse_args()
    import torch

    print(f"torch threads: {torch.get_num_threads()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        makers = {"stripes": lambda: (stripes(tmp / "stripes.npz"), {}),
                  "digits": lambda: (digits(tmp / "digits.npz"), {}),
                  "folder": lambda: (folder(tmp / "folder"), {"image_size": 28})}
        for name in args.only.split(","):
            path, extra = makers[name]()
            for lr in ("default", "0.01") if args.fixed else ("default",):
                r = run_case(name, path, lr, extra, tmp / f"{name}.db")
                low, goal_mean = GOALS[name]
                ok = min(r["accs"]) >= low and statistics.mean(r["accs"]) >= goal_mean
                print(f"{name:8s} lr={lr:8s} min {min(r['accs']):.3f} "
                      f"mean {statistics.mean(r['accs']):.3f} "
                      f"{'meets' if ok else 'MISSES'} goal  ({r['seconds']:.0f} s)")
                for acc, st, fl, rate, how in zip(r["accs"], r["status"], r["flags"], r["lrs"],
                                                  r["how"], strict=True):
                    rate_s = f"{rate:.3g}" if rate is not None else "-"
                    print(f"    acc {acc:.3f}  {st:8s} {fl:8s} lr {rate_s:8s} {how}")


if __name__ == "__main__":
    main()
