"""Shared helpers for sources made of image files on disk.

Files are listed and their headers read at start-up; pixels are decoded only when a pipeline asks
for an image (`deblur.data.store.FileStore`). `data.in_memory: true` decodes them all up front
instead (`deblur.data.base.load_splits`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deblur.core.errors import DataError
from deblur.data.base import Images, ImageSet
from deblur.data.store import FileStore, ImageStore, Shape
from deblur.imaging.imageio import convert_channels


def pair_set(pairs: Sequence[tuple[Path, Path]], names: Sequence[str]) -> ImageSet:
    """An ImageSet of real (blurred, sharp) pairs, read on demand; a size mismatch is named, file by
    file, from the headers."""
    check_distinct(pairs)
    blurred = FileStore([b for b, _ in pairs])
    sharp = FileStore([s for _, s in pairs])
    b_shapes, s_shapes = blurred.shapes(), sharp.shapes()
    for (b, s), bi, si in zip(pairs, b_shapes, s_shapes, strict=True):
        if bi[:2] != si[:2]:
            raise DataError(f"{b} is {bi[1]}x{bi[0]} but its sharp twin {s} is "
                            f"{si[1]}x{si[0]}; a pair must have one size (resize one of them, or "
                            "score them through a config with data.resize)")
    # a gray twin of a colour photo (or gray pairs among colour ones) is scored in colour, as
    # data.channels would convert it; only the channels differ, never the pixels
    channels = max(channels_of(blurred), channels_of(sharp))

    def convert(im: np.ndarray) -> np.ndarray:
        return convert_channels(im, channels)

    def converted(shape: Shape) -> Shape:
        return (shape[0], shape[1], channels)

    return ImageSet(sharp=sharp.map(convert, converted), names=list(names), blurred=blurred.map(convert, converted))


def check_distinct(pairs: Sequence[tuple[Path, Path]]) -> None:
    """Refuse a pair whose blurred image is its sharp one: the same file (one folder given twice, a
    link) or a byte-identical copy. Scored, it would show the input at the 60 dB cap, a perfect
    score for a protocol that measures nothing; trained on, it teaches the identity. Only files of
    equal size are read to compare (a blurred photo and its sharp twin almost never are)."""
    from deblur.core.digest import file_sha256

    for b, s in pairs:
        try:
            sb, ss = os.stat(b), os.stat(s)
        except OSError:
            continue  # the header check that follows names a missing file
        same = (sb.st_dev, sb.st_ino) == (ss.st_dev, ss.st_ino)
        if same or (sb.st_size == ss.st_size and stat.S_ISREG(sb.st_mode) and stat.S_ISREG(ss.st_mode)
                    and file_sha256(b) == file_sha256(s)):
            raise DataError(f"{b} and its sharp twin {s} are {'the same file' if same else 'identical files'}: "
                            "an image paired with itself says nothing about deblurring (was one folder given "
                            "twice?); pair each blurred photo with its own sharp one")


def channels_of(images: Images | Sequence[np.ndarray]) -> int:
    """3 if any image has colour, else 1: a folder of gray photos trains a gray model (from headers
    for a store)."""
    shapes = images.shapes() if isinstance(images, ImageStore) else [im.shape for im in images]
    return 3 if any(s[2] >= 3 for s in shapes) else 1
