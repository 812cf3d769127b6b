"""`deblur pack`: packs that read back as the same names, splits and pixels; overwrite replaces only a pack."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import cli_error, invoke, pack_cli, packed_photos, smooth_image, write_png
from deblur.data import packed
from deblur.data.base import SOURCES


def _same(original, pack) -> None:
    """Two Splits with the same names, pixels, channels and pairing in every split."""
    assert (original.channels, original.paired) == (pack.channels, pack.paired)
    for split in ("train", "val", "test"):
        a, b = original.get(split), pack.get(split)
        assert a.names == b.names, split
        for i in range(len(a)):
            assert np.array_equal(a.sharp[i], b.sharp[i])
            if original.paired:
                assert np.array_equal(a.blurred[i], b.blurred[i])


def test_pack_overwrite_deletes_only_the_packs_own_files(tmp_path: Path, photo_folder: Path):
    out = tmp_path / "pack"
    pack_cli(photo_folder, out)
    assert (out / packed.PACK_MARKER).is_file()
    (out / "shard-notes.npy").write_bytes(b"mine")  # named like a shard: was deleted
    line = cli_error(invoke("pack", photo_folder, out, "--overwrite"))
    assert "shard-notes.npy" in line and (out / "shard-notes.npy").read_bytes() == b"mine"
    (out / "shard-notes.npy").unlink()
    pack_cli(photo_folder, out, "--overwrite")
    # a pack from before the marker: only the shards its manifest lists are its own
    (out / packed.PACK_MARKER).unlink()
    np.save(out / "shard-00042.npy", np.zeros(3, np.uint8))
    assert "shard-00042.npy" in cli_error(invoke("pack", photo_folder, out, "--overwrite"))
    (out / "shard-00042.npy").unlink()
    pack_cli(photo_folder, out, "--overwrite")


def test_pack_overwrite_is_refused_while_a_training_reads_the_pack(tmp_path: Path, photo_folder: Path):
    import gc

    out, splits = packed_photos(tmp_path, photo_folder)
    line = cli_error(invoke("pack", photo_folder, out, "--overwrite"))  # the training died: UnknownError
    assert "in use by another deblur process" in line
    assert splits.train.sharp[0].any()
    del splits
    gc.collect()  # the training is over: its lock went with it
    assert invoke("pack", photo_folder, out, "--overwrite").exit_code == 0


@pytest.mark.parametrize("options", [{}, {"recursive": False}])
def test_folder_pack_gives_the_folders_names_splits_and_pixels(tmp_path: Path, photo_folder: Path, options):
    pack = pack_cli(photo_folder, tmp_path / "pack", "--shard-mb", "0.01")  # several shards
    manifest = json.loads((pack / "pack.json").read_text())
    assert manifest["source"] == "folder" and len(manifest["shards"]) > 1
    assert all(len(s["sha256"]) == 64 for s in manifest["shards"])
    folder = SOURCES.get("folder")
    for seed in (0, 7):
        kw = dict(seed=seed, val_split=0.25, test_split=0.25, **options)
        _same(folder.load(str(photo_folder), **kw), folder.load(str(pack), **kw))


def test_pairs_with_own_test_folder_and_sequences_pack_alike(tmp_path: Path, rng):
    root = tmp_path / "gopro"
    for split, seqs in (("train", ["seqA", "seqB", "seqC"]), ("test", ["seqT"])):
        for seq in seqs:
            for k in range(2):
                sharp = smooth_image(rng, 24, 32)
                write_png(root / split / seq / "sharp" / f"{k:03d}.png", sharp)
                write_png(root / split / seq / "blur" / f"{k:03d}.png", sharp // 2)
    pack = pack_cli(root, tmp_path / "pack")
    pairs = SOURCES.get("pairs")
    original = pairs.load(str(root), seed=1, val_split=0.34, test_split=0.2)
    from_pack = pairs.load(str(pack), seed=1, val_split=0.34, test_split=0.2)
    _same(original, from_pack)
    assert from_pack.test.names == ["seqT/000", "seqT/001"] and "its own train/ and test/" in from_pack.description


@pytest.mark.parametrize("blur", ["motion", "both"])
def test_kaggle_pack_keeps_scenes_together_and_stores_a_sharp_shot_once(tmp_path: Path, kaggle_folder: Path, blur):
    pack = pack_cli(kaggle_folder, tmp_path / "pack")
    manifest = json.loads((pack / "pack.json").read_text())
    assert manifest["source"] == "kaggle_blur" and len(manifest["items"]) == 10
    assert len({(it["sharp"]["shard"], it["sharp"]["offset"]) for it in manifest["items"]}) == 5
    kaggle = SOURCES.get("kaggle_blur")
    kw = dict(seed=2, val_split=0.2, test_split=0.2, blur=blur)
    _same(kaggle.load(str(kaggle_folder), **kw), kaggle.load(str(pack), **kw))


def test_pack_refuses_to_overwrite_and_replaces_only_a_pack(tmp_path: Path, photo_folder: Path):
    pack = pack_cli(photo_folder, tmp_path / "pack")
    assert "--overwrite" in cli_error(invoke("pack", photo_folder, pack))
    pack_cli(photo_folder, pack, "--overwrite", "--shard-mb", "0.01")
    assert len(json.loads((pack / "pack.json").read_text())["shards"]) > 1
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    assert "not a deblur pack" in cli_error(invoke("pack", photo_folder, other, "--overwrite"))
    assert (other / "notes.txt").read_text() == "keep"
    assert "--source" in cli_error(invoke("pack", photo_folder, tmp_path / "x", "--source", "cifar10"))
