import gzip
import re
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import idx_bytes, shared, smooth_image, write_png
from deblur.config import from_dict
from deblur.core.errors import DataError
from deblur.data.base import load_splits, split_indices
from deblur.data.sources import SOURCES


def _load(source: str, path, **options):
    return SOURCES.get(source).load(None if path is None else str(path), seed=1, val_split=0.2,
                                    test_split=0.2, **options)


def test_split_indices_are_deterministic_and_disjoint():
    a = split_indices(50, 0.1, 0.2, seed=3)
    assert a == split_indices(50, 0.1, 0.2, seed=3)
    assert a != split_indices(50, 0.1, 0.2, seed=4)
    train, val, test = (set(x) for x in a)
    assert not (train & val or train & test or val & test) and len(train | val | test) == 50


@pytest.mark.parametrize("fixture", ["cifar_folder", "cifar_tarball"])
def test_cifar_reads_folder_and_archive(fixture, request):
    splits = _load("cifar10", request.getfixturevalue(fixture))
    assert len(splits.train) + len(splits.val) == 20 and len(splits.test) == 6
    assert splits.train.sharp.shape[1:] == (32, 32, 3) and splits.channels == 3


def test_cifar_channel_planar_layout_is_decoded(tmp_path: Path):
    import io
    import pickle

    from deblur.data.sources.cifar10 import read_batch

    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, :, :, 0] = 200  # red plane
    data = image.transpose(0, 3, 1, 2).reshape(1, -1)
    out = read_batch(io.BytesIO(pickle.dumps({b"data": data, b"labels": [1]}, protocol=2)), "x")
    assert out[0, 5, 5].tolist() == [200, 0, 0]


def test_cifar_refuses_code_in_pickles(cifar_folder: Path, pickle_bomb: bytes):
    (cifar_folder / "data_batch_1").write_bytes(pickle_bomb)
    with pytest.raises(DataError, match=r"refusing to load (posix|os)\.system"):
        _load("cifar10", cifar_folder)
    assert not Path("/tmp/deblur-pwned").exists()


def test_cifar_offline_error_says_where_to_put_the_file(tmp_path: Path, monkeypatch):
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def offline(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(DataError) as info:
        _load("cifar10", None)
    msg = str(info.value)
    assert "cifar-10-python.tar.gz" in msg and str(tmp_path / "keras" / "datasets") in msg and "\n" not in msg


def test_cifar_uses_keras_cache(tmp_path: Path, monkeypatch, cifar_folder: Path):
    cache = tmp_path / "home" / "datasets"
    cache.mkdir(parents=True)
    cifar_folder.rename(cache / "cifar-10-batches-py")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    assert len(_load("cifar10", None).test) == 6


def test_fashion_mnist_gz_and_plain(fmnist_folder: Path):
    splits = _load("fashion_mnist", fmnist_folder)
    assert len(splits.test) == 5 and splits.channels == 1 and splits.test.sharp.shape[1:] == (28, 28, 1)
    for gz in fmnist_folder.glob("*.gz"):
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    assert len(_load("fashion_mnist", fmnist_folder).test) == 5


def test_fashion_mnist_bad_header_names_file(fmnist_folder: Path):
    bad = fmnist_folder / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(struct.pack(">IIII", 0x0801, 5, 28, 28) + bytes(10)))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: bad IDX magic"):
        _load("fashion_mnist", fmnist_folder)
    bad.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 28, 28)))[:-7]))
    with pytest.raises(DataError, match="truncated"):
        _load("fashion_mnist", fmnist_folder)


def test_missing_dataset_files_are_named(tmp_path: Path):
    with pytest.raises(DataError, match="missing"):
        _load("fashion_mnist", tmp_path)
    with pytest.raises(DataError, match="not found"):
        _load("folder", tmp_path / "nope")


def test_kaggle_layout_pairs_by_scene(kaggle_folder: Path):
    splits = _load("kaggle_blur", kaggle_folder)
    assert splits.paired and splits.channels == 3
    assert len(splits.train) + len(splits.val) + len(splits.test) == 10  # 5 scenes x (motion + defocus)
    scenes = [{n.rsplit("_", 1)[0] for n in s.names} for s in (splits.train, splits.val, splits.test)]
    assert not (scenes[0] & scenes[1] or scenes[0] & scenes[2] or scenes[1] & scenes[2])
    motion = _load("kaggle_blur", kaggle_folder, blur="motion")
    assert all(n.endswith("_M") for s in (motion.train, motion.test) for n in s.names)


def test_kaggle_unpaired_files_are_listed(kaggle_folder: Path):
    (kaggle_folder / "sharp" / "1_NIKON-D3400-35MM_S.jpg").unlink()
    (kaggle_folder / "motion_blurred" / "notes.png").write_bytes(b"")
    with pytest.raises(DataError) as info:
        _load("kaggle_blur", kaggle_folder)
    msg = str(info.value)
    assert "1_NIKON-D3400-35MM_M.jpg" in msg and "notes.png" in msg and "unpaired" in msg


def test_pairs_flat_gopro_and_own_split(tmp_path: Path, rng):
    flat = tmp_path / "flat"
    for i in range(6):
        im = smooth_image(rng, 24, 24)
        write_png(flat / "sharp" / f"{i}.png", im)
        write_png(flat / "blur" / f"{i}.png", 255 - im)
    splits = _load("pairs", flat)
    assert splits.paired and sum(len(s) for s in (splits.train, splits.val, splits.test)) == 6
    gopro = tmp_path / "GOPRO"
    for part, seqs in (("train", ["A", "B", "C", "D"]), ("test", ["E"])):
        for seq in seqs:
            for f in range(3):
                im = smooth_image(rng, 24, 24)
                write_png(gopro / part / seq / "sharp" / f"{f:06d}.png", im)
                write_png(gopro / part / seq / "blur" / f"{f:06d}.png", 255 - im)  # never identical twins
    g = _load("pairs", gopro)
    assert len(g.test) == 3 and all(n.startswith("E/") for n in g.test.names)
    train_seqs = {n.split("/")[0] for n in g.train.names}
    val_seqs = {n.split("/")[0] for n in g.val.names}
    assert val_seqs and not train_seqs & val_seqs  # whole sequences, never split frames


def test_pairs_size_mismatch_and_orphans(tmp_path: Path, rng):
    root = tmp_path / "p"
    write_png(root / "sharp" / "a.png", smooth_image(rng, 24, 24))
    write_png(root / "blur" / "a.png", smooth_image(rng, 20, 24))
    for i in range(3):
        write_png(root / "sharp" / f"b{i}.png", smooth_image(rng, 24, 24))
        write_png(root / "blur" / f"b{i}.png", smooth_image(rng, 24, 24))
    with pytest.raises(DataError, match="sharp twin"):
        _load("pairs", root)
    write_png(root / "blur" / "a.png", smooth_image(rng, 24, 24))
    write_png(root / "blur" / "orphan.png", smooth_image(rng, 24, 24))
    with pytest.raises(DataError, match=r"orphan\.png"):
        _load("pairs", root)


def test_folder_source_reads_subfolders_and_rejects_bad_images(photo_folder: Path):
    splits = _load("folder", photo_folder)
    names = splits.train.names + splits.val.names + splits.test.names
    assert len(names) == 8 and "more/img7" in names
    assert not _load("folder", photo_folder, recursive=False).test.names.count("more/img7")
    (photo_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match=r"broken\.jpg"):
        _load("folder", photo_folder)


def test_samples_are_real_and_held_out():
    splits = _load("samples", None)
    assert splits.test.names == ["chelsea", "coffee"] and splits.val.names == ["rocket"]
    assert not set(splits.train.names) & {"chelsea", "coffee", "rocket"}
    assert splits.test.sharp[0].shape == (300, 451, 3)
    with pytest.raises(DataError, match="unknown sample photo"):
        _load("samples", None, test_images=["lena"])


def test_finalize_resizes_and_converts_channels(photo_folder: Path):
    cfg = from_dict({"data": {"source": "folder", "path": str(photo_folder), "resize": [16, 20], "channels": 1}})
    splits = load_splits(cfg.data, cfg.seed)
    # the folder is read on demand (an ImageStore), so ask for shapes and an image, not an array
    assert splits.channels == 1 and set(splits.train.shapes()) == {(16, 20, 1)}
    assert splits.train.sharp[0].shape == (16, 20, 1)


# ---- the real subsets in ../shared/data (skipped when absent) ------------------------------------

def test_shared_cifar10_subset_loads():
    splits = _load("cifar10", shared("cifar-10-batches-py"))
    assert len(splits.train) + len(splits.val) == 3728 and len(splits.test) == 932
    assert 40 < splits.test.sharp.mean() < 200  # real photos, not zeros


def test_shared_fashion_mnist_subset_loads():
    splits = _load("fashion_mnist", shared("fashion-mnist"))
    assert len(splits.train) + len(splits.val) == 2000 and len(splits.test) == 557


def test_shared_kaggle_subset_loads():
    splits = _load("kaggle_blur", shared("kaggle-blur-subset"))
    assert sum(len(s) for s in (splits.train, splits.val, splits.test)) == 16
    sharp = splits.train.sharp[0]
    assert sharp.ndim == 3 and min(sharp.shape[:2]) > 100
    assert cv2.PSNR(sharp, splits.train.blurred[0]) < 25  # hand-held pairs: not pixel-aligned


def test_more_broken_layouts_are_named(tmp_path: Path, kaggle_folder: Path, cifar_folder: Path, rng):
    import shutil

    shutil.rmtree(kaggle_folder / "defocused_blurred")
    with pytest.raises(DataError, match=r"missing folder\(s\) defocused_blurred/"):
        _load("kaggle_blur", kaggle_folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images found"):
        _load("folder", empty)
    mixed = tmp_path / "mixed"
    for i in range(4):
        write_png(mixed / f"{i}.png", smooth_image(rng, 20, 20))
    (mixed / "notes.txt").write_text("not an image")
    (mixed / ".DS_Store").write_bytes(b"\0\0")
    splits = _load("folder", mixed)
    assert sum(len(s) for s in (splits.train, splits.val, splits.test)) == 4  # other files are ignored
    batch = cifar_folder / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(DataError, match="data_batch_2: not a CIFAR-10 batch"):
        _load("cifar10", cifar_folder)


def test_paths_are_never_given_to_a_shell(tmp_path: Path, rng):
    odd = tmp_path / "a;touch pwned $(touch pwned2) `touch pwned3`"
    for i in range(4):
        write_png(odd / f"{i}.png", smooth_image(rng, 20, 20))
    assert sum(len(s) for s in (_load("folder", odd).train, _load("folder", odd).test)) >= 3
    assert not any(p.name.startswith("pwned") for p in tmp_path.iterdir())
    assert not any(Path.cwd().glob("pwned*"))



def _combined(parts: list) -> object:
    return from_dict({"data": {"source": "combined", "val_split": 0.2, "test_split": 0.2,
                               "options": {"parts": parts}}})


def test_combined_source_keeps_each_parts_split_and_drops_duplicate_sharp_shots(photo_folder: Path,
                                                                                  kaggle_folder: Path):
    cfg = _combined([{"source": "folder", "path": str(photo_folder)},
                     {"source": "kaggle_blur", "path": str(kaggle_folder), "options": {"blur": "both"}}])
    combined = load_splits(cfg.data, cfg.seed)
    kaggle = SOURCES.get("kaggle_blur").load(str(kaggle_folder), seed=cfg.seed, val_split=0.2, test_split=0.2)
    folder = SOURCES.get("folder").load(str(photo_folder), seed=cfg.seed, val_split=0.2, test_split=0.2)
    assert not combined.paired and combined.train.blurred is None
    for split in ("train", "val", "test"):
        names = combined.get(split).names
        folder_names = sorted(n for n in names if n.startswith("folder/"))
        assert folder_names == sorted(f"folder/{n}" for n in folder.get(split).names)
        # each Kaggle scene's sharp shot once, not once per blurred twin (motion and defocus)
        scenes = sorted(n.split("/")[1].rsplit("_", 1)[0] for n in names if n.startswith("kaggle_blur/"))
        assert scenes == sorted({n.rsplit("_", 1)[0] for n in kaggle.get(split).names})
    assert len(combined.test) and len(combined.train) == 4 + 3  # 8 photos and 5 scenes, 60/20/20


@pytest.mark.parametrize("parts, expected", [
    ([], "list at least one source"),
    ([{"path": "x"}], "parts[0]: expected a mapping"),
    ([{"source": "samples", "colour": 1}], "parts[0].colour: unknown key"),
    ([{"source": "sampels"}], "parts[0].source"),
    ([{"source": "samples", "options": {"test_image": ["chelsea"]}}], "did you mean 'test_images'"),
    ([{"source": "combined", "options": {"parts": []}}], "cannot contain another"),
])
def test_combined_source_errors_name_the_part(parts, expected):
    from deblur.core.errors import DeblurError

    cfg = _combined(parts)
    with pytest.raises(DeblurError, match=re.escape(expected)):
        load_splits(cfg.data, cfg.seed)
