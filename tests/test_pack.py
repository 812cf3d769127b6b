"""`deblur pack`: shards that read back as the same names, splits and pixels, and refuse to be misread."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import cli_error, invoke, smooth_image, write_png
from deblur.core.errors import DataError
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


def _pack(data: Path, out: Path, *extra: object) -> Path:
    result = invoke("pack", data, out, *extra)
    assert result.exit_code == 0, result.output
    return out


@pytest.mark.parametrize("options", [{}, {"recursive": False}])
def test_folder_pack_gives_the_folders_names_splits_and_pixels(tmp_path: Path, photo_folder: Path, options):
    pack = _pack(photo_folder, tmp_path / "pack", "--shard-mb", "0.01")  # several shards
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
    pack = _pack(root, tmp_path / "pack")
    pairs = SOURCES.get("pairs")
    original = pairs.load(str(root), seed=1, val_split=0.34, test_split=0.2)
    from_pack = pairs.load(str(pack), seed=1, val_split=0.34, test_split=0.2)
    _same(original, from_pack)
    assert from_pack.test.names == ["seqT/000", "seqT/001"] and "its own train/ and test/" in from_pack.description


@pytest.mark.parametrize("blur", ["motion", "both"])
def test_kaggle_pack_keeps_scenes_together_and_stores_a_sharp_shot_once(tmp_path: Path, kaggle_folder: Path, blur):
    pack = _pack(kaggle_folder, tmp_path / "pack")
    manifest = json.loads((pack / "pack.json").read_text())
    assert manifest["source"] == "kaggle_blur" and len(manifest["items"]) == 10
    assert len({(it["sharp"]["shard"], it["sharp"]["offset"]) for it in manifest["items"]}) == 5
    kaggle = SOURCES.get("kaggle_blur")
    kw = dict(seed=2, val_split=0.2, test_split=0.2, blur=blur)
    _same(kaggle.load(str(kaggle_folder), **kw), kaggle.load(str(pack), **kw))


def test_pack_refuses_to_overwrite_and_replaces_only_a_pack(tmp_path: Path, photo_folder: Path):
    pack = _pack(photo_folder, tmp_path / "pack")
    assert "--overwrite" in cli_error(invoke("pack", photo_folder, pack))
    _pack(photo_folder, pack, "--overwrite", "--shard-mb", "0.01")
    assert len(json.loads((pack / "pack.json").read_text())["shards"]) > 1
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    assert "not a deblur pack" in cli_error(invoke("pack", photo_folder, other, "--overwrite"))
    assert (other / "notes.txt").read_text() == "keep"
    assert "--source" in cli_error(invoke("pack", photo_folder, tmp_path / "x", "--source", "cifar10"))


def test_interrupted_pack_leaves_no_manifest(tmp_path: Path, photo_folder: Path, monkeypatch):
    flush = packed._ShardWriter.flush

    def fail_on_second(self):
        if self.shards:
            raise KeyboardInterrupt
        flush(self)

    monkeypatch.setattr(packed._ShardWriter, "flush", fail_on_second)
    out = tmp_path / "pack"
    with pytest.raises(KeyboardInterrupt):
        packed.pack(photo_folder, out, "folder", shard_mb=0.01)
    assert not (out / "pack.json").exists()
    assert sorted(p.name for p in out.iterdir()) == [".deblur-pack", "shard-00000.npy"]  # no temporaries either
    assert not packed.is_pack(out)


def _first_shard(pack: Path) -> Path:
    return pack / json.loads((pack / "pack.json").read_text())["shards"][0]["file"]


def _read_all(pack: Path) -> None:
    splits = SOURCES.get("folder").load(str(pack), seed=0, val_split=0.25, test_split=0.25)
    for split in ("train", "val", "test"):
        list(splits.get(split).sharp)


def test_a_corrupted_byte_is_named_in_one_line(tmp_path: Path, photo_folder: Path):
    pack = _pack(photo_folder, tmp_path / "pack")
    shard = _first_shard(pack)
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        _read_all(pack)
    message = str(err.value)
    assert "\n" not in message and str(shard) in message and "checksum" in message


def test_a_truncated_shard_is_named(tmp_path: Path, photo_folder: Path):
    pack = _pack(photo_folder, tmp_path / "pack")
    shard = _first_shard(pack)
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated") as err:
        _read_all(pack)
    assert str(shard) in str(err.value)


def test_a_pack_of_another_format_version_is_refused(tmp_path: Path, photo_folder: Path):
    pack = _pack(photo_folder, tmp_path / "pack")
    manifest = json.loads((pack / "pack.json").read_text())
    manifest["version"] = packed.PACK_VERSION + 1
    (pack / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"pack format .* pack the data again"):
        _read_all(pack)
    manifest["version"] = packed.PACK_VERSION
    (pack / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"set data\.source: folder"):
        SOURCES.get("pairs").load(str(pack), seed=0, val_split=0.2, test_split=0.2)


def test_train_one_epoch_from_a_pack(tmp_path: Path, photo_folder: Path):
    pack = _pack(photo_folder, tmp_path / "pack")
    cfg = {
        "name": "packed", "seed": 3,
        "data": {"source": "folder", "path": str(pack), "crop": 16, "eval_crop": 16, "batch_size": 4,
                 "val_split": 0.25, "test_split": 0.25, "degradation": {"kind": "gaussian", "sigma": 1.0}},
        "model": {"type": "unet", "depth": 1, "base_filters": 2, "residual": True},
        "train": {"epochs": 1, "steps_per_epoch": 1, "evaluate_after": False,
                  "reduce_lr": {"enabled": False}, "early_stopping": {"enabled": False}},
    }
    config = tmp_path / "packed.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    result = invoke("train", "-c", config, "--run-dir", run)
    assert result.exit_code == 0, result.output
    assert f"pack {pack}" in result.output and (run / "best.keras").is_file()


def test_a_damaged_manifest_is_one_line(tmp_path: Path, photo_folder: Path):
    pack = _pack(photo_folder, tmp_path / "pack")
    manifest = json.loads((pack / "pack.json").read_text())
    del manifest["items"][0]["sharp"]
    (pack / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="damaged pack manifest"):
        _read_all(pack)
