"""Where datasets come from, tried in order.

1. ``data_dir`` (the CLI's ``--data-dir``) or ``$LEARNACT_DATA``;
2. the user cache (``$XDG_CACHE_HOME/learnact`` or ``~/.cache/learnact``);
3. Debian's ``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist``);
4. a download from the canonical source into the cache, when a network is there.

Downloads go to HTTPS mirrors first. Every downloaded MNIST-family ``.gz`` must
match the MD5 its publisher lists (so a plain-HTTP fallback mirror, or anyone
between, cannot substitute data), and is then verified on its decompressed
content (IDX headers, exact sizes, label ranges). Local files are checked by
content only: Debian's recompressed ``.gz`` files differ byte-wise from
upstream. Downloads land in a temporary file and are moved into the cache
only once they parse, so a failure never leaves a partial file behind.
"""

from __future__ import annotations

import hashlib
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

from .formats import CIFAR_BATCH, DatasetError, max_data_bytes, read_cifar10_batch, read_idx
from .images import is_image_folder, scan_image_folder
from .paths import cache_dir

__all__ = ["DEBIAN_FASHION", "FASTAI_FOLDERS", "IdxDataset", "cache_dir", "find_cifar10",
           "find_fastai_folder", "find_idx", "search_dirs"]

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
    #: the published MD5 of each downloaded ``.gz``, in the order of ``files``
    md5: tuple[str, ...] = ()


IDX_DATASETS = {
    "mnist": IdxDataset("mnist", (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",  # plain HTTP: the MD5s below guard it
    ), md5=("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
            "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")),
    "fashion-mnist": IdxDataset("fashion-mnist", (
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",  # MD5-checked
    ), debian_dir=DEBIAN_FASHION,
        md5=("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
             "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")),
}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
CIFAR10_BIN = ("data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
               "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin")
CIFAR10_PY = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
              "data_batch_5", "test_batch")


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
        staging = _staging(target.parent, f".{name}.")
        try:
            arrays = []
            for i, (stem, shape) in enumerate(spec.files):
                path = staging / f"{stem}.gz"
                _download(base + f"{stem}.gz", path)
                if spec.md5 and _md5(path) != spec.md5[i]:
                    raise DatasetError(f"{base}{stem}.gz: MD5 mismatch (not the published "
                                       "file)")
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
    """``path``, created if needed; a cache that cannot be written is a one-line error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot write the download cache {path} ({exc.strerror or exc}); "
                           "set XDG_CACHE_HOME to a writable folder, or put the data in "
                           "--data-dir") from None
    return path


def _staging(parent: Path, prefix: str) -> Path:
    """A private temporary folder in ``parent`` for a download in progress."""
    try:
        return Path(tempfile.mkdtemp(prefix=prefix, dir=_ensure(parent)))
    except OSError as exc:
        raise DatasetError(f"cannot write the download cache {parent} "
                           f"({exc.strerror or exc}); set XDG_CACHE_HOME to a writable "
                           "folder, or put the data in --data-dir") from None


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
    staging = _staging(target.parent, ".cifar10.")
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


@dataclass(frozen=True)
class FastaiFolder:
    """An image-folder dataset from fast.ai's public bucket."""

    name: str
    folder: str               # the archive's top-level folder, e.g. imagenette2-160
    md5: str | None = None    # of the archive, where published

    @property
    def url(self) -> str:
        return f"{FASTAI_BUCKET}{self.folder}.tgz"


FASTAI_BUCKET = "https://s3.amazonaws.com/fast-ai-imageclas/"
# Imagenette's archive checksums as torchvision's ``Imagenette`` dataset lists them;
# Imagewoof's are not published there, so its archives are checked by structure only.
FASTAI_FOLDERS = {f.name: f for f in (
    FastaiFolder("imagenette", "imagenette2", "fe2fc210e6bb7c5664d602c3cd71e612"),
    FastaiFolder("imagenette-320", "imagenette2-320", "3df6f0d01a2c9592104656642f5e78a3"),
    FastaiFolder("imagenette-160", "imagenette2-160", "e793b78cc4c9e9a4ccc0c1155377a412"),
    FastaiFolder("imagewoof", "imagewoof2"),
    FastaiFolder("imagewoof-320", "imagewoof2-320"),
    FastaiFolder("imagewoof-160", "imagewoof2-160"),
)}
FASTAI_CLASSES = 10


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_fastai_folder(name: str, data_dir: str | Path | None = None, *,
                       download: bool = True) -> Path:
    """The folder of Imagenette or Imagewoof (``name`` in :data:`FASTAI_FOLDERS`).

    Looked up in ``data_dir`` (or ``$LEARNACT_DATA``), then the user cache, as
    ``<dir>/<folder>`` (e.g. ``imagenette2-160``) or ``<dir>/<name>``; then
    downloaded from fast.ai's bucket into the cache. A download is checked
    before it enters the cache: its size against the data limit, its MD5
    where published, no link or path leaving the archive, and ten class
    folders with images in both ``train/`` and ``val/``.
    """
    spec = FASTAI_FOLDERS[name]
    looked = search_dirs(name, data_dir)
    for directory in looked:
        for candidate in (directory / spec.folder, directory):
            if is_image_folder(candidate):
                return candidate
    how = (f"Put the extracted {spec.folder}/ (from {spec.url}) in --data-dir or "
           "$LEARNACT_DATA.")
    if not download:
        raise _missing(name, looked, "Downloading is off.", how)
    target = cache_dir() / name
    staging = _staging(target.parent, f".{name}.")
    try:
        archive = staging / f"{spec.folder}.tgz"
        _download(spec.url, archive, timeout=120)
        size = archive.stat().st_size
        if size > max_data_bytes():
            raise DatasetError(f"{spec.url}: {size / (1 << 20):,.0f} MB archive is over the "
                               "data limit (set LEARNACT_MAX_DATA_MB to raise it)")
        if spec.md5 is not None and _md5(archive) != spec.md5:
            raise DatasetError(f"{spec.url}: MD5 mismatch (a corrupt or changed archive)")
        _safe_extract(archive, staging / "x")
        src = staging / "x" / spec.folder
        classes, _, _ = scan_image_folder(src)  # both splits, same classes, none empty
        if len(classes) != FASTAI_CLASSES:
            raise DatasetError(f"{spec.url}: {len(classes)} classes, expected {FASTAI_CLASSES}")
        target.mkdir(parents=True, exist_ok=True)
        final = target / spec.folder
        if final.exists():
            shutil.rmtree(final)
        os.replace(src, final)
    except (OSError, urllib.error.URLError, tarfile.TarError, DatasetError) as exc:
        raise _missing(name, looked, f"Download failed ({exc}).", how) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
