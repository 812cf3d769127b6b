"""Whole-image restoration in bounded memory: overlapping tiles blended with feathered weights.

Each tile is restored with `overlap` pixels of context on every inner side; where tiles overlap,
their results are mixed with weights that ramp linearly across the overlap, so no seam shows.
Image borders get full weight (there is no neighbour to blend with). Tiles have one size per image,
a multiple of the model's pooling factor, so the model never needs padding inside the loop.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from deblur.errors import DeblurError

RestoreFn = Callable[[np.ndarray], np.ndarray]
# The smallest tile `deblur predict` accepts. Each model call has a fixed cost, so tiny tiles multiply
# it: --tile 1 (rounded up to the model's multiple) ran a photo about 16 times slower than 512.
MIN_TILE = 32
# Tiles per model call. Measured on a 6000x4000 JPEG, 2-core CPU, quick-start U-Net: peak RSS 1.78 GB
# and 41.9 s with 1, 2.21 GB and 39.3 s with 2, 3.03 GB and 38.6 s with 4: one tile at a time.
TILE_BATCH = 1


def check_tile(tile: int, overlap: int, multiple: int = 1) -> None:
    """Refuse tile settings that cannot work or would only be slow, in one line naming the options.

    `tile` 0 means the whole image at once. Otherwise a tile must be at least MIN_TILE pixels and at
    least the model's size multiple (a smaller one is silently rounded up to it), and the overlap
    less than half a tile, so that every tile adds new pixels.
    """
    if overlap < 0:
        raise DeblurError(f"--overlap {overlap}: must be 0 or more")
    if tile == 0:
        return
    smallest = max(MIN_TILE, multiple)
    if tile < smallest:
        why = (f"this model needs multiples of {multiple} pixels" if multiple > MIN_TILE
               else "smaller tiles only run slower")
        raise DeblurError(f"--tile {tile}: use 0 (the whole image at once) or at least {smallest} pixels ({why})")
    if overlap * 2 >= tile:
        raise DeblurError(f"--overlap {overlap}: must be less than half of --tile {tile}")


def _ceil_to(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step))
    return [*starts, length - tile]


def _ramp(length: int, overlap: int, ramp_start: bool, ramp_end: bool) -> np.ndarray:
    """1-D weights: a linear ramp over `overlap` pixels on the sides that meet another tile."""
    w = np.ones(length, dtype=np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if ramp_start:
            w[:overlap] = np.minimum(w[:overlap], ramp)
        if ramp_end:
            w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1])
    return w


def restore_tiled(restore: RestoreFn, image: np.ndarray, tile: int, overlap: int, multiple: int = 1,
                  batch: int = TILE_BATCH) -> np.ndarray:
    """Restore an HxWxC float image with `restore` (N x h x w x C -> same) tile by tile."""
    h, w, c = image.shape
    hp, wp = _ceil_to(h, multiple), _ceil_to(w, multiple)
    if (hp, wp) != (h, w):
        mode = "reflect" if hp - h < h and wp - w < w else "edge"
        image = np.pad(image, ((0, hp - h), (0, wp - w), (0, 0)), mode=mode)
    tile = _ceil_to(max(tile, multiple), multiple)
    th, tw = min(tile, hp), min(tile, wp)
    overlap = min(overlap, th // 2, tw // 2)
    ys, xs = _starts(hp, th, overlap), _starts(wp, tw, overlap)
    if len(ys) == 1 and len(xs) == 1:
        return restore(image[None])[0][:h, :w]
    out = np.zeros((hp, wp, c), dtype=np.float32)
    weight = np.zeros((hp, wp, 1), dtype=np.float32)
    boxes = [(y, x) for y in ys for x in xs]
    for i in range(0, len(boxes), batch):
        chunk = boxes[i:i + batch]
        tiles = np.stack([image[y:y + th, x:x + tw] for y, x in chunk])
        restored = restore(tiles)
        for (y, x), r in zip(chunk, restored, strict=True):
            wy = _ramp(th, overlap, y > 0, y + th < hp)
            wx = _ramp(tw, overlap, x > 0, x + tw < wp)
            wgt = (wy[:, None] * wx[None, :])[..., None]
            out[y:y + th, x:x + tw] += r * wgt
            weight[y:y + th, x:x + tw] += wgt
    out /= weight
    return out[:h, :w]
