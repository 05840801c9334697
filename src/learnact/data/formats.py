"""Parsers for the on-disk dataset formats: IDX (MNIST family), CIFAR-10 and npz.

Every parser validates what it reads and raises :class:`DatasetError` naming
the file on a corrupt or truncated input. Nothing here unpickles arbitrary
objects: CIFAR-10's Python pickles go through an unpickler that only admits
numpy arrays and plain containers.
"""

from __future__ import annotations

import gzip
import io
import pickle
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np

__all__ = ["DatasetError", "read_cifar10_batch", "read_idx", "read_npz"]


class DatasetError(Exception):
    """A dataset could not be found or read; the message says where and why."""


_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"{path}: cannot read ({exc}); the file is corrupt or truncated"
        ) from exc


def read_idx(path: str | Path, expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array.

    Args:
        path: the file.
        expected_shape: when given, the array must have exactly this shape.

    Raises:
        DatasetError: bad magic number, size mismatch, or unexpected shape.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DatasetError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    need = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != need:
        raise DatasetError(
            f"{path}: truncated or corrupt IDX file ({len(raw)} bytes, header says {need})"
        )
    if expected_shape is not None and shape != tuple(expected_shape):
        raise DatasetError(f"{path}: shape {shape}, expected {tuple(expected_shape)}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).copy()


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays and dtypes; refuses every other global."""

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")


def read_cifar10_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch: the binary format (``*.bin``) or the Python pickle.

    Returns ``(images uint8 (N, 32, 32, 3), labels int64 (N,))``.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if path.suffix == ".bin":
        record = 1 + 3072
        if len(raw) == 0 or len(raw) % record:
            raise DatasetError(f"{path}: truncated CIFAR-10 binary batch ({len(raw)} bytes)")
        arr = np.frombuffer(raw, dtype=np.uint8).reshape(-1, record)
        labels = arr[:, 0].astype(np.int64)
        images = arr[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    else:
        try:
            obj = _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
        except Exception as exc:
            raise DatasetError(f"{path}: not a readable CIFAR-10 pickle ({exc})") from exc
        if not isinstance(obj, dict) or b"data" not in obj or b"labels" not in obj:
            raise DatasetError(f"{path}: CIFAR-10 pickle lacks 'data' and 'labels'")
        data = np.asarray(obj[b"data"], dtype=np.uint8)
        labels = np.asarray(obj[b"labels"], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
            raise DatasetError(f"{path}: CIFAR-10 pickle has data of shape {data.shape}")
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"{path}: CIFAR-10 labels outside 0..9")
    return images, labels


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read a dataset ``.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test``.

    Images are uint8 or float, shaped (N, H, W) or (N, H, W, C); labels are
    integers. Pickled objects are refused.
    """
    path = Path(path)
    keys = ("x_train", "y_train", "x_test", "y_test")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in keys if k not in npz.files]
            if missing:
                raise DatasetError(f"{path}: missing array(s) {', '.join(missing)}")
            out = {k: npz[k] for k in keys}
    except DatasetError:
        raise
    except Exception as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({exc})") from exc
    for split in ("train", "test"):
        x, y = out[f"x_{split}"], out[f"y_{split}"]
        if x.ndim not in (3, 4) or len(x) != len(y) or y.ndim != 1:
            raise DatasetError(
                f"{path}: x_{split} must be (N,H,W) or (N,H,W,C) with N labels in y_{split}; "
                f"got {x.shape} and {y.shape}"
            )
    return out  # values are checked by loader.check_arrays
