"""The pairs source: flat and GoPro layouts, its own test split, size mismatches and orphans named."""

from pathlib import Path

import pytest

from conftest import load_source, smooth_image, write_png
from deblur.core.errors import DataError


def test_pairs_flat_gopro_and_own_split(tmp_path: Path, rng):
    flat = tmp_path / "flat"
    for i in range(6):
        im = smooth_image(rng, 24, 24)
        write_png(flat / "sharp" / f"{i}.png", im)
        write_png(flat / "blur" / f"{i}.png", 255 - im)
    splits = load_source("pairs", flat)
    assert splits.paired and sum(len(s) for s in (splits.train, splits.val, splits.test)) == 6
    gopro = tmp_path / "GOPRO"
    for part, seqs in (("train", ["A", "B", "C", "D"]), ("test", ["E"])):
        for seq in seqs:
            for f in range(3):
                im = smooth_image(rng, 24, 24)
                write_png(gopro / part / seq / "sharp" / f"{f:06d}.png", im)
                write_png(gopro / part / seq / "blur" / f"{f:06d}.png", 255 - im)  # never identical twins
    g = load_source("pairs", gopro)
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
        load_source("pairs", root)
    write_png(root / "blur" / "a.png", smooth_image(rng, 24, 24))
    write_png(root / "blur" / "orphan.png", smooth_image(rng, 24, 24))
    with pytest.raises(DataError, match=r"orphan\.png"):
        load_source("pairs", root)
