"""deblur.data.base: deterministic, disjoint splits, and images resized and converted to the channel count asked for."""

from pathlib import Path

from deblur.config import from_dict
from deblur.data.base import load_splits, split_indices


def test_split_indices_are_deterministic_and_disjoint():
    a = split_indices(50, 0.1, 0.2, seed=3)
    assert a == split_indices(50, 0.1, 0.2, seed=3)
    assert a != split_indices(50, 0.1, 0.2, seed=4)
    train, val, test = (set(x) for x in a)
    assert not (train & val or train & test or val & test) and len(train | val | test) == 50


def test_finalize_resizes_and_converts_channels(photo_folder: Path):
    cfg = from_dict({"data": {"source": "folder", "path": str(photo_folder), "resize": [16, 20], "channels": 1}})
    splits = load_splits(cfg.data, cfg.seed)
    # the folder is read on demand (an ImageStore), so ask for shapes and an image, not an array
    assert splits.channels == 1 and set(splits.train.shapes()) == {(16, 20, 1)}
    assert splits.train.sharp[0].shape == (16, 20, 1)
