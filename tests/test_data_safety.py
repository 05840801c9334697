"""Untrusted dataset files cannot exhaust memory: pickles, gzip and npz bombs, lying headers.

The memory cases run in a subprocess under ``RLIMIT_AS`` (1 GiB of address space),
loading ``learnact/data/formats.py`` on its own (it needs only numpy), so a
regression fails with a MemoryError instead of swapping the machine.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import learnact.data.formats as formats
from learnact.data.formats import DatasetError, read_cifar10_batch, read_idx, read_npz

FORMATS = Path(formats.__file__)


def _run_limited(code: str, *, env_mb: str | None = None) -> subprocess.CompletedProcess:
    """Run ``code`` with ``formats`` loaded from its file, under a 1 GiB address-space cap."""
    # stub packages, so that learnact/__init__ (and torch) are not imported
    prelude = textwrap.dedent(f"""
        import importlib, resource, sys, types
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        for name, folder in (("learnact", {str(FORMATS.parents[1])!r}),
                             ("learnact.data", {str(FORMATS.parent)!r})):
            pkg = types.ModuleType(name)
            pkg.__path__ = [folder]
            sys.modules[name] = pkg
        formats = importlib.import_module("learnact.data." + {FORMATS.stem!r})
        assert "torch" not in sys.modules
    """)
    env = {"PATH": "/usr/bin:/bin"}
    if env_mb is not None:
        env["LEARNACT_MAX_DATA_MB"] = env_mb
    return subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=120, env=env)


def _expect_refusal(code: str, match: str, **kw) -> None:
    out = _run_limited(textwrap.dedent("""
        try:
        """) + textwrap.indent(textwrap.dedent(code), "    ") + textwrap.dedent("""
        except formats.DatasetError as exc:
            print("REFUSED", exc)
        else:
            print("ACCEPTED")
        """), **kw)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("REFUSED"), out.stdout
    assert match in out.stdout, out.stdout


# ---------------------------------------------------------------- CIFAR-10 pickles


class _Conjure:
    """Pickles as ndarray(shape, dtype, buffer=b"\\0", offset=0, strides=0): a zero-stride
    view that the loader's copy turns into shape's full size."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype = shape, dtype

    def __reduce__(self):
        return (np.ndarray, (self.shape, self.dtype, b"\0" * 8, 0, (0,) * len(self.shape)))


def test_a_pickle_cannot_conjure_a_huge_array(tmp_path):
    # 400,000 x 3072 bytes (1.2 GB) from a file of a few hundred bytes
    evil = tmp_path / "data_batch_1"
    evil.write_bytes(pickle.dumps({b"data": _Conjure((400_000, 3072), np.uint8),
                                   b"labels": _Conjure((400_000,), np.int64)}, protocol=2))
    assert evil.stat().st_size < 400
    _expect_refusal(f"formats.read_cifar10_batch({str(evil)!r})", "not a readable CIFAR-10")


def test_a_pickle_cannot_call_other_globals(tmp_path):
    evil = tmp_path / "data_batch_1"
    evil.write_bytes(b"cos\nsystem\n(S'echo owned'\ntR.")
    with pytest.raises(DatasetError, match=r"refusing to unpickle os\.system"):
        read_cifar10_batch(evil)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_legitimate_pickles_of_every_protocol_load(tmp_path, protocol):
    data = np.arange(7 * 3072, dtype=np.uint8).reshape(7, 3072)
    labels = [3, 1, 4, 1, 5, 9, 2]
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": data, b"labels": labels,
                                   b"batch_label": b"training batch 1 of 5"}, protocol=protocol))
    images, got = read_cifar10_batch(path)
    assert images.shape == (7, 32, 32, 3)
    np.testing.assert_array_equal(images, data.reshape(7, 3, 32, 32).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(got, labels)


def test_a_python2_style_pickle_loads(tmp_path):
    # what the real CIFAR-10 files hold: numpy.core.multiarray._reconstruct and str keys
    # written by Python 2 (bytes under encoding='bytes')
    data = np.zeros((2, 3072), np.uint8)
    data[1] = 7
    raw = pickle.dumps({b"data": data, b"labels": [0, 1]}, protocol=2)
    raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = tmp_path / "test_batch"
    path.write_bytes(raw)
    images, labels = read_cifar10_batch(path)
    assert images[1].max() == 7 and labels.tolist() == [0, 1]


def test_a_batch_larger_than_the_format_is_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": np.zeros((10001, 3072), np.uint8),
                                   b"labels": [0] * 10001}))
    with pytest.raises(DatasetError, match="at most 10000 x 3072"):
        read_cifar10_batch(path)


# ---------------------------------------------------------------- gzip and IDX


def _idx_header(shape, code=0x08):
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", n) for n in shape)


def test_idx_dims_whose_product_overflows_name_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(_idx_header((65536, 65536, 65536, 65536)) + b"\0" * 64)
    with pytest.raises(DatasetError, match=f"{path}: its declared shape .* over the"):
        read_idx(path)


def test_a_gzip_bomb_is_stopped_while_streaming(tmp_path):
    # 300 MB of zeros behind a consistent IDX header, about 300 KB compressed
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(_idx_header((300, 1000, 1000)))
        block = b"\0" * (1 << 24)
        for _ in range(300_000_000 // len(block) + 1):
            fh.write(block)
    assert path.stat().st_size < 2_000_000
    _expect_refusal(f"formats.read_idx({str(path)!r})", "decompression bomb")
    _expect_refusal(f"formats._read_bytes(formats.Path({str(path)!r}))", "decompression bomb")


def test_trailing_garbage_after_an_idx_gz_is_refused_without_reading_it(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(_idx_header((10,)) + bytes(range(10)) + b"\xff" * 50_000_000)
    _expect_refusal(f"formats.read_idx({str(path)!r})", "trailing data after 10 bytes")


def test_the_cap_has_an_environment_override(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte"
    path.write_bytes(_idx_header((3_000_000,)) + b"\1" * 3_000_000)
    _expect_refusal(f"formats.read_idx({str(path)!r})", "over the 2 MB limit", env_mb="2")
    out = _run_limited(f"print(formats.read_idx({str(path)!r}).shape)", env_mb="8")
    assert out.stdout.strip() == "(3000000,)", out.stderr


def test_a_bad_cap_value_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("LEARNACT_MAX_DATA_MB", "lots")
    with pytest.raises(ValueError, match="LEARNACT_MAX_DATA_MB must be a number"):
        formats.max_data_bytes()


# ---------------------------------------------------------------- npz


def _npy_bytes_claiming(shape, payload: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "|u1", "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


def test_an_npz_whose_header_claims_a_gigabyte_is_refused_before_reading(tmp_path):
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x_train.npy", _npy_bytes_claiming((1000, 1000, 1000), b"\0" * 100_000))
        for key in ("y_train", "x_test", "y_test"):
            zf.writestr(f"{key}.npy", _npy_bytes_claiming((1,), b"\0"))
    _expect_refusal(f"formats.read_npz({str(path)!r})", "x_train.npy of shape (1000, 1000, 1000)")


def test_an_npz_member_shorter_than_its_header_is_refused(tmp_path):
    path = tmp_path / "short.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("x_train.npy", _npy_bytes_claiming((4, 8, 8), b"\0" * 100))
        for key in ("y_train", "x_test", "y_test"):
            zf.writestr(f"{key}.npy", _npy_bytes_claiming((4,), b"\0" * 4))
    with pytest.raises(DatasetError, match="truncated"):
        read_npz(path)


def test_an_npz_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x_train=np.array([{"a": 1}], dtype=object), y_train=np.zeros(1),
             x_test=np.zeros((1, 2, 2)), y_test=np.zeros(1))
    with pytest.raises(DatasetError, match="holds Python objects"):
        read_npz(path)


def test_a_normal_npz_round_trips(tmp_path):
    path = tmp_path / "ok.npz"
    arrays = {"x_train": np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3),
              "y_train": np.array([0, 1]), "x_test": np.asfortranarray(np.ones((1, 3, 3))),
              "y_test": np.array([1])}
    np.savez_compressed(path, **arrays)
    got = read_npz(path)
    for key, value in arrays.items():
        np.testing.assert_array_equal(got[key], value)


# ---------------------------------------------------------------- downloads


def _fake_cifar_download(per_batch: int):
    """A stand-in for the network: writes a CIFAR-10 binary archive with per_batch images."""
    import tarfile

    def download(url, dest, timeout=30.0):
        staging = dest.parent / "src" / "cifar-10-batches-bin"
        staging.mkdir(parents=True)
        for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4",
                     "data_batch_5", "test_batch"):
            rec = np.zeros((per_batch, 3073), np.uint8)
            rec[:, 0] = np.arange(per_batch) % 10
            (staging / f"{name}.bin").write_bytes(rec.tobytes())
        with tarfile.open(dest, "w:gz") as tar:
            tar.add(staging, arcname="cifar-10-batches-bin")

    return download


@pytest.mark.parametrize(("per_batch", "ok"), [(20, True), (19, False)])
def test_a_cifar_download_must_hold_exact_counts(tmp_path, monkeypatch, per_batch, ok):
    from learnact.data import sources

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("LEARNACT_DATA", raising=False)
    monkeypatch.setattr(sources, "CIFAR_BATCH", 20)  # the real 10,000 would need 180 MB here
    monkeypatch.setattr(sources, "_download", _fake_cifar_download(per_batch))
    if ok:
        x_train, y_train, x_test, _ = sources.find_cifar10(tmp_path / "nowhere")
        assert x_train.shape == (100, 32, 32, 3) and x_test.shape == (20, 32, 32, 3)
        assert y_train.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    else:
        with pytest.raises(DatasetError, match="19 images, expected 20"):
            sources.find_cifar10(tmp_path / "nowhere")
        cache = tmp_path / "cache" / "learnact"
        assert not any(p.is_file() for p in cache.rglob("*"))  # nothing entered the cache
