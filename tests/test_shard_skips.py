"""A corrupt pack shard met mid-run: all its images skipped, one log line naming it and its image count."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from deblur.config import from_dict
from deblur.data import packed
from deblur.data.base import load_splits
from deblur.data.skips import SKIPS
from deblur.data.sources import folder  # noqa: F401  (registers the source packed below)


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
