"""Whole datasets as tensors on the device, and augmentation done on batches.

Loading happens once per run: the data are converted to normalised float32
tensors and moved to the training device, so that an epoch is a loop of
index operations with no per-sample Python and no worker processes.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError
from .formats import DatasetError, read_npz
from .sources import FASTAI_FOLDERS, find_cifar10, find_fastai_folder, find_idx

__all__ = ["AUGMENTS", "DATASETS", "TensorData", "augment_batch", "crop_batch",
           "data_fingerprint", "is_dataset_name", "iterate_batches", "load_dataset", "mixup",
           "train_batches"]

DATASETS = ("cifar10", "digits", "fashion-mnist", "mnist", *FASTAI_FOLDERS)
# batch augmentations: none; flip + 4-pixel pad-crop (CIFAR); random-resized crop + flip
AUGMENTS = ("none", "flip_crop", "rrc_flip")
# the image size of image-folder datasets when none is given
DEFAULT_IMAGE_SIZE = 128


def is_dataset_name(name: str) -> bool:
    """Whether ``name`` is a known dataset, a ``.npz`` path or an existing directory."""
    return (name.lower() in DATASETS or name.lower() == "fashion_mnist"
            or name.endswith(".npz") or Path(name).is_dir())


@dataclass
class TensorData:
    """A dataset held as normalised tensors.

    Attributes:
        name: dataset name or npz path.
        x_train, x_test: float32 ``(N, C, H, W)``, normalised with the training
            set's per-channel mean and std.
        y_train, y_test: int64 ``(N,)``.
        num_classes: number of classes.
        train_hw: for image folders, int64 ``(N, 2)``: each training image's
            height and width on the canvas ``x_train`` (top-left aligned);
            batches are cropped to :attr:`image_shape` by :func:`train_batches`.
            ``None`` when every training image is already the model's size.
        classes: class names, where the dataset has them.
        fingerprint: :func:`data_fingerprint` of the whole dataset as read
            (before ``train_limit``); stored with every run trained on it, so
            a dataset changed on disk is never mistaken for the one a
            finished run used.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    train_hw: Tensor | None = None
    classes: tuple[str, ...] | None = None
    fingerprint: str | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one image as the model sees it."""
        return tuple(self.x_test.shape[1:])  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> TensorData:
        """This dataset on ``device``."""
        hw = self.train_hw.to(device) if self.train_hw is not None else None
        return TensorData(self.name, self.x_train.to(device), self.y_train.to(device),
                          self.x_test.to(device), self.y_test.to(device), self.num_classes,
                          hw, self.classes, self.fingerprint)


def data_fingerprint(*arrays: np.ndarray) -> str:
    """``sha256:<hex>`` of the arrays' dtypes, shapes and bytes, in order.

    The content, not the path: a file edited in place (pixels inverted,
    labels shifted) gets a new fingerprint, while the same data read from
    another path or format keeps it. Hashing runs at about 1 GB/s, a small
    share of a load that parses the same bytes.
    """
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}|".encode())
        if a.size:  # (a view with a zero in its shape cannot be cast to bytes)
            h.update(memoryview(a).cast("B"))
    return f"sha256:{h.hexdigest()}"


def _digits() -> tuple[np.ndarray, ...]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise DatasetError("dataset 'digits' needs scikit-learn: pip install scikit-learn") from exc
    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    x = (x.squeeze(1).clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    y = bunch.target.astype(np.int64)
    # a fixed, seeded split: 1,497 train / 300 test
    order = np.random.default_rng(0).permutation(len(x))
    test, train = order[:300], order[300:]
    return x[train], y[train], x[test], y[test]


# more classes than this is not an image-classification label set but a corrupt file
MAX_CLASSES = 100_000


def check_arrays(name: str, xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray,
                 yte: np.ndarray) -> int:
    """Refuse data that would crash or mislead training; returns the number of classes.

    Checked for both splits: not empty, one label per image, real-valued finite
    pixels, at least 1x1 images with at least one channel, integer labels in
    ``0..K-1`` with every training class present (``K`` at most ``MAX_CLASSES``),
    and no test label the training set lacks. Raises :class:`DatasetError`
    naming the dataset and the split.
    """
    for split, x, y in (("train", xtr, ytr), ("test", xte, yte)):
        x, y = np.asarray(x), np.asarray(y)
        if len(x) == 0:
            raise DatasetError(f"{name}: the {split} split is empty")
        if len(x) != len(y):
            raise DatasetError(f"{name}: {len(x)} {split} images but {len(y)} labels")
        if np.iscomplexobj(x) or not (np.issubdtype(x.dtype, np.integer)
                                      or np.issubdtype(x.dtype, np.floating)):
            raise DatasetError(f"{name}: {split} pixels must be real numbers, got {x.dtype}")
        if x.ndim not in (3, 4) or min(x.shape[1:]) < 1:
            raise DatasetError(f"{name}: {split} images must be (N,H,W) or (N,H,W,C) with "
                               f"H, W, C >= 1, got {x.shape}")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).sum())
            raise DatasetError(f"{name}: {bad} {split} pixel(s) are NaN or infinite")
        if not np.issubdtype(y.dtype, np.integer):
            raise DatasetError(f"{name}: {split} labels must be integers, got {y.dtype}")
        lo, hi = int(y.min()), int(y.max())  # Python ints: no uint64 wrap-around
        if lo < 0 or hi >= MAX_CLASSES:
            raise DatasetError(f"{name}: {split} label {lo if lo < 0 else hi} is out of range "
                               f"(labels are 0..K-1 with K <= {MAX_CLASSES})")
    classes = int(max(ytr.max(), yte.max())) + 1
    missing = sorted(set(range(classes)) - {int(v) for v in np.unique(ytr)})
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (" ..." if len(missing) > 5 else "")
        raise DatasetError(f"{name}: class(es) {shown} of 0..{classes - 1} have no training "
                           "examples (labels must be 0..K-1, each present)")
    return classes


def _to_nchw(x: np.ndarray) -> Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x))
    if t.dim() == 3:
        t = t.unsqueeze(1)
    elif t.dim() == 4:
        t = t.permute(0, 3, 1, 2)
    if t.dtype == torch.uint8:
        return t.float().div_(255.0)
    return t.float()  # float64 pixels beyond float32's range are caught by the finite check


def load_dataset(
    name: str,
    *,
    data_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    train_limit: int | None = None,
    download: bool = True,
    image_size: int | None = None,
    progress: bool = True,
) -> TensorData:
    """Load a dataset as normalised tensors on ``device``.

    Args:
        name: ``mnist``, ``fashion-mnist``, ``cifar10``, ``digits``,
            ``imagenette``/``imagewoof`` (``-160``, ``-320`` for fast.ai's
            resized versions), a path to an ``.npz`` file with ``x_train``,
            ``y_train``, ``x_test``, ``y_test``, or a folder of images with
            ``train/`` and ``val/`` (see :mod:`learnact.data.images`).
        data_dir: a directory searched first (also ``$LEARNACT_DATA``).
        device: where the tensors live.
        train_limit: keep only the first ``train_limit`` training examples
            (for image folders: a class-balanced, seeded subset of that size).
        download: allow downloading into the user cache as a last resort.
        image_size: the image size of image-folder datasets (default 128);
            an error for the array datasets, whose size is fixed.
        progress: show decoding progress for image folders.

    Raises:
        ValueError: unknown dataset name.
        DatasetError: the data cannot be found (the message says where
            learnact looked and how to get it) or a file is corrupt (the
            message names it).
    """
    key = name.lower()
    if key in FASTAI_FOLDERS or (Path(name).is_dir() and not key.endswith(".npz")):
        root = (find_fastai_folder(key, data_dir, download=download) if key in FASTAI_FOLDERS
                else Path(name))
        return _load_folder(str(name), root, image_size or DEFAULT_IMAGE_SIZE, train_limit,
                            device, progress)
    if image_size is not None:
        raise ConfigError(f"--image-size applies to image-folder datasets; {name!r} has a "
                          "fixed image size")
    if key.endswith(".npz") or Path(name).suffix == ".npz":
        if not Path(name).is_file():
            raise DatasetError(f"dataset file {name} does not exist")
        arrays = read_npz(name)
        xtr, ytr, xte, yte = (arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    elif key in ("mnist", "fashion-mnist", "fashion_mnist"):
        xtr, ytr, xte, yte = find_idx(key.replace("_", "-"), data_dir, download=download)
    elif key == "cifar10":
        xtr, ytr, xte, yte = find_cifar10(data_dir, download=download)
    elif key == "digits":
        xtr, ytr, xte, yte = _digits()
    else:
        raise ConfigError(
            f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, a path to a .npz "
            "or an image folder"
        )
    fingerprint = data_fingerprint(xtr, ytr, xte, yte)
    if train_limit is not None:
        if train_limit < 1:
            raise ConfigError(f"train_limit must be >= 1, got {train_limit}")
        xtr, ytr = xtr[:train_limit], ytr[:train_limit]
    num_classes = check_arrays(str(name), xtr, ytr, xte, yte)
    x_train, x_test = _to_nchw(xtr), _to_nchw(xte)
    for split, x in (("train", x_train), ("test", x_test)):
        if not torch.isfinite(x).all():
            raise DatasetError(f"{name}: {split} pixels exceed float32's range")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"{name}: train images {x_train.shape[1:]} vs test {x_test.shape[1:]}")
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp(min=1e-6)
    y_train = torch.from_numpy(np.asarray(ytr, dtype=np.int64))
    y_test = torch.from_numpy(np.asarray(yte, dtype=np.int64))
    data = TensorData(str(name), (x_train - mean) / std, y_train, (x_test - mean) / std,
                      y_test, num_classes, fingerprint=fingerprint)
    return data.to(device)


def _balanced_subset(y: np.ndarray, limit: int) -> np.ndarray:
    """Indices of ``limit`` examples, round-robin over the classes in a seeded order.

    Image folders list one class after another, so the first ``limit`` images
    would hold one class only.
    """
    order = np.random.default_rng(0).permutation(len(y))
    rank = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        members = order[y[order] == c]
        rank[members] = np.arange(len(members))
    picked = np.lexsort((y, rank))[:limit]
    return np.sort(picked)


def _load_folder(name: str, root: Path, size: int, train_limit: int | None,
                 device: torch.device | str, progress: bool) -> TensorData:
    from .images import load_image_folder

    arrays = load_image_folder(root, size, progress=progress)
    fingerprint = data_fingerprint(arrays.x_train, arrays.hw_train, arrays.y_train,
                                   arrays.x_val, arrays.y_val)
    x, hw, y = arrays.x_train, arrays.hw_train, arrays.y_train
    if train_limit is not None:
        if train_limit < 1:
            raise ConfigError(f"train_limit must be >= 1, got {train_limit}")
        keep = _balanced_subset(y, train_limit)
        x, hw, y = x[keep], hw[keep], y[keep]
    num_classes = check_arrays(name, x, y, arrays.x_val, arrays.y_val)
    if train_limit is None and num_classes != len(arrays.classes):
        raise DatasetError(f"{root}: {len(arrays.classes)} class folders but labels up to "
                           f"{num_classes - 1}")
    mean = torch.from_numpy(arrays.mean).view(1, -1, 1, 1)
    std = torch.from_numpy(arrays.std).view(1, -1, 1, 1)
    data = TensorData(name, (_to_nchw(x) - mean) / std, torch.from_numpy(y),
                      (_to_nchw(arrays.x_val) - mean) / std, torch.from_numpy(arrays.y_val),
                      max(num_classes, len(arrays.classes)),
                      torch.from_numpy(hw.astype(np.int64)), arrays.classes, fingerprint)
    return data.to(device)


def crop_batch(x: Tensor, hw: Tensor, size: int, *, random: bool,
               generator: torch.Generator | None = None, min_scale: float = 0.35,
               ratio: tuple[float, float] = (3 / 4, 4 / 3), flip: bool = True) -> Tensor:
    """Crop each image of a canvas batch to ``size x size``, on the batch's device.

    Image ``i`` occupies ``x[i, :, :hw[i, 0], :hw[i, 1]]``. With ``random``, a
    random-resized crop as in Inception training (area share uniform in
    ``[min_scale, 1]``, aspect ratio log-uniform in ``ratio``, clamped to the
    image rather than re-drawn) and a horizontal flip with probability 1/2;
    otherwise the centre square of each image. One ``grid_sample`` call
    (bilinear) serves the whole batch.
    """
    n, _, big_h, big_w = x.shape
    dev = x.device
    h, w = hw[:, 0].to(dev, torch.float32), hw[:, 1].to(dev, torch.float32)
    if random:
        u = torch.rand(n, 4, generator=generator, device=dev)
        area = h * w * (min_scale + (1 - min_scale) * u[:, 0])
        log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
        r = torch.exp(log_r)
        cw = torch.sqrt(area * r).clamp(max=w).clamp(min=1.0)
        ch = torch.sqrt(area / r).clamp(max=h).clamp(min=1.0)
        x0, y0 = (w - cw) * u[:, 2], (h - ch) * u[:, 3]
        sign = torch.where(torch.rand(n, generator=generator, device=dev) < 0.5, -1.0, 1.0
                           ) if flip else torch.ones(n, device=dev)
    else:
        side = torch.minimum(h, w)
        cw = ch = side
        # whole-pixel offsets (as the validation crops): the centre crop is an exact copy
        x0, y0 = torch.div(w - side, 2, rounding_mode="floor"), torch.div(h - side, 2,
                                                                          rounding_mode="floor")
        sign = torch.ones(n, device=dev)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = sign * cw / big_w
    theta[:, 0, 2] = 2 * (x0 + cw / 2) / big_w - 1
    theta[:, 1, 1] = ch / big_h
    theta[:, 1, 2] = 2 * (y0 + ch / 2) / big_h - 1
    grid = F.affine_grid(theta.to(x.dtype), [n, x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augment_batch(xb: Tensor, augment: str, generator: torch.Generator | None,
                  hw: Tensor | None = None, size: int | None = None) -> Tensor:
    """One training batch at the model's size, augmented as ``augment`` says.

    ``hw``/``size``: the batch is a canvas of differently sized images (image
    folders), cropped to ``size``: randomly for ``rrc_flip``, else centred.
    """
    if augment not in AUGMENTS:
        raise ValueError(f"augment must be one of {', '.join(AUGMENTS)}, got {augment!r}")
    if hw is not None:
        xb = crop_batch(xb, hw, size, random=augment == "rrc_flip", generator=generator)
    elif augment == "rrc_flip":
        full = torch.tensor(xb.shape[2:], device=xb.device).expand(len(xb), 2)
        xb = crop_batch(xb, full, xb.shape[2], random=True, generator=generator)
    if augment == "flip_crop":
        xb = _flip_crop(xb, generator)
    return xb


def _shuffled(n: int, batch_size: int, generator: torch.Generator | None,
              device: torch.device) -> Iterator[Tensor]:
    """Index batches of one seeded permutation (drawn on the CPU, so any device agrees)."""
    order = torch.randperm(n, generator=generator, device="cpu").to(device)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def train_batches(data: TensorData, batch_size: int, *, generator: torch.Generator,
                  augment: str = "none", device_generator: torch.Generator | None = None
                  ) -> Iterator[tuple[Tensor, Tensor]]:
    """Shuffled training batches at the model's image size, augmented on the device.

    The batch order depends on ``generator`` only, so runs with the same seed
    see the same batches whatever else differs (the activation, the model).
    Augmentation draws from ``device_generator`` (default: ``generator``).
    """
    aug_gen = device_generator if device_generator is not None else generator
    size = data.image_shape[1]
    for idx in _shuffled(data.x_train.shape[0], batch_size, generator, data.x_train.device):
        xb, yb = data.x_train[idx], data.y_train[idx]
        hw = data.train_hw[idx] if data.train_hw is not None else None
        if hw is not None or augment != "none":
            xb = augment_batch(xb, augment, aug_gen, hw, size)
        yield xb, yb


def _flip_crop(x: Tensor, generator: torch.Generator, pad: int = 4) -> Tensor:
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator, device=x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    oy = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=x.device)
    ox = torch.randint(0, 2 * pad + 1, (n,), generator=generator, device=x.device)
    rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def iterate_batches(
    x: Tensor,
    y: Tensor,
    batch_size: int,
    *,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    augment: str = "none",
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(x, y)`` mini-batches of in-memory tensors.

    Args:
        augment: ``"none"``, ``"flip_crop"`` (random horizontal flip, then a
            4-pixel reflect pad and a random crop back to size) or
            ``"rrc_flip"`` (random-resized crop and flip, :func:`crop_batch`),
            applied to whole batches on the data's device.
    """
    if augment not in AUGMENTS:
        raise ValueError(f"augment must be one of {', '.join(AUGMENTS)}, got {augment!r}")
    n = x.shape[0]
    if shuffle:
        batches = ((x[idx], y[idx]) for idx in _shuffled(n, batch_size, generator, x.device))
    else:
        batches = ((x[s:s + batch_size], y[s:s + batch_size]) for s in range(0, n, batch_size))
    for xb, yb in batches:
        if augment != "none":
            xb = augment_batch(xb, augment, generator)
        yield xb, yb


def mixup(x: Tensor, y: Tensor, alpha: float, rng: np.random.Generator
          ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Mix a batch with a shuffled copy of itself, as fastai v1 does.

    :math:`\\lambda \\sim \\mathrm{Beta}(\\alpha, \\alpha)` per sample, then
    :math:`\\lambda = \\max(\\lambda, 1 - \\lambda)` so each mixed image stays
    closer to its own label. Returns ``(x_mixed, y_a, y_b, lam)``; the loss is
    ``lam * CE(y_a) + (1 - lam) * CE(y_b)`` per sample.
    """
    n = x.shape[0]
    lam_np = rng.beta(alpha, alpha, size=n).astype(np.float32)
    lam = torch.from_numpy(np.maximum(lam_np, 1.0 - lam_np)).to(x.device)
    perm = torch.from_numpy(rng.permutation(n)).to(x.device)
    lx = lam.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)
    return x * lx + x[perm] * (1 - lx), y, y[perm], lam
