"""deblur.data.packed: a pack's reader refuses to be misread (a corrupted byte, a truncated or replaced shard,
a shard outside the pack, a damaged manifest), and a corrupt shard met mid-run is skipped and logged once."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import DEEP, finishes, pack_cli, packed_photos
from deblur.config import from_dict
from deblur.core.errors import DataError
from deblur.data import packed
from deblur.data.base import SOURCES, load_splits
from deblur.data.skips import SKIPS


def _manifest(out: Path) -> dict:
    return json.loads((out / "pack.json").read_text())


def _first_shard(pack: Path) -> Path:
    return pack / json.loads((pack / "pack.json").read_text())["shards"][0]["file"]


def _read_all(pack: Path) -> None:
    splits = SOURCES.get("folder").load(str(pack), seed=0, val_split=0.25, test_split=0.25)
    for split in ("train", "val", "test"):
        list(splits.get(split).sharp)


@pytest.mark.parametrize("shard", ["/dev/zero", "../elsewhere.npy", "shard-00000.npy/../../x"])
def test_a_pack_shard_outside_the_pack_is_refused(tmp_path: Path, photo_folder: Path, shard: str):
    out = tmp_path / "pack"
    pack_cli(photo_folder, out)
    manifest = _manifest(out)
    manifest["shards"][0].update({"file": shard, "bytes": 0})  # /dev/zero: size 0, then hashed for ever
    (out / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"not a shard-NNNNN\.npy file"):
        packed.load(out, "folder", seed=0, val_split=0.25, test_split=0.25)


def test_a_pack_item_beyond_its_shard_is_refused(tmp_path: Path, photo_folder: Path):
    out = tmp_path / "pack"
    pack_cli(photo_folder, out)
    manifest = _manifest(out)
    manifest["items"][0]["sharp"]["shape"] = [-1, 1, 1]  # np.fromfile(count=-1) read the whole shard
    (out / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="does not lie in its shard"):
        packed.load(out, "folder", seed=0, val_split=0.25, test_split=0.25)


def test_a_deep_or_fifo_pack_manifest_is_one_line(tmp_path: Path, photo_folder: Path):
    out = tmp_path / "pack"
    pack_cli(photo_folder, out)
    (out / "pack.json").write_text(DEEP)  # was `internal error: RecursionError`
    with pytest.raises(DataError, match="nested too deeply"):
        packed.read_manifest(out)
    (out / "pack.json").unlink()
    os.mkfifo(out / "pack.json")
    with pytest.raises(DataError, match="not a regular file"):
        finishes(lambda: packed.read_manifest(out))


@pytest.mark.parametrize("keep_mtime", [False, True])
def test_a_shard_rewritten_with_zeros_mid_training_is_never_read(tmp_path: Path, photo_folder: Path,
                                                                 keep_mtime: bool):
    import os

    out, splits = packed_photos(tmp_path, photo_folder)
    train = splits.train.sharp
    assert train[0].any()  # verified and read once: the checksum was checked on first read only
    shard = next(out.glob("shard-*.npy"))
    st = shard.stat()
    with open(shard, "r+b") as f:  # same size, same header, every pixel zero
        f.seek(128)
        f.write(bytes(st.st_size - 128))
    if keep_mtime:  # a rewrite that sets the mtime back still changes ctime
        os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(DataError, match="changed since the training started"):
        train[1]  # read zeros, and trained to PSNR 60


def test_a_shard_replaced_by_the_same_bytes_still_reads(tmp_path: Path, photo_folder: Path):
    out, splits = packed_photos(tmp_path, photo_folder)
    first = splits.train.sharp[0]
    shard = next(out.glob("shard-*.npy"))
    data = shard.read_bytes()
    shard.unlink()
    shard.write_bytes(data)  # a new inode, the same content: hashed again, and accepted
    assert np.array_equal(splits.train.sharp[0], first)


def test_a_manifest_item_in_the_shards_header_room_is_refused_before_training(tmp_path: Path, photo_folder: Path):
    from deblur.data import packed

    out, splits = packed_photos(tmp_path, photo_folder)
    del splits
    manifest = json.loads((out / "pack.json").read_text())
    shard = manifest["shards"][0]
    item = manifest["items"][0]["sharp"]
    size = item["shape"][0] * item["shape"][1] * item["shape"][2]
    item["offset"] = shard["bytes"] - size  # within the file's size, but past the data (the header is 128 bytes)
    (out / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="the shard disagree"):
        packed.load(out, "folder", seed=0, val_split=0.0, test_split=0.0)


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


def test_a_corrupted_byte_is_named_in_one_line(tmp_path: Path, photo_folder: Path):
    pack = pack_cli(photo_folder, tmp_path / "pack")
    shard = _first_shard(pack)
    data = bytearray(shard.read_bytes())
    data[-100] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(DataError) as err:
        _read_all(pack)
    message = str(err.value)
    assert "\n" not in message and str(shard) in message and "checksum" in message


def test_a_truncated_shard_is_named(tmp_path: Path, photo_folder: Path):
    pack = pack_cli(photo_folder, tmp_path / "pack")
    shard = _first_shard(pack)
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated") as err:
        _read_all(pack)
    assert str(shard) in str(err.value)


def test_a_pack_of_another_format_version_is_refused(tmp_path: Path, photo_folder: Path):
    pack = pack_cli(photo_folder, tmp_path / "pack")
    manifest = json.loads((pack / "pack.json").read_text())
    manifest["version"] = packed.PACK_VERSION + 1
    (pack / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"pack format .* pack the data again"):
        _read_all(pack)
    manifest["version"] = packed.PACK_VERSION
    (pack / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match=r"set data\.source: folder"):
        SOURCES.get("pairs").load(str(pack), seed=0, val_split=0.2, test_split=0.2)


def test_a_damaged_manifest_is_one_line(tmp_path: Path, photo_folder: Path):
    pack = pack_cli(photo_folder, tmp_path / "pack")
    manifest = json.loads((pack / "pack.json").read_text())
    del manifest["items"][0]["sharp"]
    (pack / "pack.json").write_text(json.dumps(manifest))
    with pytest.raises(DataError, match="damaged pack manifest"):
        _read_all(pack)


def test_a_corrupt_shard_is_logged_once_with_its_image_count(tmp_path: Path, photo_folder: Path, caplog):
    pack = tmp_path / "pack"
    packed.pack(photo_folder, pack, "folder", shard_mb=0.02)  # several images per shard, several shards
    manifest = json.loads((pack / "pack.json").read_text())
    held = sum(1 for it in manifest["items"] if it["sharp"]["shard"] == 0)
    assert 1 < held < len(manifest["items"])
    cfg = from_dict({"data": {"source": "folder", "path": str(pack), "crop": 16, "batch_size": 4,
                              "val_split": 0.0, "test_split": 0.0,
                              "degradation": {"kind": "gaussian", "sigma": 1.0}}})
    splits = load_splits(cfg.data, cfg.seed)  # start-up: sizes checked, nothing hashed yet
    shard = pack / manifest["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[-50] ^= 0x01
    shard.write_bytes(bytes(data))
    SKIPS.take()
    caplog.set_level(logging.WARNING, logger="deblur.data")
    from deblur.data.sequence import TrainBatches

    seq = TrainBatches(splits.train, cfg.data, 0, False)
    sizes = [len(seq[i][1]) for i in range(seq.steps)]
    assert sum(sizes) == len(splits.train)  # the other shards' images stood in
    assert SKIPS.take() >= held
    lines = [r.getMessage() for r in caplog.records if r.name == "deblur.data"]
    assert len(lines) == 1, lines
    assert str(shard) in lines[0] and f"{held} images unreadable" in lines[0] and "[" not in lines[0]
