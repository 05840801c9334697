"""Where datasets come from, tried in order.

1. ``data_dir`` (the CLI's ``--data-dir``) or ``$LEARNACT_DATA``;
2. the user cache (``$XDG_CACHE_HOME/learnact`` or ``~/.cache/learnact``);
3. Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``);
4. a download from the canonical source into the cache, when a network is there.

Downloads are verified on their *decompressed* content (IDX headers, exact
sizes, label ranges): Debian's recompressed ``.gz`` files differ byte-wise
from upstream, so checksums of the archives would prove nothing useful.
Downloads land in a temporary file and are moved into the cache only once
they parse, so a failure never leaves a partial file behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .formats import CIFAR_BATCH, DatasetError, read_cifar10_batch, read_idx

__all__ = ["DEBIAN_FASHION", "IdxDataset", "cache_dir", "find_cifar10", "find_idx", "search_dirs"]

log = logging.getLogger(__name__)

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class IdxDataset:
    """An MNIST-family dataset: four IDX files and where to download them."""

    name: str
    base_urls: tuple[str, ...]
    files: tuple[tuple[str, tuple[int, ...]], ...] = (
        ("train-images-idx3-ubyte", (60000, 28, 28)),
        ("train-labels-idx1-ubyte", (60000,)),
        ("t10k-images-idx3-ubyte", (10000, 28, 28)),
        ("t10k-labels-idx1-ubyte", (10000,)),
    )
    debian_dir: Path | None = None


IDX_DATASETS = {
    "mnist": IdxDataset("mnist", (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )),
    "fashion-mnist": IdxDataset("fashion-mnist", (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ), debian_dir=DEBIAN_FASHION),
}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_BIN = ("data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
               "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin")
CIFAR10_PY = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
              "data_batch_5", "test_batch")


def cache_dir() -> Path:
    """The user cache: ``$XDG_CACHE_HOME/learnact`` or ``~/.cache/learnact``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "learnact"


def search_dirs(name: str, data_dir: str | Path | None) -> list[Path]:
    """The local directories searched for dataset ``name``, in order."""
    dirs = []
    explicit = data_dir or os.environ.get("LEARNACT_DATA")
    if explicit:
        root = Path(explicit)
        dirs += [root / name, root]
    dirs.append(cache_dir() / name)
    spec = IDX_DATASETS.get(name)
    if spec is not None and spec.debian_dir is not None:
        dirs.append(spec.debian_dir)
    return dirs


def _find_file(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _download(url: str, dest: Path, timeout: float = 30.0) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, fh)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _missing(name: str, looked: list[Path], why: str, how: str) -> DatasetError:
    where = "; ".join(str(p) for p in looked)
    return DatasetError(f"dataset {name!r} not found. Looked in: {where}. {why} {how}")


def find_idx(name: str, data_dir: str | Path | None = None, *, download: bool = True
             ) -> list[np.ndarray]:
    """Load the four arrays of an MNIST-family dataset from the first source that has them."""
    spec = IDX_DATASETS[name]
    looked = search_dirs(name, data_dir)
    for directory in looked:
        paths = [_find_file(directory, stem) for stem, _ in spec.files]
        if all(paths):
            log.info("loading %s from %s", name, directory)
            return _check_local([read_idx(p) for p in paths], paths, spec)
    how = (
        f"Put the four IDX files ({', '.join(s for s, _ in spec.files)}, optionally .gz) in "
        f"--data-dir or $LEARNACT_DATA"
        + (", or run `apt-get install dataset-fashion-mnist`." if spec.debian_dir else ".")
    )
    if not download:
        raise _missing(name, looked, "Downloading is off.", how)
    target = cache_dir() / name
    errors = []
    for base in spec.base_urls:
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=_ensure(target.parent)))
        try:
            arrays = []
            for stem, shape in spec.files:
                path = staging / f"{stem}.gz"
                _download(base + f"{stem}.gz", path)
                arrays.append(read_idx(path, shape))  # verify the decompressed content
            target.mkdir(parents=True, exist_ok=True)
            for stem, _ in spec.files:
                os.replace(staging / f"{stem}.gz", target / f"{stem}.gz")
            return arrays
        except (OSError, urllib.error.URLError, DatasetError) as exc:
            errors.append(f"{base}: {exc}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    raise _missing(name, looked, f"Download failed ({'; '.join(errors)}).", how)


def _check_local(arrays: list[np.ndarray], paths: list, spec: IdxDataset) -> list[np.ndarray]:
    """Local copies may be subsets; image size and label counts must still agree."""
    for i in (0, 2):
        images, labels = arrays[i], arrays[i + 1]
        if images.shape[1:] != spec.files[i][1][1:]:
            raise DatasetError(f"{paths[i]}: images of shape {images.shape[1:]}, "
                               f"expected {spec.files[i][1][1:]}")
        if labels.shape != (len(images),):
            raise DatasetError(f"{paths[i + 1]}: {labels.shape} labels for {len(images)} images")
        if labels.size and labels.max() > 9:
            raise DatasetError(f"{paths[i + 1]}: labels outside 0..9")
    return arrays


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _safe_extract(archive: Path, dest: Path) -> None:
    """Extract a tar archive, refusing links and paths that leave ``dest``."""
    dest = dest.resolve()
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not (member.isfile() or member.isdir()) or dest not in (target, *target.parents):
                raise DatasetError(f"{archive}: unsafe archive member {member.name!r}")
        tar.extractall(dest, filter="data")


def find_cifar10(data_dir: str | Path | None = None, *, download: bool = True
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load CIFAR-10 (binary or Python-pickle batches) from the first source that has it."""
    looked = search_dirs("cifar10", data_dir)
    for directory in looked:
        for sub in ("", "cifar-10-batches-bin", "cifar-10-batches-py"):
            d = directory / sub if sub else directory
            for names in (CIFAR10_BIN, CIFAR10_PY):
                if all((d / n).is_file() for n in names):
                    parts = [read_cifar10_batch(d / n) for n in names]
                    x_train = np.concatenate([p[0] for p in parts[:5]])
                    y_train = np.concatenate([p[1] for p in parts[:5]])
                    return x_train, y_train, parts[5][0], parts[5][1]
    how = ("Put the CIFAR-10 batches (binary data_batch_1.bin ... test_batch.bin, or the "
           "Python version) in --data-dir or $LEARNACT_DATA.")
    if not download:
        raise _missing("cifar10", looked, "Downloading is off.", how)
    target = cache_dir() / "cifar10"
    staging = Path(tempfile.mkdtemp(prefix=".cifar10.", dir=_ensure(target.parent)))
    try:
        archive = staging / "cifar-10-binary.tar.gz"
        _download(CIFAR10_URL, archive, timeout=120)
        _safe_extract(archive, staging / "x")
        src = staging / "x" / "cifar-10-batches-bin"
        for n in CIFAR10_BIN:  # verify before anything enters the cache: exact counts
            images, _ = read_cifar10_batch(src / n)
            if len(images) != CIFAR_BATCH:
                raise DatasetError(f"{src / n}: {len(images)} images, expected {CIFAR_BATCH}")
        if target.exists():
            shutil.rmtree(target)
        os.replace(src, target)
    except (OSError, urllib.error.URLError, tarfile.TarError, DatasetError) as exc:
        raise _missing("cifar10", looked, f"Download failed ({exc}).", how) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return find_cifar10(data_dir, download=False)
