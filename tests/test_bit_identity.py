"""Test sets stay bit-identical to the code before streaming (issue 14): pinned digests.

Small datasets are made on the fly (seeded NumPy images of different sizes, gray, RGBA, 16-bit,
JPEG, EXIF-rotated JPEG and PNG), loaded through `load_splits` and degraded by `EvalSet` as
evaluation does; every val and test batch is hashed. The expected digests were computed by running
this same file against commit 7af70a2 (the in-memory code, before streaming):

    git archive 7af70a2 | tar -x -C /tmp/old7af
    PYTHONPATH=/tmp/old7af/src .venv/bin/python tests/test_bit_identity.py

A different digest means a protocol's scores changed: fix the data path, not the digest.
Encoding is deterministic (OpenCV PNG/JPEG and Pillow with fixed settings); the blur runs through
`keras.ops`, whose float results are pinned for the TensorFlow backend.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

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


def _image(rng: np.random.Generator, h: int, w: int, c: int = 3) -> np.ndarray:
    base = rng.random((max(2, h // 6), max(2, w // 6), c)).astype(np.float32)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, c)
    return (np.clip(img + rng.random((h, w, c), dtype=np.float32) * 0.1, 0, 1) * 255).astype(np.uint8)


def _write(path: Path, image: np.ndarray) -> None:
    """PNG or JPEG by suffix, through OpenCV with fixed settings (RGB(A) in)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if path.suffix == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    assert cv2.imwrite(str(path), image, params)


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
            _write(name.with_suffix(".png"), _image(rng, h, w, 1))  # gray
        elif k == 2:
            _write(name.with_suffix(".png"), _image(rng, h, w, 4))  # RGBA: alpha dropped
        elif k == 3:
            _write(name.with_suffix(".png"), _image(rng, h, w).astype(np.uint16) * 257 + 3)  # 16-bit
        elif k == 4:
            _write_oriented(name.with_suffix(".jpg"), _image(rng, h, w), 6)
        elif k == 5:
            _write_oriented(name.with_suffix(".png"), _image(rng, h, w), 8)
        elif k in (7, 8):
            _write(name.with_suffix(".jpg"), _image(rng, h, w))
        else:
            _write(name.with_suffix(".png"), _image(rng, h, w))
    return root


def _blur(image: np.ndarray) -> np.ndarray:
    out = cv2.GaussianBlur(image, (5, 5), 0)
    return out if out.ndim == 3 else out[:, :, None]


def _pairs_folder(root: Path, rng: np.random.Generator) -> Path:
    for k, (h, w) in enumerate(SIZES[:8]):
        sharp = _image(rng, h, w, 1 if k == 3 else 3)
        suffix = ".jpg" if k == 5 else ".png"
        _write(root / "sharp" / f"{k:03d}{suffix}", sharp)
        _write(root / "blur" / f"{k:03d}{suffix}", _blur(sharp))
    return root


def _kaggle_folder(root: Path, rng: np.random.Generator) -> Path:
    for k, (h, w) in enumerate(SIZES[:7]):
        sharp = _image(rng, h, w)
        _write(root / "sharp" / f"{k}_PHONE_S.jpg", sharp)
        _write(root / "motion_blurred" / f"{k}_PHONE_M.jpg", _blur(sharp))
        _write(root / "defocused_blurred" / f"{k}_PHONE_F.JPG", _blur(_blur(sharp)))
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


def test_test_sets_are_bit_identical_to_7af70a2(tmp_path):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("digests pinned for the TensorFlow backend")
    assert compute(tmp_path) == EXPECTED


def test_combined_drops_files_with_the_same_pixels_decoding_only_equal_sizes(tmp_path, monkeypatch):
    """As at 7af70a2, a duplicate is the same pixels, not the same path: a byte copy and a re-encoding
    of one photo in another part are dropped; images of a size no other image has are never decoded."""
    import deblur.data.store as store_module
    from deblur.data.base import ImageSet
    from deblur.data.sources.combined import _join
    from deblur.data.store import FileStore
    from deblur.imaging.imageio import read_image

    rng = np.random.default_rng(1)
    photo, other, lone = _image(rng, 20, 24), _image(rng, 20, 24), _image(rng, 30, 18)
    _write(tmp_path / "a" / "photo.png", photo)
    _write(tmp_path / "a" / "lone.png", lone)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "copy.png").write_bytes((tmp_path / "a" / "photo.png").read_bytes())
    assert cv2.imwrite(str(tmp_path / "b" / "recoded.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR),
                       [cv2.IMWRITE_PNG_COMPRESSION, 9])
    _write(tmp_path / "b" / "other.png", other)
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


if __name__ == "__main__":  # print the digests (run against the old tree to pin them)
    with tempfile.TemporaryDirectory() as d:
        print(json.dumps(compute(Path(d)), indent=4))
