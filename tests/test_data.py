"""Dataset formats, sources, errors and batch augmentation."""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch

from learnact.data import DatasetError, iterate_batches, load_dataset, mixup, read_idx
from learnact.data.formats import read_cifar10_batch, read_npz
from learnact.data.sources import _safe_extract, search_dirs
from synthetic_data import write_cifar_like, write_idx, write_mnist_like, write_npz


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LEARNACT_DATA", raising=False)


@pytest.mark.parametrize("compress", [True, False])
def test_idx_round_trip(tmp_path, compress):
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / "a-idx3-ubyte", arr, compress=compress)
    np.testing.assert_array_equal(read_idx(path), arr)
    with pytest.raises(DatasetError, match="shape"):
        read_idx(path, (2, 3, 5))


def test_truncated_and_corrupt_idx_name_the_file(tmp_path):
    arr = np.zeros((10, 4, 4), dtype=np.uint8)
    raw_path = write_idx(tmp_path / "t-idx3-ubyte", arr, compress=False)
    raw_path.write_bytes(raw_path.read_bytes()[:-7])
    with pytest.raises(DatasetError, match=r"t-idx3-ubyte: truncated or corrupt IDX"):
        read_idx(raw_path)
    gz = write_idx(tmp_path / "g-idx3-ubyte", arr)
    gz.write_bytes(gz.read_bytes()[:30])
    with pytest.raises(DatasetError, match=r"g-idx3-ubyte\.gz: cannot read"):
        read_idx(gz)
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x01\x02\x03\x04hello"))
    with pytest.raises(DatasetError, match="bad magic"):
        read_idx(bad)


def test_mnist_layout_from_data_dir(tmp_path):
    write_mnist_like(tmp_path / "d" / "mnist")
    data = load_dataset("mnist", data_dir=tmp_path / "d", download=False)
    assert data.x_train.shape == (600, 1, 28, 28) and data.x_test.shape == (200, 1, 28, 28)
    assert data.num_classes == 10
    assert abs(float(data.x_train.mean())) < 1e-4
    assert abs(float(data.x_train.std()) - 1) < 1e-2


def test_env_var_is_searched(tmp_path, monkeypatch):
    write_mnist_like(tmp_path / "env")
    monkeypatch.setenv("LEARNACT_DATA", str(tmp_path / "env"))
    assert load_dataset("mnist", download=False, train_limit=50).x_train.shape[0] == 50


def test_missing_dataset_says_where_and_how(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_dataset("mnist", data_dir=tmp_path / "nowhere", download=False)
    msg = str(info.value)
    assert "not found" in msg and str(tmp_path / "nowhere") in msg
    assert "cache" in msg and "LEARNACT_DATA" in msg
    assert not (tmp_path / "cache" / "learnact" / "mnist").exists()  # nothing partial


def test_failed_download_leaves_no_partial_files(tmp_path, monkeypatch):
    import urllib.request

    def refuse(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(DatasetError, match="Download failed"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")
    cache = tmp_path / "cache" / "learnact"
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


def test_fashion_search_includes_debian():
    assert str(search_dirs("fashion-mnist", None)[-1]) == "/usr/share/datasets/fashion-mnist"


@pytest.mark.parametrize("fmt", ["bin", "py"])
def test_cifar_formats(tmp_path, fmt):
    write_cifar_like(tmp_path / "cifar10", fmt=fmt)
    data = load_dataset("cifar10", data_dir=tmp_path, download=False)
    assert data.x_train.shape == (100, 3, 32, 32) and data.x_test.shape == (20, 3, 32, 32)


def test_cifar_pickle_refuses_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}))
    with pytest.raises(DatasetError, match=r"refusing to unpickle builtins\.print"):
        read_cifar10_batch(path)


def test_cifar_truncated_binary(tmp_path):
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(b"\x00" * 3000)
    with pytest.raises(DatasetError, match=r"data_batch_1\.bin: truncated"):
        read_cifar10_batch(path)


def test_tar_path_traversal_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        payload = b"x"
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(DatasetError, match="unsafe archive member"):
        _safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


@pytest.mark.parametrize("channels", [None, 3])
def test_npz(tmp_path, channels):
    path = write_npz(tmp_path / "d.npz", n_train=40, n_test=10, size=16, channels=channels)
    data = load_dataset(str(path))
    assert data.x_train.shape == (40, channels or 1, 16, 16)


def test_npz_errors(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, x_train=np.zeros((4, 8, 8)), y_train=np.zeros(4, dtype=np.int64))
    with pytest.raises(DatasetError, match="missing array"):
        read_npz(p)
    p2 = tmp_path / "junk.npz"
    p2.write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"junk\.npz: not a readable"):
        read_npz(p2)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        load_dataset("imagenet")


def test_flip_crop_is_batched_and_seeded():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    y = torch.tensor([0, 1])
    a = next(iterate_batches(x, y, 2, generator=torch.Generator().manual_seed(1),
                             augment="flip_crop"))[0]
    b = next(iterate_batches(x, y, 2, generator=torch.Generator().manual_seed(1),
                             augment="flip_crop"))[0]
    assert a.shape == x.shape and torch.equal(a, b)
    assert not torch.equal(a, x)  # with pad 4 on 8x8 images, some crop or flip moved pixels
    with pytest.raises(ValueError, match="augment must be"):
        next(iterate_batches(x, y, 2, augment="rotate"))


def test_flip_crop_without_shift_is_flip_or_identity():
    # with zero padding the crop is the identity, so each image is itself or its mirror
    from learnact.data.loader import _flip_crop

    x = torch.randn(16, 1, 5, 5)
    out = _flip_crop(x, torch.Generator().manual_seed(0), pad=0)
    for i in range(16):
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(2))


def test_mixup_lambda_and_mixing():
    x = torch.randn(64, 3, 4, 4)
    y = torch.arange(64)
    xm, ya, yb, lam = mixup(x, y, 0.4, np.random.default_rng(0))
    assert (lam >= 0.5).all() and (lam <= 1).all()
    perm = yb  # labels are indices here
    torch.testing.assert_close(xm, x * lam[:, None, None, None]
                               + x[perm] * (1 - lam[:, None, None, None]))
    assert torch.equal(ya, y)
