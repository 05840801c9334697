"""Data on disk is read for what it is: formats, 16-bit images, caches, limits, odd files.

Refusals through the command line check the exit code, one line on stderr and
that no file was created or changed; the rest go through the public loaders.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from learnact.cli import main
from learnact.data import formats, images, sources
from learnact.errors import DatasetError
from synthetic_data import write_image_folder, write_npz

PIL = pytest.importorskip("PIL")
from PIL import Image  # noqa: E402


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LEARNACT_DATA", raising=False)
    monkeypatch.delenv("LEARNACT_MAX_IMAGE_PIXELS", raising=False)
    monkeypatch.delenv("LEARNACT_MAX_DATA_MB", raising=False)
    monkeypatch.setenv("LEARNACT_KERNELS", "reference")  # no kernel build in a fresh cache
    images._warn_once.cache_clear()
    return tmp_path / "xdg" / "learnact" / "image-folders"


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def _refused(capsys, tmp_path: Path, argv: list[str], match: str) -> str:
    """Run the CLI: exit 2, one stderr line holding ``match``, nothing under tmp_path changed."""
    before = _snapshot(tmp_path)
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    assert match in err[0], err[0]
    assert _snapshot(tmp_path) == before
    return err[0]


def _folder_study(root: Path, db: Path) -> list[str]:
    return ["study", "--dataset", str(root), "--model", "xresnet18", "--image-size", "16",
            "--activations", "relu", "--lr", "0.01", "--epochs", "1", "--db", str(db)]


# ---------------------------------------------------------------- formats


OTHER_FORMATS = ["GIF", "BMP", "WEBP", "TIFF", "ICO", "TGA", "PCX", "PPM", "SGI"]


@pytest.mark.parametrize("name", ["img_0.jpg", "img_1.png"])
@pytest.mark.parametrize("fmt", OTHER_FORMATS)
def test_other_formats_named_jpg_or_png_are_refused_naming_the_file(fmt, name, tmp_path, cache,
                                                                     capsys):
    root = write_image_folder(tmp_path / "imgs")
    bad = root / "train" / "class_1" / name
    Image.new("RGB", (36, 36), (200, 10, 10)).save(bad, format=fmt)
    line = _refused(capsys, tmp_path, _folder_study(root, tmp_path / "r.db"),
                    "not a JPEG or PNG image")
    assert f"error: {bad}: " in line and line.endswith("only JPEG and PNG are read")
    if fmt in ("GIF", "BMP", "WEBP", "TIFF"):
        assert f"(it looks like {'WebP' if fmt == 'WEBP' else fmt})" in line
    assert not (tmp_path / "r.db").exists()


_EPS = b"""%!PS-Adobe-3.0 EPSF-3.0
%%BoundingBox: 0 0 16 16
0 0 moveto 16 16 lineto stroke
showpage
%%EOF
"""

_LOAD = textwrap.dedent("""
    import sys
    from learnact.data import images
    try:
        images.load_image_folder(sys.argv[1], 16, progress=False)
    except Exception as exc:
        print("refused:", exc)
""")


def test_an_eps_named_jpg_never_reaches_ghostscript(tmp_path):
    root = write_image_folder(tmp_path / "imgs")
    bad = root / "val" / "class_0" / "x.jpg"
    bad.write_bytes(_EPS)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    marker = tmp_path / "gs-ran"
    gs = bindir / "gs"  # a stand-in Ghostscript that leaves a mark when run
    gs.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
    gs.chmod(0o755)
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ['PATH']}",
           "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    # the control: Pillow, asked without formats=, runs "gs" on this file
    control = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from PIL import Image
        try:
            Image.open({str(bad)!r}).load()
        except Exception:
            pass
    """)], env=env, capture_output=True, text=True, timeout=60)
    assert control.returncode == 0 and marker.exists(), control.stderr
    marker.unlink()
    out = subprocess.run([sys.executable, "-c", _LOAD, str(root)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"refused: {bad}: not a JPEG or PNG image (it looks like PostScript/EPS)" in out.stdout
    assert not marker.exists(), "Ghostscript was run"


# ---------------------------------------------------------------- 16-bit images


def _gradient16(h: int = 64, w: int = 64) -> np.ndarray:
    return np.tile(np.linspace(0, 65535, w).round().astype(np.uint16), (h, 1))


def test_a_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path, cache):
    root = tmp_path / "g16"
    grad = _gradient16()
    for split in ("train", "val"):
        for c in range(2):
            d = root / split / f"class_{c}"
            d.mkdir(parents=True)
            img = grad if c == 0 else grad[:, ::-1]
            Image.fromarray(img).save(d / "a.png")
    assert Image.open(root / "val" / "class_0" / "a.png").mode == "I;16"
    data = images.load_image_folder(root, 64, progress=False)
    assert data.x_val.shape == (2, 64, 64, 1)  # still one channel
    expected = np.rint(grad.astype(np.float64) * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(data.x_val[0, ..., 0], expected)
    np.testing.assert_array_equal(data.x_val[1, ..., 0], expected[:, ::-1])
    assert data.x_val[0, 0, 0, 0] == 0 and data.x_val[0, 0, -1, 0] == 255
    assert data.x_val[0, 0, 32, 0] == expected[0, 32] == 130
    # the training statistics describe a gradient, not a white image
    assert abs(float(data.mean[0]) - 0.5) < 0.01 and float(data.std[0]) > 0.25


# ---------------------------------------------------------------- pixel caps


def test_learnacts_pixel_cap_is_the_only_one_and_pillow_stays_quiet(tmp_path, cache,
                                                                    monkeypatch, capsys):
    root = write_image_folder(tmp_path / "imgs")  # images of 1,200 to 1,296 pixels
    # a Pillow cap below every image: it would warn (and from twice the cap, refuse)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    monkeypatch.setenv("LEARNACT_MAX_IMAGE_PIXELS", "2000")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a DecompressionBombWarning would fail here
        data = images.load_image_folder(root, 16, progress=False)
    assert len(data.y_train) == 24
    assert Image.MAX_IMAGE_PIXELS == 500  # given back as it was
    shutil.rmtree(cache)  # decode again, under a lower cap
    monkeypatch.setenv("LEARNACT_MAX_IMAGE_PIXELS", "1000")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _refused(capsys, tmp_path, _folder_study(root, tmp_path / "r.db"),
                 "-pixel limit (a decompression bomb?); set LEARNACT_MAX_IMAGE_PIXELS")
    assert not [w for w in caught if "DecompressionBomb" in str(w.category)]


# ---------------------------------------------------------------- the image cache


def test_a_cache_folder_that_cannot_be_written_costs_a_warning(tmp_path, monkeypatch, caplog):
    images._warn_once.cache_clear()
    root = write_image_folder(tmp_path / "imgs")
    blocker = tmp_path / "xdg-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with caplog.at_level(logging.WARNING, logger="learnact.data.images"):
        first = images.load_image_folder(root, 16, progress=False)
        second = images.load_image_folder(root, 16, progress=False)
    np.testing.assert_array_equal(first.x_val, second.x_val)
    warned = [r.getMessage() for r in caplog.records if "could not write" in r.getMessage()]
    assert len(warned) == 1 and "decoded again next time" in warned[0]
    assert blocker.read_text() == "not a folder"


@pytest.mark.slow
def test_a_cache_folder_that_cannot_be_written_does_not_stop_a_study(tmp_path, monkeypatch,
                                                                     caplog):
    monkeypatch.setenv("LEARNACT_KERNELS", "reference")
    images._warn_once.cache_clear()
    root = write_image_folder(tmp_path / "imgs", train_per_class=4, val_per_class=2)
    blocker = tmp_path / "xdg-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with caplog.at_level(logging.WARNING, logger="learnact.data.images"):
        assert main(_folder_study(root, tmp_path / "r.db")) == 0
    # said once, though the driver and the worker both load the folder
    assert caplog.text.count("could not write the image cache") == 1


def _bomb_npz(path: Path, shape: tuple[int, ...]) -> None:
    """An npz whose x_train claims ``shape`` (uint8) and holds a few deflated zeros."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|u1", "fortran_order": False,
                                              "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x_train.npy", buf.getvalue() + bytes(1 << 20))
        for k in ("hw_train", "y_train", "x_val", "y_val", "mean", "std", "classes"):
            b = io.BytesIO()
            np.save(b, np.zeros(2))
            zf.writestr(f"{k}.npy", b.getvalue())


def test_a_cache_entry_claiming_gigabytes_is_refused_before_it_is_read(tmp_path, cache,
                                                                       caplog):
    root = write_image_folder(tmp_path / "imgs")
    images.load_image_folder(root, 16, progress=False)
    (entry,) = cache.glob("*.npz")
    _bomb_npz(entry, (100_000, 171, 171, 3))  # 8.8 GB declared
    with caplog.at_level(logging.WARNING, logger="learnact.data.images"):
        data = images.load_image_folder(root, 16, progress=False)
    assert len(data.y_train) == 24  # decoded again
    assert "is unreadable" in caplog.text and "over the 4,096 MB limit" in caplog.text
    _bomb_npz(entry, (20_000, 171, 171, 3))  # 1.75 GB in 1 MB: a bomb by its ratio
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="learnact.data.images"):
        images.load_image_folder(root, 16, progress=False)
    assert "refusing a decompression bomb" in caplog.text


def test_a_file_changed_while_decoding_is_an_error_not_a_cache_entry(tmp_path, cache,
                                                                    monkeypatch):
    root = write_image_folder(tmp_path / "imgs")
    victim = root / "val" / "class_2" / "img_0.jpg"
    real = images._decode
    seen = []

    def decode_and_edit(path, *args):
        if not seen:
            with open(victim, "ab") as fh:
                fh.write(b"\0")  # another program writes meanwhile
        seen.append(path)
        return real(path, *args)

    monkeypatch.setattr(images, "_decode", decode_and_edit)
    with pytest.raises(DatasetError, match="files changed while they were decoded"):
        images.load_image_folder(root, 16, progress=False)
    assert not cache.exists() or not list(cache.glob("*.npz"))


# ---------------------------------------------------------------- odd files


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX")
def test_fifos_devices_and_link_loops_are_left_out_with_one_warning(tmp_path, cache, caplog,
                                                                   capsys):
    root = write_image_folder(tmp_path / "imgs")
    cls = root / "train" / "class_1"
    os.mkfifo(cls / "pipe.png")  # opening it would block for ever
    (cls / "zero.jpg").symlink_to("/dev/zero")  # reading it would never end
    (cls / "loop.png").symlink_to(cls / "loop.png")
    (cls / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (root / "train" / "..x").mkdir()
    (root / "train" / "..x" / "a.jpg").write_bytes((cls / "img_0.jpg").read_bytes())
    with caplog.at_level(logging.WARNING, logger="learnact.data.images"):
        first = images.load_image_folder(root, 16, progress=False)
        again = images.load_image_folder(root, 16, progress=False)  # as a worker would
    assert len(first.y_train) == len(again.y_train) == 24
    warned = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert len(warned) == 1, warned
    assert ("4 entries that are not regular files (FIFOs, devices, broken or looping links)"
            in warned[0])
    assert "1 hidden folder(s) (e.g. '..x')" in warned[0]


def test_a_symlinked_class_folder_is_followed(tmp_path, cache):
    root = write_image_folder(tmp_path / "imgs")
    elsewhere = tmp_path / "disk2" / "class_2"
    (root / "train" / "class_2").rename(elsewhere.parent.mkdir() or elsewhere)
    (root / "train" / "class_2").symlink_to(elsewhere, target_is_directory=True)
    classes, train, _ = images.scan_image_folder(root)
    assert classes == ("class_0", "class_1", "class_2") and len(train) == 24


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "0", "-5"])
def test_a_bad_data_cap_is_blamed_on_the_variable_not_the_file(value, tmp_path, monkeypatch,
                                                                capsys):
    data = write_npz(tmp_path / "small.npz", n_train=32, n_test=8)
    monkeypatch.setenv("LEARNACT_MAX_DATA_MB", value)
    with pytest.raises(ValueError, match="LEARNACT_MAX_DATA_MB must be a positive, finite"):
        formats.read_npz(data)
    line = _refused(capsys, tmp_path, ["study", "--dataset", str(data), "--activations",
                                       "relu", "--epochs", "1", "--lr", "0.01", "--db",
                                       str(tmp_path / "r.db")],
                    f"LEARNACT_MAX_DATA_MB must be a positive, finite number of megabytes, "
                    f"got {value!r}")
    assert "small.npz" not in line and "not a readable" not in line


# ---------------------------------------------------------------- downloads


def test_downloads_prefer_https_and_must_match_the_published_md5(tmp_path, monkeypatch):
    from dataclasses import replace

    from synthetic_data import write_idx

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LEARNACT_DATA", raising=False)
    for spec in sources.IDX_DATASETS.values():
        assert spec.base_urls[0].startswith("https://") and len(spec.md5) == 4
    # what a mirror (or someone between) serves: valid IDX files of MNIST's shapes, all zeros
    served_files = {stem: write_idx(tmp_path / stem, np.zeros(shape, np.uint8))
                    for stem, shape in sources.IDX_DATASETS["mnist"].files}
    served: list[str] = []

    def download(url: str, dest: Path, timeout: float = 30.0) -> None:
        served.append(url)
        shutil.copy(served_files[dest.name.removesuffix(".gz")], dest)

    monkeypatch.setattr(sources, "_download", download)
    with pytest.raises(DatasetError, match="MD5 mismatch") as info:
        sources.find_idx("mnist", tmp_path / "nowhere")
    assert "http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz: MD5" in str(info.value)
    assert served[0].startswith("https://") and served[-1].startswith("http://")
    assert not any(p.is_file() for p in (tmp_path / "xdg").rglob("*"))  # nothing cached
    # the same files, were their MD5s the published ones, are accepted
    sums = tuple(hashlib.md5(served_files[stem].read_bytes()).hexdigest()
                 for stem, _ in sources.IDX_DATASETS["mnist"].files)
    monkeypatch.setitem(sources.IDX_DATASETS, "mnist",
                        replace(sources.IDX_DATASETS["mnist"], md5=sums))
    arrays = sources.find_idx("mnist", tmp_path / "nowhere")
    assert arrays[0].shape == (60000, 28, 28)


def test_a_download_cache_that_is_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "xdg-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    monkeypatch.delenv("LEARNACT_DATA", raising=False)
    line = _refused(capsys, tmp_path, ["study", "--dataset", "mnist", "--data-dir",
                                       str(tmp_path / "nowhere"), "--db",
                                       str(tmp_path / "r.db")],
                    "cannot write the download cache")
    assert "XDG_CACHE_HOME" in line
