"""The combined source: each part keeps its split, duplicate sharp shots (same pixels) are dropped, errors name
the part."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import noisy_image, write_image
from deblur.config import from_dict
from deblur.data.base import load_splits
from deblur.data.sources import SOURCES


def _combined(parts: list) -> object:
    return from_dict({"data": {"source": "combined", "val_split": 0.2, "test_split": 0.2,
                               "options": {"parts": parts}}})


def test_combined_drops_files_with_the_same_pixels_decoding_only_equal_sizes(tmp_path, monkeypatch):
    """As at 7af70a2, a duplicate is the same pixels, not the same path: a byte copy and a re-encoding
    of one photo in another part are dropped; images of a size no other image has are never decoded."""
    import deblur.data.store as store_module
    from deblur.data.base import ImageSet
    from deblur.data.sources.combined import _join
    from deblur.data.store import FileStore
    from deblur.imaging.imageio import read_image

    rng = np.random.default_rng(1)
    photo, other, lone = noisy_image(rng, 20, 24), noisy_image(rng, 20, 24), noisy_image(rng, 30, 18)
    write_image(tmp_path / "a" / "photo.png", photo)
    write_image(tmp_path / "a" / "lone.png", lone)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "copy.png").write_bytes((tmp_path / "a" / "photo.png").read_bytes())
    assert cv2.imwrite(str(tmp_path / "b" / "recoded.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR),
                       [cv2.IMWRITE_PNG_COMPRESSION, 9])
    write_image(tmp_path / "b" / "other.png", other)
    decoded: list[str] = []

    def counting(path, *args, **kwargs):
        decoded.append(Path(path).name)
        return read_image(path, *args, **kwargs)

    monkeypatch.setattr(store_module, "read_image", counting)
    part_a = ImageSet(FileStore([tmp_path / "a" / n for n in ("photo.png", "lone.png")]), ["photo", "lone"])
    part_b = ImageSet(FileStore([tmp_path / "b" / n for n in ("copy.png", "recoded.png", "other.png")]),
                      ["copy", "recoded", "other"])
    joined = _join([("a", part_a), ("b", part_b)], 3)
    assert joined.names == ["a/photo", "a/lone", "b/other"]
    assert sorted(decoded) == ["other.png", "photo.png", "recoded.png"]  # not lone (unique size) nor the copy
    in_memory = _join([("a", part_a.in_memory()), ("b", part_b.in_memory())], 3)
    assert in_memory.names == joined.names and isinstance(in_memory.sharp, list)


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
