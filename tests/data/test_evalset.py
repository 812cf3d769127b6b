"""deblur.data.evalset: fixed, recorded test sets, bit-identical streamed or in memory and to the code before
streaming (issue 14), scored in batches that fit."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import noisy_image, shared, stream_cfg, stream_digest, truncate, write_image
from deblur.data.base import ImageSet, load_splits
from deblur.data.evalset import EvalSet

# from commit 7af70a2 (see the module docstring), KERAS_BACKEND=tensorflow
EXPECTED: dict[str, str] = {
    "folder_tiles/val": "6:0d992ddab733fba10eb7e89e0426e960",
    "folder_tiles/test": "6:389c48d07af2aaa8632ca6e25167696b",
    "folder_whole_gray_resized/val": "1:f3d31bd5a5f7a992450255963d09dc90",
    "folder_whole_gray_resized/test": "1:e03dfe8b3cf4cd437043aec34594f7bd",
    "folder_whole_motion/val": "3:b3a5349e198600f96698d87fd3240dd0",
    "folder_whole_motion/test": "3:500d5aa4a7d573c7e5b07e1aa527c03a",
    "pairs_tiles/val": "4:bc8a6377e68ac6f22c972b7251551f81",
    "pairs_tiles/test": "3:4232cc7d4d2e4f5d5068e47478e07d8f",
    "pairs_whole/val": "2:c547ecf9dda85652f9d8a132224a59ec",
    "pairs_whole/test": "2:3b453f8aa8e108cc5ff6b22d5e703c64",
    "kaggle_tiles/val": "8:2094b55f2767399bbbb5877d3f4a1526",
    "kaggle_tiles/test": "7:b547feb6d59ba01965cbe3684187f562",
    "combined_tiles/val": "14:c9ebf4fdb337c449bb289ad0ad0a6f19",
    "combined_tiles/test": "12:1ac32ff743784478a687d63d7b0b4fb8",
}

SIZES = [(40, 48), (36, 52), (48, 40), (44, 44), (50, 38), (38, 60), (42, 46), (46, 34), (34, 50), (52, 42)]


def _write_oriented(path: Path, image: np.ndarray, orientation: int) -> None:
    """An image stored sideways with an EXIF orientation tag (JPEG, or a PNG eXIf chunk), via Pillow."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    fmt = "JPEG" if path.suffix == ".jpg" else "PNG"
    kwargs = {"quality": 90} if fmt == "JPEG" else {"compress_level": 3}
    Image.fromarray(image).save(buf, fmt, exif=exif.tobytes(), **kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


def _photo_folder(root: Path, rng: np.random.Generator) -> Path:
    for k, (h, w) in enumerate(SIZES):
        name = root / f"p{k:02d}"
        if k in (1, 6):
            write_image(name.with_suffix(".png"), noisy_image(rng, h, w, 1))  # gray
        elif k == 2:
            write_image(name.with_suffix(".png"), noisy_image(rng, h, w, 4))  # RGBA: alpha dropped
        elif k == 3:
            write_image(name.with_suffix(".png"), noisy_image(rng, h, w).astype(np.uint16) * 257 + 3)  # 16-bit
        elif k == 4:
            _write_oriented(name.with_suffix(".jpg"), noisy_image(rng, h, w), 6)
        elif k == 5:
            _write_oriented(name.with_suffix(".png"), noisy_image(rng, h, w), 8)
        elif k in (7, 8):
            write_image(name.with_suffix(".jpg"), noisy_image(rng, h, w))
        else:
            write_image(name.with_suffix(".png"), noisy_image(rng, h, w))
    return root


def _blur(image: np.ndarray) -> np.ndarray:
    out = cv2.GaussianBlur(image, (5, 5), 0)
    return out if out.ndim == 3 else out[:, :, None]


def _pairs_folder(root: Path, rng: np.random.Generator) -> Path:
    for k, (h, w) in enumerate(SIZES[:8]):
        sharp = noisy_image(rng, h, w, 1 if k == 3 else 3)
        suffix = ".jpg" if k == 5 else ".png"
        write_image(root / "sharp" / f"{k:03d}{suffix}", sharp)
        write_image(root / "blur" / f"{k:03d}{suffix}", _blur(sharp))
    return root


def _kaggle_folder(root: Path, rng: np.random.Generator) -> Path:
    for k, (h, w) in enumerate(SIZES[:7]):
        sharp = noisy_image(rng, h, w)
        write_image(root / "sharp" / f"{k}_PHONE_S.jpg", sharp)
        write_image(root / "motion_blurred" / f"{k}_PHONE_M.jpg", _blur(sharp))
        write_image(root / "defocused_blurred" / f"{k}_PHONE_F.JPG", _blur(_blur(sharp)))
    return root


def _digest(evalset) -> str:
    h = hashlib.sha256()
    n = 0
    for batch in evalset:
        for key in sorted(batch):
            h.update(key.encode())
            h.update(np.ascontiguousarray(batch[key]).tobytes())
        n += 1
    return f"{n}:{h.hexdigest()[:32]}"

CASES = {  # name -> (dataset, data options beyond the common ones)
    "folder_tiles": ("folder", {}),
    "folder_whole_gray_resized": ("folder", {"eval_crop": None, "channels": 1, "resize": [32, 40]}),
    "folder_whole_motion": ("folder", {"eval_crop": None,
                                       "degradation": {"kind": "motion", "length": [3, 7], "noise": [0.0, 0.02]}}),
    "pairs_tiles": ("pairs", {}),
    "pairs_whole": ("pairs", {"eval_crop": None}),
    "kaggle_tiles": ("kaggle_blur", {}),
    "combined_tiles": ("combined", {}),
}

def compute(tmp: Path) -> dict[str, str]:
    """sha256 (and count) of every val and test batch of each case, as evaluation makes them."""
    from deblur.config import from_dict
    from deblur.data.base import load_splits
    from deblur.data.evalset import EvalSet

    folders = {"folder": _photo_folder(tmp / "photos", np.random.default_rng(7)),
               "pairs": _pairs_folder(tmp / "pairs", np.random.default_rng(8)),
               "kaggle_blur": _kaggle_folder(tmp / "kaggle", np.random.default_rng(9))}
    parts = [{"source": "folder", "path": folders["folder"]}, {"source": "pairs", "path": folders["pairs"]},
             {"source": "kaggle_blur", "path": folders["kaggle_blur"]}]
    folders["combined"] = None
    options = {"combined": {"parts": [{**p, "path": str(p["path"])} for p in parts]}}
    out = {}
    for name, (source, extra) in CASES.items():
        data = {"source": source, "path": folders[source] and str(folders[source]),
                "options": options.get(source, {}), "crop": 16, "eval_crop": 16,
                "eval_batch_size": 3, "val_split": 0.3, "test_split": 0.3,
                "degradation": {"kind": "gaussian", "sigma": [0.5, 2.0], "noise": [0.0, 0.02]}, **extra}
        cfg = from_dict({"seed": 3, "data": data})
        splits = load_splits(cfg.data, cfg.seed)
        for split in ("val", "test"):
            evalset = EvalSet(splits.get(split), cfg.data, cfg.seed, split, splits.paired)
            out[f"{name}/{split}"] = _digest(evalset)
    return out


def _eval_digests(path: Path, **data) -> tuple[str, str]:
    out = []
    for in_memory in (False, True):
        cfg = stream_cfg("folder", path, in_memory=in_memory, **data)
        splits = load_splits(cfg.data, cfg.seed)
        out.append(stream_digest(EvalSet(splits.test, cfg.data, cfg.seed, "test", False)))
    return out[0], out[1]


def test_test_sets_are_bit_identical_to_7af70a2(tmp_path):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("digests pinned for the TensorFlow backend")
    assert compute(tmp_path) == EXPECTED


def test_evalset_from_batch_equals_the_tail_of_a_whole_pass(eval_config):
    from deblur.config import load
    from deblur.data.base import load_splits
    from deblur.data.evalset import EvalSet

    cfg = load(eval_config, [])
    images = load_splits(cfg.data, cfg.seed).get("test")
    evalset = EvalSet(images, cfg.data, cfg.seed, "test", False)
    whole = list(evalset)
    assert len(whole) == len(evalset) == 6
    for first in (1, 3, 5):  # batch 1 starts in the middle of the first image's tiles
        tail = list(evalset.from_batch(first))
        assert len(tail) == len(whole) - first
        for a, b in zip(tail, whole[first:], strict=True):
            assert a.keys() == b.keys()
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])


def test_large_whole_images_of_one_size_are_scored_one_at_a_time_in_tiles():
    from deblur.config import DataConfig
    from deblur.data.evalset import EvalSet

    photos = ImageSet(sharp=np.zeros((3, 600, 600, 3), np.uint8), names=["a", "b", "c"])
    assert EvalSet(photos, DataConfig(eval_batch_size=32), 0, "test", paired=False).batch == 1
    small = ImageSet(sharp=np.zeros((3, 40, 40, 3), np.uint8), names=["a", "b", "c"])
    assert EvalSet(small, DataConfig(eval_batch_size=32), 0, "test", paired=False).batch == 32


def test_eval_set_is_bit_identical_streamed_or_in_memory(photo_folder):
    streamed, held = _eval_digests(photo_folder)
    assert streamed == held


def test_eval_set_of_real_photos_is_bit_identical(tmp_path):
    photos = sorted(shared("photos").glob("*.jpg"))[:5]
    for p in photos:
        shutil.copy(p, tmp_path / p.name)
    streamed, held = _eval_digests(tmp_path, resize=[72, 96], eval_crop=None, val_split=0.2, test_split=0.4)
    assert streamed == held


def test_validation_batches_are_made_on_demand_in_order(photo_folder):
    cfg = stream_cfg("folder", photo_folder, val_split=0.4)
    splits = load_splits(cfg.data, cfg.seed)
    evalset = EvalSet(splits.val, cfg.data, cfg.seed, "val", False)
    pairs = evalset.pairs(multiple=4)
    whole = [(b["blurred"], b["sharp"]) for b in evalset]
    assert len(pairs) == len(whole) > 1
    assert stream_digest(pairs) == stream_digest(whole) == stream_digest(list(pairs))
    assert stream_digest(pairs) == stream_digest(pairs[i] for i in range(len(pairs)))
    lean = EvalSet(splits.val, cfg.data, cfg.seed, "val", False).pairs(multiple=4)
    lean.budget = 0  # nothing kept: every access makes its batch again, the same
    assert stream_digest(lean[i] for i in reversed(range(len(lean)))) == stream_digest(reversed(whole))


def test_eval_set_skips_and_reports_an_unreadable_image(photo_folder, caplog):
    cfg = stream_cfg("folder", photo_folder, val_split=0.0, test_split=0.5)
    splits = load_splits(cfg.data, cfg.seed)
    whole = EvalSet(splits.test, cfg.data, cfg.seed, "test", False)
    before = sum(len(b["sharp"]) for b in whole)
    bad = splits.test.sharp.label(1)
    truncate(Path(bad))
    evalset = EvalSet(splits.test, cfg.data, cfg.seed, "test", False)
    after = list(evalset)
    assert [label for label, _ in evalset.skipped] == [bad]
    assert "not a readable image" in evalset.skipped[0][1]
    lost = (splits.test.sharp.shape(1)[0] // 16) * (splits.test.sharp.shape(1)[1] // 16)
    assert sum(len(b["sharp"]) for b in after) == before - lost
    assert 1 not in np.concatenate([b["index"] for b in after])
    pairs = evalset.pairs()
    assert len(list(pairs)) == len(pairs)  # validation keeps its batch count
