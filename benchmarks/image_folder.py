"""Image folders: decode-and-cache time, cached-load time, and an XResNet epoch on the CPU.

Generates a folder of JPEGs shaped like fast.ai's Imagenette-160 (shorter side
160, 4:3 and 3:4 aspects, 10 classes; 5% grayscale), then measures, for
``--size`` pixels:

1. the first :func:`learnact.data.load_dataset` (scan, decode with Pillow,
   resize, write the cache);
2. the second (reads the cache; decodes nothing), interleaved over ``--reps``;
3. one training epoch of ``--model`` at that size with random-resized crops,
   through learnact's training loop (its steady-pace epoch seconds).

    python benchmarks/image_folder.py [--images 2000] [--size 64] [--model xresnet18]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def make_folder(root: Path, images: int, seed: int = 0) -> Path:
    from PIL import Image

    rng = np.random.default_rng(seed)
    val = images // 5
    for split, count in (("train", images - val), ("val", val)):
        for i in range(count):
            c = i % 10
            h, w = (160, 213) if i % 3 else (213, 160)
            arr = rng.integers(0, 255, size=(h // 8, w // 8, 3), dtype=np.uint8)
            img = Image.fromarray(arr).resize((w, h), Image.Resampling.BILINEAR)
            if i % 20 == 0:
                img = img.convert("L")
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True, exist_ok=True)
            img.save(d / f"{i:05d}.JPEG", quality=90)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--model", default="xresnet18")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--epoch", action=argparse.BooleanOptionalAction, default=True)
    args = ap.parse_args()

    from learnact.data import load_dataset
    from learnact.models import build_model
    from learnact.train import TrainSettings, fit

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["XDG_CACHE_HOME"] = str(Path(tmp) / "cache")
        t0 = time.perf_counter()
        root = make_folder(Path(tmp) / "folder", args.images)
        print(f"generated {args.images} JPEGs in {time.perf_counter() - t0:.1f} s "
              f"({torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs)")
        t0 = time.perf_counter()
        data = load_dataset(str(root), image_size=args.size, progress=False)
        first = time.perf_counter() - t0
        cached = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            load_dataset(str(root), image_size=args.size, progress=False)
            cached.append(time.perf_counter() - t0)
        entry = next((Path(tmp) / "cache").rglob("*.npz"))
        print(f"decode + cache at {args.size} px: {first:.2f} s "
              f"({args.images / first:,.0f} images/s); cache entry "
              f"{entry.stat().st_size / 2**20:.1f} MB")
        print(f"cached load: median {statistics.median(cached):.3f} s "
              f"(min {min(cached):.3f}, max {max(cached):.3f}, {args.reps} reps); "
              f"{first / statistics.median(cached):.0f}x faster than decoding")
        if args.epoch:
            torch.manual_seed(0)
            c, h, _ = data.image_shape
            model = build_model(args.model, torch.nn.ReLU, in_channels=c,
                                num_classes=data.num_classes, image_size=h)
            settings = TrainSettings(epochs=1, lr=3e-3, batch_size=64, augment="rrc_flip",
                                     label_smoothing=0.1)
            m = fit(model, data, settings, seed=0)[0]
            print(f"{args.model} at {args.size} px, {len(data.y_train)} training images, "
                  f"batch 64: one epoch {m.seconds:.1f} s "
                  f"({len(data.y_train) / m.seconds:.0f} images/s)")


if __name__ == "__main__":
    main()
