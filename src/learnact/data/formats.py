"""Parsers for the on-disk dataset formats: IDX (MNIST family), CIFAR-10 and npz.

Every parser validates what it reads and raises :class:`DatasetError` naming
the file on a corrupt or truncated input. Nothing here unpickles arbitrary
objects: CIFAR-10's Python pickles go through an unpickler that only admits
numpy arrays and plain containers.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import zipfile
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..errors import ConfigError, DatasetError

__all__ = ["DEFAULT_MAX_DATA_MB", "DatasetError", "max_data_bytes", "read_cifar10_batch",
           "read_idx", "read_npy_member", "read_npz"]




_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_MB = 1 << 20
# A decompressed member bigger than this is refused outright, and one that is more
# than 256 MB *and* expands more than 100x is refused as a decompression bomb.
# Real data: MNIST-family .gz files expand about 5x, CIFAR-10's archive about 1.1x.
DEFAULT_MAX_DATA_MB = 4096
_BOMB_MB, _BOMB_RATIO = 256, 100


def max_data_bytes() -> int:
    """The cap on one decompressed dataset file: ``$LEARNACT_MAX_DATA_MB`` or 4096 MB.

    Raises :class:`~learnact.errors.ConfigError` naming the variable for a value
    that is not a positive, finite number (``inf`` is refused: a cap must be one).
    """
    raw = os.environ.get("LEARNACT_MAX_DATA_MB", "").strip()
    if not raw:
        return DEFAULT_MAX_DATA_MB * _MB
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"LEARNACT_MAX_DATA_MB must be a number of megabytes, got {raw!r}"
                         ) from None
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"LEARNACT_MAX_DATA_MB must be a positive, finite number of "
                          f"megabytes, got {raw!r}")
    return int(value * _MB)


def _check_size(path: Path, size: int, compressed: int | None, what: str) -> None:
    """Refuse ``size`` decompressed bytes over the cap, or a bomb's ratio (names the file)."""
    cap = max_data_bytes()
    if size > cap:
        raise DatasetError(f"{path}: {what} would take {size / _MB:,.0f} MB, over the "
                           f"{cap / _MB:,.0f} MB limit (set LEARNACT_MAX_DATA_MB to raise it)")
    if compressed and size > _BOMB_MB * _MB and size > _BOMB_RATIO * compressed:
        raise DatasetError(f"{path}: {what} would expand {compressed:,} bytes to "
                           f"{size / _MB:,.0f} MB (over {_BOMB_RATIO}x); refusing a "
                           "decompression bomb (LEARNACT_MAX_DATA_MB does not lift this)")


def _read_exact(fh, n: int, path: Path, what: str) -> bytearray:
    """Exactly ``n`` bytes from ``fh`` in chunks, then nothing more (trailing data refused).

    Returns a writable buffer, so arrays made from it need no second copy.
    """
    buf = bytearray(n)
    pos = 0
    while pos < n:
        chunk = fh.read(min(n - pos, 16 * _MB))
        if not chunk:
            raise DatasetError(f"{path}: truncated or corrupt {what} ({pos:,} of {n:,} bytes)")
        buf[pos:pos + len(chunk)] = chunk
        pos += len(chunk)
    if fh.read(1):
        raise DatasetError(f"{path}: trailing data after {n:,} bytes; the file is corrupt")
    return buf


def _read_bytes(path: Path) -> bytes:
    """The whole (decompressed) file, streamed under the size cap and the bomb rule."""
    try:
        compressed = path.stat().st_size
        if path.suffix != ".gz":
            _check_size(path, compressed, None, "the file")
            return path.read_bytes()
        chunks, total = [], 0
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(16 * _MB):
                total += len(chunk)
                _check_size(path, total, compressed, "decompressing it")
                chunks.append(chunk)
        return b"".join(chunks)
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"{path}: cannot read ({exc}); the file is corrupt or truncated"
        ) from exc


def read_idx(path: str | Path, expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array.

    The header's dimensions are checked against the size cap before the data is
    read, and a ``.gz`` is decompressed only as far as the header says (plus one
    byte, to refuse trailing data).

    Args:
        path: the file.
        expected_shape: when given, the array must have exactly this shape.

    Raises:
        DatasetError: bad magic number, size mismatch, unexpected shape, or a
        declared size over the cap.
    """
    path = Path(path)
    try:
        compressed = path.stat().st_size
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            head = fh.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
                raise DatasetError(f"{path}: not an IDX file (bad magic number)")
            ndim = head[3]
            dims = fh.read(4 * ndim)
            if len(dims) < 4 * ndim:
                raise DatasetError(f"{path}: truncated IDX header")
            shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
            if expected_shape is not None and shape != tuple(expected_shape):
                raise DatasetError(f"{path}: shape {shape}, expected {tuple(expected_shape)}")
            dtype = np.dtype(_IDX_DTYPES[head[2]])
            need = math.prod(shape) * dtype.itemsize  # Python ints: 65536**4 does not wrap
            _check_size(path, need, compressed if path.suffix == ".gz" else None,
                        f"its declared shape {shape}")
            raw = _read_exact(fh, need, path, "IDX file")
    except (OSError, EOFError, zlib.error) as exc:
        raise DatasetError(
            f"{path}: cannot read ({exc}); the file is corrupt or truncated"
        ) from exc
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


# ---------------------------------------------------------------- CIFAR-10's pickles
# Real CIFAR-10 Python batches hold a dict of bytes, lists of ints and numpy arrays.
# Arrays come as _reconstruct(ndarray, (0,), b'b') plus a BUILD state (protocols 2-4,
# Python 2 or 3), or as _frombuffer(buffer, dtype, shape, order) (protocol 5); Python
# 3 writes protocol-2 bytes as _codecs.encode(str, 'latin1'). Each admitted global is a
# checking stand-in, never the real callable: a pickle cannot call ndarray(shape,
# dtype, buffer, strides=0) to conjure a huge array out of a few bytes.

_SIMPLE_DTYPES = {"u1", "i1", "|u1", "|i1", "<i8", "<i4", "<u4", "<f4", "<f8", "i8", "i4",
                  "u4", "f4", "f8", "b1", "|b1", "int64", "uint8", "float32", "float64"}


class _NdarrayToken:
    """Stands for ``numpy.ndarray`` as ``_reconstruct``'s first argument; not callable."""


def _safe_reconstruct(cls, shape, typecode):
    if cls is not _NdarrayToken or tuple(shape) != (0,) or typecode not in (b"b", "b"):
        raise pickle.UnpicklingError("unexpected numpy _reconstruct arguments")
    return np.ndarray((0,), np.uint8)  # its BUILD state must then supply matching bytes


def _safe_dtype(spec, align=0, copy=1):
    if not isinstance(spec, str) or spec not in _SIMPLE_DTYPES:
        raise pickle.UnpicklingError(f"unexpected numpy dtype {spec!r}")
    return np.dtype(spec)


def _safe_frombuffer(buf, dtype, shape, order):
    dtype = np.dtype(dtype)
    if dtype.kind not in "uifb" or dtype.itemsize > 8:
        raise pickle.UnpicklingError(f"unexpected numpy dtype {dtype}")
    shape = tuple(int(n) for n in shape)
    raw = memoryview(buf).cast("B")
    if math.prod(shape) * dtype.itemsize != len(raw):
        raise pickle.UnpicklingError("array buffer does not match its shape")
    return np.frombuffer(bytes(raw), dtype=dtype).reshape(shape, order=order)


def _safe_encode(text, encoding="utf-8"):
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("unexpected _codecs.encode arguments")
    return text.encode("latin1")


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Admits what real CIFAR-10 pickles contain, through checking stand-ins."""

    _ALLOWED: ClassVar[dict[tuple[str, str], object]] = {
        ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _safe_frombuffer,
        ("numpy._core.numeric", "_frombuffer"): _safe_frombuffer,
        ("numpy", "ndarray"): _NdarrayToken,
        ("numpy", "dtype"): _safe_dtype,
        ("_codecs", "encode"): _safe_encode,
    }

    def find_class(self, module: str, name: str):
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}") from None


CIFAR_BATCH = 10_000  # images per CIFAR-10 batch file


def read_cifar10_batch(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 batch: the binary format (``*.bin``) or the Python pickle.

    Returns ``(images uint8 (N, 32, 32, 3), labels int64 (N,))``.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if path.suffix == ".bin":
        record = 1 + 3072
        if len(raw) == 0 or len(raw) % record or len(raw) > CIFAR_BATCH * record:
            raise DatasetError(f"{path}: truncated CIFAR-10 binary batch ({len(raw)} bytes)")
        arr = np.frombuffer(raw, dtype=np.uint8).reshape(-1, record)
        labels = arr[:, 0].astype(np.int64)
        images = arr[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    else:
        try:
            obj = _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
        except (pickle.UnpicklingError, ValueError, TypeError, EOFError, KeyError,
                IndexError, AttributeError, MemoryError) as exc:
            raise DatasetError(f"{path}: not a readable CIFAR-10 pickle ({exc})") from exc
        if not isinstance(obj, dict) or b"data" not in obj or b"labels" not in obj:
            raise DatasetError(f"{path}: CIFAR-10 pickle lacks 'data' and 'labels'")
        data = np.asarray(obj[b"data"], dtype=np.uint8)
        labels = np.asarray(obj[b"labels"], dtype=np.int64)
        if (data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data)
                or len(data) > CIFAR_BATCH):
            raise DatasetError(f"{path}: CIFAR-10 pickle has data of shape {data.shape} and "
                               f"{len(labels)} labels (a batch is at most {CIFAR_BATCH} x 3072)")
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DatasetError(f"{path}: CIFAR-10 labels outside 0..9")
    return images, labels


def read_npy_member(zf: zipfile.ZipFile, name: str, path: Path) -> np.ndarray:
    """One ``.npy`` member of an open ``.npz``, its declared size checked before it is read.

    The header's shape and dtype are checked against the cap and the bomb rule
    (see :func:`max_data_bytes`) before any memory is allocated; object arrays
    are refused. ``path`` names the file in errors.
    """
    info = zf.getinfo(name)
    with zf.open(info) as fh:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise DatasetError(f"{path}: {name} has an unknown .npy version {version}")
        if dtype.hasobject:
            raise DatasetError(f"{path}: {name} holds Python objects; refusing to unpickle")
        need = math.prod(shape) * dtype.itemsize
        _check_size(path, need, info.compress_size or 1, f"{name} of shape {shape}")
        raw = _read_exact(fh, need, path, name)
    return np.frombuffer(raw, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Read a dataset ``.npz`` with ``x_train``, ``y_train``, ``x_test``, ``y_test``.

    Images are uint8 or float, shaped (N, H, W) or (N, H, W, C); labels are
    integers. Pickled objects are refused.
    """
    path = Path(path)
    keys = ("x_train", "y_train", "x_test", "y_test")
    out = {}
    max_data_bytes()  # a bad $LEARNACT_MAX_DATA_MB is its own error, not this file's
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
            missing = [k for k in keys if f"{k}.npy" not in names]
            if missing:
                raise DatasetError(f"{path}: missing array(s) {', '.join(missing)}")
            for key in keys:
                out[key] = read_npy_member(zf, f"{key}.npy", path)
    except (DatasetError, ConfigError):
        raise
    except (OSError, zipfile.BadZipFile, ValueError, EOFError, zlib.error) as exc:
        raise DatasetError(f"{path}: not a readable .npz file ({exc})") from exc
    for split in ("train", "test"):
        x, y = out[f"x_{split}"], out[f"y_{split}"]
        if x.ndim not in (3, 4) or len(x) != len(y) or y.ndim != 1:
            raise DatasetError(
                f"{path}: x_{split} must be (N,H,W) or (N,H,W,C) with N labels in y_{split}; "
                f"got {x.shape} and {y.shape}"
            )
    return out  # values are checked by loader.check_arrays
