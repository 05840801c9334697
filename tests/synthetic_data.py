"""Synthetic datasets the tests write in the real on-disk formats."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    """Write ``array`` (uint8) as an IDX file, gzipped when ``compress``."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def class_images(n: int, size: int, channels: int, classes: int, seed: int):
    """Images whose class is visible (a bright band at a class-dependent row)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, size=n)
    x = rng.integers(0, 60, size=(n, size, size, channels)).astype(np.uint8)
    rows = (y * (size - 2) // max(classes - 1, 1)).astype(int)
    for i, r in enumerate(rows):
        x[i, r:r + 2, :, :] = 255
    return x, y.astype(np.int64)


def write_mnist_like(root: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Four IDX .gz files in ``root`` in MNIST layout (28x28, 10 classes)."""
    root.mkdir(parents=True, exist_ok=True)
    xtr, ytr = class_images(n_train, 28, 1, 10, seed)
    xte, yte = class_images(n_test, 28, 1, 10, seed + 1)
    write_idx(root / "train-images-idx3-ubyte", xtr[..., 0])
    write_idx(root / "train-labels-idx1-ubyte", ytr)
    write_idx(root / "t10k-images-idx3-ubyte", xte[..., 0])
    write_idx(root / "t10k-labels-idx1-ubyte", yte)
    return root


def write_cifar_like(root: Path, per_batch: int = 20, fmt: str = "bin", seed: int = 0) -> Path:
    """CIFAR-10 batches (binary or Python pickle) with ``per_batch`` images each."""
    root.mkdir(parents=True, exist_ok=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for k, name in enumerate(names):
        x, y = class_images(per_batch, 32, 3, 10, seed + k)
        planes = x.transpose(0, 3, 1, 2).reshape(per_batch, 3072)
        if fmt == "bin":
            rec = np.concatenate([y.astype(np.uint8)[:, None], planes], axis=1)
            (root / f"{name}.bin").write_bytes(rec.tobytes())
        else:
            obj = {b"data": planes, b"labels": y.tolist(), b"batch_label": name.encode()}
            (root / name).write_bytes(pickle.dumps(obj))
    return root


def write_npz(path: Path, n_train: int = 512, n_test: int = 128, size: int = 28,
              channels: int | None = None, seed: int = 0) -> Path:
    """A dataset .npz with x_train/y_train/x_test/y_test."""
    c = channels or 1
    xtr, ytr = class_images(n_train, size, c, 10, seed)
    xte, yte = class_images(n_test, size, c, 10, seed + 1)
    if channels is None:
        xtr, xte = xtr[..., 0], xte[..., 0]
    np.savez(path, x_train=xtr, y_train=ytr, x_test=xte, y_test=yte)
    return path


def write_image_folder(root: Path, classes: int = 3, train_per_class: int = 8,
                       val_per_class: int = 3, seed: int = 0, split_names=("train", "val"),
                       gray_only: bool = False) -> Path:
    """An ImageFolder-layout tree of small JPEGs and PNGs, one of them grayscale.

    Each class has a visible cue (a bright band at a class-dependent row), and
    images come in several sizes and aspects: 40x30, 30x40 and 36x36.
    """
    from PIL import Image

    rng = np.random.default_rng(seed)
    shapes = [(30, 40), (40, 30), (36, 36)]
    for split, per_class in zip(split_names, (train_per_class, val_per_class), strict=True):
        for c in range(classes):
            d = root / split / f"class_{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                h, w = shapes[i % len(shapes)]
                img = rng.integers(0, 60, size=(h, w, 3)).astype(np.uint8)
                r = c * (h - 4) // max(classes - 1, 1)
                img[r:r + 4] = 255
                gray = gray_only or (c == 0 and i == 1)
                pil = Image.fromarray(img[..., 0] if gray else img, "L" if gray else "RGB")
                ext = ".png" if i % 2 else ".jpg"
                pil.save(d / f"img_{i}{ext}", quality=95)
    return root
