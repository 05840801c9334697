"""Image folders (decode, cache, crops, bad input), Imagenette downloads, XResNet, presets."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from learnact.cli import main
from learnact.data import images, load_dataset, sources
from learnact.data.loader import crop_batch, train_batches
from learnact.errors import DatasetError
from learnact.models import build_model
from synthetic_data import write_image_folder

pytest.importorskip("PIL")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LEARNACT_DATA", raising=False)
    return tmp_path / "xdg" / "learnact" / "image-folders"


@pytest.fixture
def folder(tmp_path):
    return write_image_folder(tmp_path / "imgs")


def _count_decodes(monkeypatch) -> list[Path]:
    seen: list[Path] = []
    real = images._decode

    def counting(path, *args):
        seen.append(path)
        return real(path, *args)

    monkeypatch.setattr(images, "_decode", counting)
    return seen


# ---------------------------------------------------------------- loading


def test_folder_loads_with_sizes_classes_and_stats(folder, cache):
    data = load_dataset(str(folder), image_size=32)
    assert data.classes == ("class_0", "class_1", "class_2")
    assert data.num_classes == 3
    assert data.image_shape == (3, 32, 32)  # one gray image among RGB ones: RGB
    assert data.x_train.shape == (24, 3, 43, 43)  # canvas ceil(32 * 4/3)
    assert data.x_test.shape == (9, 3, 32, 32)
    # 30x40 (h x w) -> 32x43 (aspect kept up to 4:3), 40x30 -> 43x32, 36x36 -> 32x32
    assert data.train_hw[:3].tolist() == [[32, 43], [43, 32], [32, 32]]
    assert data.y_train.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    # normalised with the training pixels' own statistics (canvas padding excluded)
    raw = images.load_image_folder(folder, 32)
    region = np.concatenate([img[:h, :w].reshape(-1, 3) for img, (h, w)
                             in zip(raw.x_train, raw.hw_train, strict=True)]) / 255.0
    np.testing.assert_allclose(raw.mean, region.mean(0), rtol=1e-5)
    np.testing.assert_allclose(raw.std, region.std(0), rtol=1e-4)


def test_gray_only_folder_has_one_channel(tmp_path, cache):
    root = write_image_folder(tmp_path / "g", gray_only=True, split_names=("train", "valid"))
    data = load_dataset(str(root), image_size=16)
    assert data.image_shape == (1, 16, 16)


def test_decoded_pixels_match_pillow(folder, cache):
    from PIL import Image

    raw = images.load_image_folder(folder, 32)
    path = folder / "val" / "class_2" / "img_1.png"  # 40x30 (h x w): resized to 43x32
    expect = np.asarray(Image.open(path).convert("RGB").resize((32, 43), Image.Resampling.BILINEAR,
                                                               reducing_gap=3.0))
    top = (43 - 32) // 2
    np.testing.assert_array_equal(raw.x_val[3 * 2 + 1], expect[top:top + 32])


def test_second_load_reads_the_cache_and_decodes_nothing(folder, cache, monkeypatch):
    first = load_dataset(str(folder), image_size=32)
    seen = _count_decodes(monkeypatch)
    again = load_dataset(str(folder), image_size=32)
    assert seen == []
    assert torch.equal(first.x_train, again.x_train) and torch.equal(first.x_test, again.x_test)
    assert len(list(cache.glob("*.npz"))) == 1
    load_dataset(str(folder), image_size=24)  # another size is another entry
    assert len(seen) == 33
    assert len(list(cache.glob("*.npz"))) == 2


def test_an_edited_folder_is_decoded_again(folder, cache, monkeypatch):
    load_dataset(str(folder), image_size=32)
    seen = _count_decodes(monkeypatch)
    extra = folder / "train" / "class_1" / "img_new.png"
    (folder / "train" / "class_1" / "img_1.png").rename(extra)
    data = load_dataset(str(folder), image_size=32)
    assert len(seen) == 33 and data.x_train.shape[0] == 24


def test_a_corrupt_cache_file_is_rebuilt(folder, cache, monkeypatch):
    first = load_dataset(str(folder), image_size=32)
    entry = next(cache.glob("*.npz"))
    entry.write_bytes(entry.read_bytes()[:1000])  # truncated
    seen = _count_decodes(monkeypatch)
    again = load_dataset(str(folder), image_size=32)
    assert len(seen) == 33
    assert torch.equal(first.x_train, again.x_train)
    assert np.load(entry)["x_train"].shape == (24, 43, 43, 3)  # rewritten whole


def test_train_limit_keeps_every_class(folder, cache):
    data = load_dataset(str(folder), image_size=32, train_limit=6)
    assert sorted(data.y_train.tolist()) == [0, 0, 1, 1, 2, 2]


def test_image_size_is_refused_for_fixed_size_datasets(npz):
    with pytest.raises(ValueError, match="--image-size applies to image-folder datasets"):
        load_dataset(npz, image_size=32)


# ---------------------------------------------------------------- crops


def test_centre_crop_is_an_exact_copy():
    x = torch.arange(2 * 1 * 6 * 8, dtype=torch.float32).view(2, 1, 6, 8)
    hw = torch.tensor([[4, 6], [6, 8]])
    out = crop_batch(x, hw, 4, random=False)
    torch.testing.assert_close(out[0, 0], x[0, 0, 0:4, 1:5])
    # 6x8 image, centre square 6x6 at column 1, resized to 4: bilinear of that square
    ref = torch.nn.functional.interpolate(x[1:, :, :, 1:7], size=(4, 4), mode="bilinear",
                                          align_corners=False)
    torch.testing.assert_close(out[1:], ref)


def test_random_resized_crop_at_full_scale_is_the_image_or_its_mirror():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, 8, 8)
    full = torch.tensor([[8, 8]]).expand(32, 2)
    out = crop_batch(x, full, 8, random=True, generator=g, min_scale=1.0, ratio=(1.0, 1.0))
    same = (out - x).abs().amax(dim=(1, 2, 3)) < 1e-5
    mirrored = (out - x.flip(3)).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert bool((same | mirrored).all())
    assert 4 <= int(mirrored.sum()) <= 28  # both happen


def test_random_crops_stay_inside_each_image():
    # each image is a constant inside its region and a sentinel outside: a crop that
    # left the region would blend the sentinel in (edge padding is what the loader adds)
    n = 64
    x = torch.full((n, 1, 12, 12), 1000.0)
    hw = torch.tensor([[6, 8], [8, 6], [12, 9], [9, 12]]).repeat(n // 4, 1)
    for i, (h, w) in enumerate(hw.tolist()):
        x[i, 0, :h, :w] = float(i)
        x[i, 0, :h, w:] = float(i)  # edge padding, as the canvas has
        x[i, 0, h:, :] = float(i)
    g = torch.Generator().manual_seed(1)
    out = crop_batch(x, hw, 5, random=True, generator=g)
    torch.testing.assert_close(out, torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1)
                               .expand_as(out))


def test_train_batches_follow_the_seed_only(folder, cache):
    data = load_dataset(str(folder), image_size=32)

    def labels(seed, augment):
        g = torch.Generator().manual_seed(seed)
        return [yb.tolist() for _, yb in train_batches(data, 5, generator=g, augment=augment)]

    assert labels(3, "none") == labels(3, "rrc_flip")
    assert labels(3, "none") != labels(4, "none")
    batch = next(train_batches(data, 5, generator=torch.Generator().manual_seed(0)))[0]
    assert batch.shape == (5, 3, 32, 32)


# ---------------------------------------------------------------- bad input


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(capsys, tmp_path, dataset: Path, match: str) -> None:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    before = _snapshot(out)
    code = main(["study", "--dataset", str(dataset), "--model", "xresnet18", "--image-size",
                 "16", "--activations", "relu", "--lr", "0.01", "--db", str(out / "r.db")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1, err
    assert match in err[0], err[0]
    assert _snapshot(out) == before  # no database


@pytest.mark.parametrize("damage", ["garbage", "truncated_png", "truncated_jpeg"])
def test_an_image_that_does_not_decode_is_named(tmp_path, cache, capsys, damage):
    root = write_image_folder(tmp_path / "imgs")
    bad = root / "val" / "class_1" / ("img_1.png" if damage != "truncated_jpeg" else "img_0.jpg")
    raw = bad.read_bytes()
    bad.write_bytes(b"not an image at all" if damage == "garbage" else raw[: len(raw) // 2])
    _refused(capsys, tmp_path, root, f"{bad}: cannot decode image")


def test_an_empty_class_folder_is_named(tmp_path, cache, capsys):
    root = write_image_folder(tmp_path / "imgs")
    for p in (root / "train" / "class_2").iterdir():
        p.unlink()
    (root / "train" / "class_2" / "notes.txt").write_text("not an image")
    _refused(capsys, tmp_path, root, f"{root / 'train' / 'class_2'}: class folder has no images")


def test_train_and_val_classes_must_match(tmp_path, cache, capsys):
    root = write_image_folder(tmp_path / "imgs")
    (root / "val" / "class_2").rename(root / "val" / "class_9")
    _refused(capsys, tmp_path, root, "only in train/: class_2; only in val/: class_9")


def test_a_folder_without_splits_is_refused(tmp_path, cache, capsys):
    root = write_image_folder(tmp_path / "imgs")
    (root / "val").rename(root / "holdout")
    _refused(capsys, tmp_path, root, "not an image folder; expected train/ and val/")


def test_an_image_over_the_pixel_limit_is_refused(tmp_path, cache, capsys, monkeypatch):
    root = write_image_folder(tmp_path / "imgs")
    monkeypatch.setenv("LEARNACT_MAX_IMAGE_PIXELS", "1000")  # the test images have 1,200+
    _refused(capsys, tmp_path, root, "-pixel limit (a decompression bomb?)")


def test_missing_pillow_names_the_extra(folder, cache, monkeypatch):
    import builtins

    real = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("no PIL")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pil)
    with pytest.raises(DatasetError, match=r"pip install 'learnact\[images\]'"):
        images.load_image_folder(folder, 16)


# ---------------------------------------------------------------- Imagenette by name


def _fake_fastai_download(classes: int, *, unsafe: bool = False):
    def download(url, dest, timeout=30.0):
        src = write_image_folder(dest.parent / "src" / "imagenette2-160", classes=classes,
                                 train_per_class=2, val_per_class=1)
        with tarfile.open(dest, "w:gz") as tar:
            tar.add(src, arcname="imagenette2-160")
            if unsafe:
                info = tarfile.TarInfo("../escape.txt")
                info.size = 4
                tar.addfile(info, io.BytesIO(b"evil"))

    return download


@pytest.mark.parametrize(("classes", "unsafe", "error"), [
    (10, False, None), (9, False, "9 classes, expected 10"),
    (10, True, "unsafe archive member"),
])
def test_imagenette_download_is_checked_before_the_cache(tmp_path, monkeypatch, classes, unsafe,
                                                         error):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LEARNACT_DATA", raising=False)
    monkeypatch.setattr(sources, "_download", _fake_fastai_download(classes, unsafe=unsafe))
    monkeypatch.setattr(sources, "_md5", lambda path: sources.FASTAI_FOLDERS["imagenette-160"].md5)
    if error is None:
        data = load_dataset("imagenette-160", data_dir=tmp_path / "nowhere", image_size=16)
        assert data.num_classes == 10 and data.x_test.shape == (10, 3, 16, 16)
        assert (tmp_path / "xdg" / "learnact" / "imagenette-160" / "imagenette2-160"
                / "train").is_dir()
        # found in the cache next time, without the network
        monkeypatch.setattr(sources, "_download", None)
        assert sources.find_fastai_folder("imagenette-160", tmp_path / "nowhere").is_dir()
    else:
        with pytest.raises(DatasetError, match=error):
            load_dataset("imagenette-160", data_dir=tmp_path / "nowhere", image_size=16)
        assert not (tmp_path / "xdg" / "learnact" / "imagenette-160").exists()
        assert not (tmp_path / "escape.txt").exists()


def test_imagenette_md5_mismatch_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(sources, "_download", _fake_fastai_download(10))
    with pytest.raises(DatasetError, match="MD5 mismatch"):
        sources.find_fastai_folder("imagenette-160", tmp_path / "nowhere")


def test_imagenette_is_found_in_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = write_image_folder(tmp_path / "data" / "imagewoof2-160")
    assert sources.find_fastai_folder("imagewoof-160", tmp_path / "data",
                                      download=False) == root
    with pytest.raises(DatasetError, match="Put the extracted imagewoof2/"):
        sources.find_fastai_folder("imagewoof", tmp_path / "data", download=False)


# ---------------------------------------------------------------- XResNet


@pytest.mark.parametrize(("name", "params", "blocks", "sites"), [
    ("xresnet18", 11_200_874, 8, 3 + 8 * 2),
    ("xresnet34", 21_309_034, 16, 3 + 16 * 2),
    ("xresnet50", 23_547_754, 16, 3 + 16 * 3),  # fastai's xresnet50, 10 classes: about 23.5M
])
def test_xresnet_shapes_sites_and_sizes(name, params, blocks, sites):
    model = build_model(name, torch.nn.ReLU, in_channels=3, num_classes=10, image_size=32)
    assert sum(p.numel() for p in model.parameters()) == params
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert len(model.sites) == sites
    assert {s.block for s in model.sites if s.block is not None} == set(range(blocks))
    assert [s.block for s in model.sites[:3]] == [None] * 3
    per_block = 3 if name == "xresnet50" else 2
    assert {s.position for s in model.sites[3:]} == set(range(1, per_block + 1))
    modules = dict(model.named_modules())
    assert all(isinstance(modules[s.path], torch.nn.ReLU) for s in model.sites)


def test_xresnet_blocks_start_as_identity_with_resnet_d_shortcuts():
    model = build_model("xresnet50", torch.nn.ReLU, in_channels=1, num_classes=7, image_size=64)
    first = model.stages[1][0]  # strides 2 and widens: avg-pool then 1x1 conv + BN
    assert isinstance(first.idpath[0], torch.nn.AvgPool2d)
    assert first.idpath[1].kernel_size == (1, 1)
    for block in (b for stage in model.stages for b in stage):
        # the last BN of each residual branch starts at zero
        assert float(block.convpath[-1].weight.detach().abs().sum()) == 0.0
    x = torch.randn(2, 256, 8, 8)
    block = model.stages[0][1]
    torch.testing.assert_close(block.eval()(x), torch.relu(x))  # identity branch, then act
    assert model.stem[0].stride == (2, 2) and [m.out_channels for m in model.stem
                                               if isinstance(m, torch.nn.Conv2d)] == [32, 32, 64]


# ---------------------------------------------------------------- end to end


@pytest.mark.slow
def test_xresnet18_image_folder_study_into_the_report(tmp_path, cache, capsys):
    pytest.importorskip("matplotlib")
    root = write_image_folder(tmp_path / "imgs")
    db = tmp_path / "r.db"
    code = main(["study", "--dataset", str(root), "--model", "xresnet18", "--image-size", "32",
                 "--activations", "relu,dual_line", "--epochs", "1", "--train-limit", "12",
                 "--batch-size", "6", "--lr", "0.003", "--db", str(db),
                 "--report", "--report-dir", str(tmp_path / "report")])
    out = capsys.readouterr()
    assert code == 0, out.err
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT activation, status FROM runs ORDER BY activation").fetchall()
        blocks = conn.execute("SELECT COUNT(DISTINCT block) FROM act_params p JOIN runs r "
                              "USING (run_id) WHERE r.activation = 'dual_line' "
                              "AND block IS NOT NULL").fetchone()[0]
    assert rows == [("dual_line", "done"), ("relu", "done")]
    assert blocks == 8
    assert list((tmp_path / "report").rglob("blocks_dual_line.png"))
    assert (tmp_path / "report" / "index.html").is_file()


@pytest.mark.parametrize("preset", ["imagenette-xresnet50-128", "imagewoof-xresnet50-128"])
def test_leaderboard_presets_follow_the_recipe(preset):
    from learnact.study import load_preset

    cfg = load_preset(preset)
    keys = ("model", "image_size", "batch_size", "epochs", "seeds")
    assert [cfg.get(k) for k in keys] == ["xresnet50", 128, 64, 5, 5]
    assert (cfg.get("augment"), cfg.get("label_smoothing")) == ("rrc_flip", 0.1)
    assert cfg.activations == ("relu", "mish", "dp_relu", "dual_line")
    assert "Needs a GPU" in cfg.description and "departs" in cfg.description


@pytest.mark.slow
def test_the_leaderboard_preset_runs_on_the_cpu_with_a_train_limit(tmp_path, cache, capsys):
    """The preset as users call it, on a stand-in imagenette2-160 in --data-dir."""
    write_image_folder(tmp_path / "data" / "imagenette2-160", classes=10, train_per_class=2,
                       val_per_class=1)
    db = tmp_path / "r.db"
    code = main(["study", "--preset", "imagenette-xresnet50-128", "--data-dir",
                 str(tmp_path / "data"), "--train-limit", "10", "--image-size", "32",
                 "--epochs", "1", "--seeds", "1", "--activations", "dual_line", "--device", "cpu",
                 "--db", str(db)])
    out = capsys.readouterr()
    assert code == 0, out.err
    with sqlite3.connect(db) as conn:
        status, settings = conn.execute("SELECT status, settings FROM runs").fetchone()
    import json

    s = json.loads(settings)
    assert status == "done"
    assert (s["augment"], s["label_smoothing"], s["image_size"], s["batch_size"]) == (
        "rrc_flip", 0.1, 32, 64)


def test_files_that_are_not_jpeg_or_png_are_reported(tmp_path, cache, caplog):
    root = write_image_folder(tmp_path / "imgs")
    (root / "train" / "class_1" / "photo.webp").write_bytes(b"RIFF")
    (root / "train" / ".DS_Store").write_bytes(b"")  # hidden files are not reported
    with caplog.at_level("WARNING", logger="learnact.data.images"):
        classes, train, _ = images.scan_image_folder(root)
    assert len(train) == 24 and classes == ("class_0", "class_1", "class_2")
    assert "left out 1 file(s) that are not .jpg/.jpeg/.png" in caplog.text
    assert "photo.webp" in caplog.text
