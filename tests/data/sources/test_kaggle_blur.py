"""The Kaggle blur source: pairs by scene, unpaired files listed."""

from pathlib import Path

import cv2
import pytest

from conftest import load_source, shared
from deblur.core.errors import DataError


def test_kaggle_layout_pairs_by_scene(kaggle_folder: Path):
    splits = load_source("kaggle_blur", kaggle_folder)
    assert splits.paired and splits.channels == 3
    assert len(splits.train) + len(splits.val) + len(splits.test) == 10  # 5 scenes x (motion + defocus)
    scenes = [{n.rsplit("_", 1)[0] for n in s.names} for s in (splits.train, splits.val, splits.test)]
    assert not (scenes[0] & scenes[1] or scenes[0] & scenes[2] or scenes[1] & scenes[2])
    motion = load_source("kaggle_blur", kaggle_folder, blur="motion")
    assert all(n.endswith("_M") for s in (motion.train, motion.test) for n in s.names)


def test_kaggle_unpaired_files_are_listed(kaggle_folder: Path):
    (kaggle_folder / "sharp" / "1_NIKON-D3400-35MM_S.jpg").unlink()
    (kaggle_folder / "motion_blurred" / "notes.png").write_bytes(b"")
    with pytest.raises(DataError) as info:
        load_source("kaggle_blur", kaggle_folder)
    msg = str(info.value)
    assert "1_NIKON-D3400-35MM_M.jpg" in msg and "notes.png" in msg and "unpaired" in msg


def test_shared_kaggle_subset_loads():
    splits = load_source("kaggle_blur", shared("kaggle-blur-subset"))
    assert sum(len(s) for s in (splits.train, splits.val, splits.test)) == 16
    sharp = splits.train.sharp[0]
    assert sharp.ndim == 3 and min(sharp.shape[:2]) > 100
    assert cv2.PSNR(sharp, splits.train.blurred[0]) < 25  # hand-held pairs: not pixel-aligned
