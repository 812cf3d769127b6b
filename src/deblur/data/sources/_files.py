"""Shared helpers for sources made of image files on disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from deblur.data.base import ImageSet
from deblur.errors import DataError
from deblur.imageio import convert_channels, read_image


def read_all(paths: Sequence[Path]) -> list[np.ndarray]:
    """Read every file as 8-bit (16-bit files are scaled down: training runs on 8-bit data)."""
    images = []
    for p in paths:
        im = read_image(p)
        if im.dtype == np.uint16:
            im = (im.astype(np.uint32) * 255 // 65535).astype(np.uint8)
        images.append(im[:, :, :3] if im.shape[2] == 4 else im)
    return images


def pair_set(pairs: Sequence[tuple[Path, Path]], names: Sequence[str]) -> ImageSet:
    """An ImageSet of real (blurred, sharp) pairs; a size mismatch is named, file by file."""
    blurred = read_all([b for b, _ in pairs])
    sharp = read_all([s for _, s in pairs])
    for (b, s), bi, si in zip(pairs, blurred, sharp, strict=True):
        if bi.shape[:2] != si.shape[:2]:
            raise DataError(f"{b} is {bi.shape[1]}x{bi.shape[0]} but its sharp twin {s} is "
                            f"{si.shape[1]}x{si.shape[0]}; a pair must have one size (resize one of them, or "
                            "score them through a config with data.resize)")
    # a gray twin of a colour photo (or gray pairs among colour ones) is scored in colour, as
    # data.channels would convert it; only the channels differ, never the pixels
    channels = channels_of([*blurred, *sharp])
    blurred = [convert_channels(im, channels) for im in blurred]
    sharp = [convert_channels(im, channels) for im in sharp]
    return ImageSet(sharp=sharp, names=list(names), blurred=blurred)


def channels_of(images: Sequence[np.ndarray]) -> int:
    """3 if any image has colour, else 1: a folder of gray photos trains a gray model."""
    return 3 if any(im.shape[2] >= 3 for im in images) else 1
