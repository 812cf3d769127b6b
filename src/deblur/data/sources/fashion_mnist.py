"""Fashion-MNIST from the four official IDX files (gzipped or not).

Lookup order as for CIFAR-10: `data.path`, Keras's cache, then a download through Keras. The IDX
header is checked (magic number, dimensions, length) so a damaged file is named, not misread.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from deblur.core.errors import DataError
from deblur.data.base import SOURCES, ImageSet, Source, Splits, describe_counts, split_indices
from deblur.data.sources._download import download, keras_cache

BASE_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}
CACHE_SUBDIR = "datasets/fashion-mnist"


def hint() -> str:
    files = ", ".join(f + ".gz" for f in FILES.values())
    return (f"Put the IDX files ({files}, from {BASE_URL}) in {keras_cache() / 'fashion-mnist'}, "
            "or set data.path to the folder that holds them.")



def read_idx_images(path: Path) -> np.ndarray:
    """Read an IDX3 uint8 image file (magic 0x00000803) into N x H x W x 1."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if len(raw) < 16:
        raise DataError(f"{path}: too short for an IDX header")
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 0x00000803:
        raise DataError(f"{path}: bad IDX magic number 0x{magic:08x} (expected 0x00000803 for images)")
    if len(raw) - 16 != n * rows * cols:
        raise DataError(f"{path}: header says {n} images of {rows}x{cols}, but the file holds "
                        f"{len(raw) - 16} bytes of pixels (truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols, 1).copy()


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx3-ubyte", ".idx3-ubyte")):
        if (folder / name).is_file():
            return folder / name
    return None


def locate(path: str | None) -> dict[str, Path]:
    folders = []
    if path:
        p = Path(path).expanduser()
        if not p.is_dir():
            raise DataError(f"{p}: not a folder. {hint()}")
        folders += [p, p / "fashion-mnist"]
    else:
        folders.append(keras_cache() / "fashion-mnist")
    for folder in folders:
        found = {split: _find(folder, stem) for split, stem in FILES.items()}
        complete = {split: file for split, file in found.items() if file is not None}
        if len(complete) == len(found):
            return complete
    if path:
        missing = [stem for stem in FILES.values() if not _find(folders[0], stem)]
        raise DataError(f"{path}: missing {', '.join(missing)}(.gz). {hint()}")
    return {split: download(stem + ".gz", BASE_URL + stem + ".gz", CACHE_SUBDIR, hint())
            for split, stem in FILES.items()}


def options() -> None:
    """Fashion-MNIST has no options: its split and image size are fixed by the dataset."""


def load(path: str | None, *, seed: int, val_split: float, test_split: float) -> Splits:
    files = locate(path)
    train_all = read_idx_images(files["train"])
    test = read_idx_images(files["test"])
    tr, va, _ = split_indices(len(train_all), val_split, 0.0, seed)
    names = [f"train_{i:05d}" for i in range(len(train_all))]
    splits = Splits(train=ImageSet(train_all, names).subset(tr), val=ImageSet(train_all, names).subset(va),
                    test=ImageSet(test, [f"test_{i:05d}" for i in range(len(test))]), channels=1,
                    description="")
    splits.description = describe_counts("Fashion-MNIST", splits, f" ({files['train'].parent})")
    return splits


SOURCES.register("fashion_mnist")(Source(load=load, options=options, path="optional",
                                         summary="Fashion-MNIST (official IDX files), grayscale, blurred on the fly"))
