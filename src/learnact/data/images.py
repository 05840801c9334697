"""Folders of images, one sub-folder per class, decoded once into a cache.

The layout is that of Imagenette, Imagewoof and torchvision's ``ImageFolder``::

    root/train/<class>/*.jpg|*.png
    root/val/<class>/...        (or valid/ or test/)

:func:`load_image_folder` decodes every image with Pillow (an optional
dependency: ``pip install 'learnact[images]'``), resizes it and stores the
result as uint8 arrays in the user cache, keyed by the folder's file list,
file sizes, modification times and the image size. A second load of the same
folder at the same size reads the cache and decodes nothing.

* Training images are resized so that the shorter side is ``size``; the longer
  side keeps its aspect up to :data:`MAX_ASPECT` (centre-cropped beyond it).
  They are stored on a common canvas of ``ceil(size * MAX_ASPECT)`` pixels per
  side, edge-padded, with each image's own height and width kept alongside,
  so random-resized crops can be taken from the whole image, on batches, on
  the training device (:func:`learnact.data.loader.crop_batch`).
* Validation images are resized the same way and centre-cropped to
  ``size x size``.

Only JPEG and PNG are decoded: Pillow is asked for those two formats alone,
so a file of another format named ``.jpg`` or ``.png`` (GIF, WebP, BMP, TIFF,
EPS, ...) is an error naming it and never reaches another decoder. 16-bit
grayscale PNGs are scaled to 8 bits (65535 -> 255), not clipped.

Nothing is skipped silently: a file with an image extension that does not
decode (corrupt, truncated, another format, or over the pixel limit) is an
error naming it, as are an empty class folder and train/val class sets that
differ. Files of other types, entries that are not regular files (FIFOs,
devices, broken or looping links: never opened, so a FIFO cannot block a
load) and hidden class folders are left out with one warning per process that
counts them. Symbolic links to files and to class folders are followed: a
class folder may live on another disk.

``$LEARNACT_MAX_IMAGE_PIXELS`` (default 64 million) is the only pixel cap:
while learnact decodes, Pillow's own cap (and its ``DecompressionBombWarning``)
is off, and learnact's check runs on the header, before any pixel is decoded.

The cache is a convenience, never trusted: an entry is read with its declared
array sizes checked against ``$LEARNACT_MAX_DATA_MB`` before anything is
allocated, a cache folder that cannot be written (``$XDG_CACHE_HOME`` a file,
a read-only disk) costs a warning and a decode next time, and a folder whose
files change while it is decoded is an error rather than a cache entry.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DatasetError
from .formats import read_npy_member
from .paths import cache_dir as user_cache

__all__ = ["DEFAULT_MAX_PIXELS", "IMAGE_EXTENSIONS", "MAX_ASPECT", "ImageFolderArrays",
           "find_splits", "is_image_folder", "load_image_folder", "max_image_pixels",
           "scan_image_folder"]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
TRAIN_NAMES = ("train",)
VAL_NAMES = ("val", "valid", "test")
# The longer side of a training image is kept up to this multiple of the shorter:
# 4:3 photographs (most of ImageNet) keep their whole frame.
MAX_ASPECT = 4 / 3
# One image of more pixels than this is refused as a decompression bomb.
DEFAULT_MAX_PIXELS = 64_000_000
CACHE_VERSION = 1
# Pillow's format names of the only formats decoded
PIL_FORMATS = ("JPEG", "PNG")
_GRAY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
# 16-bit samples (grayscale PNGs): Pillow's convert() would clip them at 255
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
# leading bytes of formats that are refused, to say what a misnamed file really is
_SIGNATURES = ((b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\0", "TIFF"), (b"MM\0*", "TIFF"),
               (b"%!PS", "PostScript/EPS"), (b"\xc5\xd0\xd3\xc6", "EPS"),
               (b"\0\0\1\0", "ICO"), (b"\x0a", "PCX"), (b"\x01\xda", "SGI"),
               (b"P1", "PNM"), (b"P2", "PNM"), (b"P3", "PNM"), (b"P4", "PNM"),
               (b"P5", "PNM"), (b"P6", "PNM"), (b"8BPS", "PSD"), (b"\0\0\0\x0cjP", "JPEG 2000"))


def max_image_pixels() -> int:
    """The per-image pixel limit: ``$LEARNACT_MAX_IMAGE_PIXELS`` or 64 million."""
    raw = os.environ.get("LEARNACT_MAX_IMAGE_PIXELS", "").strip()
    if not raw:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"LEARNACT_MAX_IMAGE_PIXELS must be an integer, got {raw!r}") from None
    if value < 1:
        raise ConfigError(f"LEARNACT_MAX_IMAGE_PIXELS must be positive, got {raw!r}")
    return value


@dataclass
class ImageFolderArrays:
    """A decoded image folder.

    Attributes:
        x_train: uint8 ``(N, L, L, C)`` canvas, ``L = ceil(size * MAX_ASPECT)``;
            image ``i`` occupies ``[:hw_train[i, 0], :hw_train[i, 1]]``.
        hw_train: int32 ``(N, 2)`` height and width of each training image.
        y_train: int64 ``(N,)``.
        x_val: uint8 ``(M, size, size, C)``, centre-cropped.
        y_val: int64 ``(M,)``.
        classes: class folder names; label ``k`` is ``classes[k]``.
        mean, std: float32 ``(C,)`` per-channel statistics of the training
            pixels (each image's own region only), on a 0..1 scale.
    """

    x_train: np.ndarray
    hw_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    classes: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray


def find_splits(root: Path) -> tuple[Path, Path] | None:
    """``(train_dir, val_dir)`` of an image folder, or ``None`` if ``root`` is not one."""
    if not root.is_dir():
        return None
    train = next((root / n for n in TRAIN_NAMES if (root / n).is_dir()), None)
    val = next((root / n for n in VAL_NAMES if (root / n).is_dir()), None)
    return (train, val) if train is not None and val is not None else None


def is_image_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder with ``train/`` and ``val/`` (or ``valid/``, ``test/``)."""
    return find_splits(Path(path)) is not None


def _class_files(split: Path) -> dict[str, list[Path]]:
    out = {}
    others: list[Path] = []
    special: list[Path] = []
    hidden: list[Path] = []
    for entry in sorted(split.iterdir()):
        if not entry.is_dir():
            continue
        if entry.name.startswith("."):
            hidden.append(entry)
            continue
        files, found = [], sorted(p for p in entry.rglob("*") if not p.name.startswith("."))
        for p in found:
            if p.is_file():  # follows links; False for FIFOs, devices, loops, broken links
                (files if p.suffix.lower() in IMAGE_EXTENSIONS else others).append(p)
            elif not p.is_dir():
                special.append(p)
        if not files:
            raise DatasetError(f"{entry}: class folder has no images "
                               f"({', '.join(IMAGE_EXTENSIONS)})")
        out[entry.name] = files
    if not out:
        raise DatasetError(f"{split}: no class folders (expected {split}/<class>/<image>)")
    parts = [f"{len(found)} {what} (e.g. {found[0].name!r})" for found, what in (
        (others, f"file(s) that are not {'/'.join(IMAGE_EXTENSIONS)}"),
        (special, "entries that are not regular files (FIFOs, devices, broken or looping "
                  "links)"),
        (hidden, "hidden folder(s)")) if found]
    if parts:  # said, not skipped silently: e.g. WebP or BMP images are not read
        _warn_once(f"{split}: left out {'; '.join(parts)}")
    return out


@functools.lru_cache(maxsize=256)
def _warn_once(message: str) -> None:
    """Log ``message`` once per process: a study scans its folder in the driver and the worker."""
    log.warning("%s", message)


def scan_image_folder(root: str | Path) -> tuple[tuple[str, ...], list[tuple[Path, int]],
                                                 list[tuple[Path, int]]]:
    """``(classes, train files, val files)``, each file with its label.

    Raises:
        DatasetError: not an image folder, an empty class folder, or class sets
            that differ between the two splits (the message names them).
    """
    root = Path(root)
    splits = find_splits(root)
    if splits is None:
        raise DatasetError(f"{root}: not an image folder; expected train/ and val/ (or valid/, "
                           "test/) sub-folders, each with one folder per class")
    train, val = (_class_files(s) for s in splits)
    if set(train) != set(val):
        only_t = sorted(set(train) - set(val))
        only_v = sorted(set(val) - set(train))
        raise DatasetError(
            f"{root}: the class folders of {splits[0].name}/ and {splits[1].name}/ differ"
            + (f"; only in {splits[0].name}/: {', '.join(only_t[:5])}" if only_t else "")
            + (f"; only in {splits[1].name}/: {', '.join(only_v[:5])}" if only_v else ""))
    classes = tuple(sorted(train))
    label = {c: i for i, c in enumerate(classes)}
    pairs = [[(f, label[c]) for c in classes for f in files[c]] for files in (train, val)]
    return classes, pairs[0], pairs[1]


def _require_pillow():
    try:
        from PIL import Image
    except ImportError as exc:
        raise DatasetError("image folders need Pillow: pip install 'learnact[images]'") from exc
    return Image


def _what_it_is(path: Path) -> str:
    """`` (it looks like GIF)`` for a misnamed file of a known format, else ``""``."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return ""
    if head[8:12] == b"WEBP":
        return " (it looks like WebP)"
    name = next((n for sig, n in _SIGNATURES if head.startswith(sig)), None)
    return f" (it looks like {name})" if name else ""


def _to_8bit(im, Image):
    """A 16-bit grayscale image as 8-bit ``L``, scaled (65535 -> 255) rather than clipped."""
    wide = np.asarray(im).astype(np.float64)
    return Image.fromarray(np.clip(np.rint(wide * (255 / 65535)), 0, 255).astype(np.uint8), "L")


def _decode(path: Path, size: int, train: bool, max_pixels: int
            ) -> tuple[np.ndarray, bool]:
    """One image as uint8 ``(h, w, 3)`` resized (and for val cropped); and whether it was gray."""
    Image = _require_pillow()
    try:
        # formats=: a file that is not JPEG or PNG never reaches another decoder (EPS would
        # run Ghostscript), whatever its name says
        with Image.open(path, formats=PIL_FORMATS) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise DatasetError(f"{path}: {w}x{h} image is over the {max_pixels:,}-pixel "
                                   "limit (a decompression bomb?); set "
                                   "LEARNACT_MAX_IMAGE_PIXELS to raise it")
            gray = im.mode in _GRAY_MODES
            scale = size / min(w, h)
            nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
            im.draft("RGB", (nw, nh))  # JPEG: decode at a reduced scale when it can
            if im.mode in _WIDE_MODES:
                im = _to_8bit(im, Image)
            im = im.convert("RGB").resize((nw, nh), Image.Resampling.BILINEAR, reducing_gap=3.0)
    except DatasetError:
        raise
    except Image.UnidentifiedImageError:
        seen = _what_it_is(path)
        raise DatasetError(f"{path}: not a JPEG or PNG image{seen}; only JPEG and PNG are read"
                           if seen else f"{path}: cannot decode image: not a JPEG or PNG "
                           "image, or a damaged one; only JPEG and PNG are read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: cannot decode image ({exc})") from None
    arr = np.asarray(im, dtype=np.uint8)
    limit = size if not train else math.ceil(size * MAX_ASPECT)
    top, left = max(0, (nh - limit) // 2), max(0, (nw - limit) // 2)
    arr = arr[top:top + limit, left:left + limit]
    return arr, gray


def _cache_key(files: list[tuple[Path, int]], root: Path, size: int) -> str:
    h = hashlib.sha256(f"v{CACHE_VERSION} size={size} aspect={MAX_ASPECT}\n".encode())
    for path, label in files:
        try:
            st = path.stat()
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read ({exc.strerror or exc})") from None
        h.update(f"{path.relative_to(root)}\t{label}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


class _Progress:
    """Decoding progress: one line redrawn on a terminal's stderr, else a few stdout lines.

    Off a terminal it goes to stdout, so that stderr holds only errors (a
    failed decode is the one line there).
    """

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.label, self.enabled = total, label, enabled
        self.tty = enabled and sys.stderr.isatty()
        self.start = time.perf_counter()
        self._last_quarter = -1

    def update(self, done: int) -> None:
        if not self.enabled or not self.total:
            return
        rate = done / max(time.perf_counter() - self.start, 1e-9)
        line = f"{self.label}: {done}/{self.total} images ({rate:,.0f}/s)"
        if self.tty:
            print(f"\r{line}", end="" if done < self.total else "\n", file=sys.stderr, flush=True)
        elif done * 4 // self.total > self._last_quarter or done == self.total:
            self._last_quarter = done * 4 // self.total
            print(line, flush=True)


def _decode_all(files: list[tuple[Path, int]], size: int, train: bool,
                progress: _Progress, offset: int) -> tuple[list[np.ndarray], list[bool]]:
    max_pixels = max_image_pixels()
    out: list[np.ndarray] = []
    grays: list[bool] = []
    workers = max(1, min(8, os.cpu_count() or 1))
    Image = _require_pillow()
    # ours is the one cap: Pillow's (179M pixels, with warnings from 89M) is off meanwhile
    pillow_cap, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    pool = ThreadPoolExecutor(workers)  # Pillow releases the GIL while decoding
    try:
        for arr, gray in pool.map(lambda f: _decode(f[0], size, train, max_pixels), files):
            out.append(arr)
            grays.append(gray)
            if len(out) % 64 == 0 or len(out) == len(files):
                progress.update(offset + len(out))
    finally:  # on a bad file, the error comes now, not after the rest of the folder
        pool.shutdown(wait=True, cancel_futures=True)
        Image.MAX_IMAGE_PIXELS = pillow_cap
    return out, grays


def _stats(canvas: np.ndarray, hw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std over each image's own region, on a 0..1 scale."""
    c = canvas.shape[-1]
    total = np.zeros(c)
    total_sq = np.zeros(c)
    count = 0
    for img, (h, w) in zip(canvas, hw, strict=True):
        region = img[:h, :w].reshape(-1, c).astype(np.float64) / 255.0
        total += region.sum(0)
        total_sq += (region ** 2).sum(0)
        count += region.shape[0]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)


def _build(root: Path, size: int, classes: tuple[str, ...], train: list, val: list,
           progress: bool) -> ImageFolderArrays:
    bar = _Progress(len(train) + len(val), f"decoding {root.name} at {size} px", progress)
    tr, gray_tr = _decode_all(train, size, True, bar, 0)
    va, gray_va = _decode_all(val, size, False, bar, len(train))
    channels = 1 if all(gray_tr) and all(gray_va) else 3
    side = math.ceil(size * MAX_ASPECT)
    canvas = np.empty((len(tr), side, side, channels), dtype=np.uint8)
    hw = np.empty((len(tr), 2), dtype=np.int32)
    for i, arr in enumerate(tr):
        h, w = arr.shape[:2]
        hw[i] = (h, w)
        # edge padding: a crop's bilinear border never blends in a foreign value
        canvas[i] = np.pad(arr[..., :channels], ((0, side - h), (0, side - w), (0, 0)),
                           mode="edge")
    x_val = np.stack([a[..., :channels] for a in va]) if va else np.empty(
        (0, size, size, channels), np.uint8)
    mean, std = _stats(canvas, hw)
    return ImageFolderArrays(canvas, hw, np.array([f[1] for f in train], np.int64), x_val,
                             np.array([f[1] for f in val], np.int64), classes, mean, std)


_FIELDS = ("x_train", "hw_train", "y_train", "x_val", "y_val", "mean", "std")


def _read_cache(path: Path, size: int) -> ImageFolderArrays | None:
    try:  # each array's declared size is checked against the data cap before it is read
        with zipfile.ZipFile(path) as zf:
            arrays = {k: read_npy_member(zf, f"{k}.npy", path) for k in _FIELDS}
            classes = tuple(str(c) for c in read_npy_member(zf, "classes.npy", path))
    except Exception as exc:  # any unreadable cache is rebuilt, never trusted
        log.warning("image cache %s is unreadable (%s); decoding again", path, exc)
        return None
    ok = (arrays["x_val"].shape[1:3] == (size, size) and arrays["x_train"].dtype == np.uint8
          and len(arrays["x_train"]) == len(arrays["hw_train"]) == len(arrays["y_train"])
          and len(arrays["x_val"]) == len(arrays["y_val"]))
    if not ok:
        log.warning("image cache %s does not match its key; decoding again", path)
        return None
    return ImageFolderArrays(classes=classes, **arrays)


def _write_cache(path: Path, data: ImageFolderArrays) -> None:
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".npz")
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, classes=np.array(data.classes), **{k: getattr(data, k) for k in _FIELDS})
        os.replace(tmp, path)
    except OSError as exc:  # a read-only or full cache costs a decode next time, nothing more
        _warn_once(f"could not write the image cache {path} ({exc.strerror or exc}); the "
                   "folder is decoded again next time")
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def load_image_folder(root: str | Path, size: int, *, cache_dir: Path | None = None,
                      progress: bool = True) -> ImageFolderArrays:
    """Decode an image folder at ``size`` pixels, or read it from the cache.

    Args:
        root: the folder holding ``train/`` and ``val/`` (or ``valid/``, ``test/``).
        size: the shorter side of training images and the side of validation crops.
        cache_dir: where decoded folders are kept (default: the user cache's
            ``image-folders``). Entries are keyed by the file list, sizes and
            modification times, so adding, removing or editing an image makes a
            new entry.
        progress: report decoding progress (see :class:`_Progress`).

    Raises:
        DatasetError: see :func:`scan_image_folder`, or an image that does not
            decode (the message names the file).
        ConfigError: ``size`` below 8.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ConfigError(f"image size must be an integer >= 8, got {size!r}")
    root = Path(root)
    classes, train, val = scan_image_folder(root)
    if cache_dir is None:
        cache_dir = user_cache() / "image-folders"
    key = _cache_key(train + val, root, size)
    path = Path(cache_dir) / f"{root.resolve().name}-{size}px-{key[:20]}.npz"
    if path.is_file():
        cached = _read_cache(path, size)
        if cached is not None and cached.classes == classes and len(cached.y_train) == len(
                train) and len(cached.y_val) == len(val):
            log.info("image folder %s: read from cache %s", root, path)
            return cached
    _require_pillow()
    start = time.perf_counter()
    data = _build(root, size, classes, train, val, progress)
    if _cache_key(train + val, root, size) != key:
        raise DatasetError(f"{root}: files changed while they were decoded; load it again "
                           "once nothing writes to it")
    log.info("image folder %s: decoded %d images in %.1f s", root, len(train) + len(val),
             time.perf_counter() - start)
    _write_cache(path, data)
    return data
