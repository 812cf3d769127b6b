"""Whole-image restoration in bounded memory: overlapping tiles blended with feathered weights.

`--tile T` is a memory bound, not a layout: a model's activations grow with the pixels it sees at
once, so every tile holds at most T x T pixels (T rounded up to the model's size multiple). Within
that bound each image gets its own layout (`plan_layout`): the grid of equal tiles, one size per
image and a multiple of the model's pooling factor, whose pixels add up to the fewest (ties: the
fewest tiles), so work is not wasted. The old fixed 512x512 grid cut a 1024x1024 photo into 9 tiles
(2.25 times its pixels); now it takes 6 of 528x363 (+9.7%). An image within the bound is one tile.

Tiles overlap only where they meet, by at least `overlap` pixels of context; there their results
are mixed with weights that ramp linearly across the actual overlap, so no seam shows and the
weights of neighbours sum to one. Image borders get full weight (there is no neighbour to blend with).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np

from deblur.core.errors import DeblurError, arg

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
        raise DeblurError(f"{arg('overlap')} {overlap}: must be 0 or more")
    if tile == 0:
        return
    smallest = max(MIN_TILE, multiple)
    if tile < smallest:
        why = (f"this model needs multiples of {multiple} pixels" if multiple > MIN_TILE
               else "smaller tiles only run slower")
        raise DeblurError(f"{arg('tile')} {tile}: use 0 (the whole image at once) or at least {smallest} pixels "
                          f"({why})")
    if overlap * 2 >= tile:
        raise DeblurError(f"{arg('overlap')} {overlap}: must be less than half of {arg('tile')} {tile}")


def _ceil_to(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True)
class Axis:
    """Equal tiles along one axis: their size and where each starts."""

    size: int
    starts: tuple[int, ...]

    def overlaps(self) -> list[int]:
        """Pixels shared by each pair of neighbouring tiles."""
        return [a + self.size - b for a, b in pairwise(self.starts)]


def split_axis(length: int, count: int, overlap: int, multiple: int = 1) -> Axis:
    """`count` equal tiles just large enough (rounded up to `multiple`) to cover `length` pixels
    with at least `overlap` shared where neighbours meet; rounding's surplus is spread over the
    meeting places, so no pair shares more than one pixel above the others."""
    if count == 1:
        return Axis(length, (0,))
    size = min(length, _ceil_to(-(-(length + (count - 1) * overlap) // count), multiple))
    surplus = count * size - length - (count - 1) * overlap  # >= 0: extra shared pixels to place
    starts = [0]
    for k in range(count - 1):
        shared = overlap + surplus // (count - 1) + (k < surplus % (count - 1))
        starts.append(starts[-1] + size - shared)
    return Axis(size, tuple(starts))


@dataclass(frozen=True)
class Layout:
    """The tiles of one (padded) image: a grid of equal tiles."""

    height: int
    width: int
    rows: Axis
    cols: Axis

    @property
    def tiles(self) -> int:
        return len(self.rows.starts) * len(self.cols.starts)

    @property
    def tile_shape(self) -> tuple[int, int]:
        return self.rows.size, self.cols.size

    @property
    def overhead(self) -> float:
        """Pixels restored beyond the image's own, as a fraction of them (0.097 = 9.7% more work)."""
        return self.tiles * self.rows.size * self.cols.size / (self.height * self.width) - 1

    def boxes(self) -> list[tuple[int, int]]:
        return [(y, x) for y in self.rows.starts for x in self.cols.starts]


def _smallest_side(overlap: int, multiple: int) -> int:
    """A tile that meets neighbours must be more than twice the overlap, so that each adds new
    pixels; thinner tiles are never chosen anyway, their overlaps cost more pixels."""
    return _ceil_to(2 * overlap + 1, multiple)


def _count_for(length: int, side: int, overlap: int) -> int:
    """Fewest tiles of at most `side` pixels that cover `length` with `overlap` where they meet."""
    return 1 if length <= side else -(-(length - overlap) // (side - overlap))


def plan_layout(height: int, width: int, tile: int, overlap: int, multiple: int = 1) -> Layout:
    """The layout of a `height` x `width` image (already a multiple of `multiple`) whose tiles hold
    at most `tile` x `tile` pixels (`tile` rounded up to `multiple`).

    Every row count is tried; for each, the fewest columns whose tiles fit the pixel bound. The
    grid restoring the fewest pixels wins (ties: fewer tiles, then squarer tiles).
    """
    tile = _ceil_to(max(tile, multiple), multiple)
    budget = tile * tile
    if height * width <= budget:
        return Layout(height, width, Axis(height, (0,)), Axis(width, (0,)))
    smallest = _smallest_side(overlap, multiple)
    best: tuple[tuple[int, int, int], Layout] | None = None
    for count in range(1, _count_for(height, smallest, overlap) + 1):
        rows = split_axis(height, count, overlap, multiple)
        if count > 1 and rows.size < smallest:
            break
        widest = budget // rows.size // multiple * multiple
        if widest < min(width, smallest):
            continue  # rows this tall leave no room for a useful tile width
        cols = split_axis(width, _count_for(width, widest, overlap), overlap, multiple)
        layout = Layout(height, width, rows, cols)
        key = (layout.tiles * rows.size * cols.size, layout.tiles, abs(rows.size - cols.size))
        if best is None or key < best[0]:
            best = (key, layout)
    if best is None:  # only for a bound below MIN_TILE, which check_tile refuses
        raise DeblurError(f"{arg('tile')} {tile}: too small for {arg('overlap')} {overlap}")
    return best[1]


def _ramp(length: int, start: int, end: int) -> np.ndarray:
    """1-D weights: linear ramps over the `start` and `end` pixels shared with a neighbour; a
    neighbour's mirrored ramp over the same pixels makes the two sum to one."""
    w = np.ones(length, dtype=np.float32)
    if start:
        w[:start] = (np.arange(start, dtype=np.float32) + 0.5) / start
    if end:
        w[-end:] = np.minimum(w[-end:], (np.arange(end, 0, -1, dtype=np.float32) - 0.5) / end)
    return w


def _axis_weights(axis: Axis) -> list[np.ndarray]:
    shared = axis.overlaps()
    before, after = [0, *shared], [*shared, 0]
    return [_ramp(axis.size, a, b) for a, b in zip(before, after, strict=True)]


def restore_tiled(restore: RestoreFn, image: np.ndarray, tile: int, overlap: int, multiple: int = 1,
                  batch: int = TILE_BATCH) -> np.ndarray:
    """Restore an HxWxC float image with `restore` (N x h x w x C -> same) tile by tile."""
    h, w, c = image.shape
    hp, wp = _ceil_to(h, multiple), _ceil_to(w, multiple)
    if (hp, wp) != (h, w):
        mode: Literal["reflect", "edge"] = "reflect" if hp - h < h and wp - w < w else "edge"
        image = np.pad(image, ((0, hp - h), (0, wp - w), (0, 0)), mode=mode)
    layout = plan_layout(hp, wp, tile, overlap, multiple)
    if layout.tiles == 1:
        return restore(image[None])[0][:h, :w]
    th, tw = layout.tile_shape
    row_w = dict(zip(layout.rows.starts, _axis_weights(layout.rows), strict=True))
    col_w = dict(zip(layout.cols.starts, _axis_weights(layout.cols), strict=True))
    out = np.zeros((hp, wp, c), dtype=np.float32)
    weight = np.zeros((hp, wp, 1), dtype=np.float32)
    boxes = layout.boxes()
    for i in range(0, len(boxes), batch):
        chunk = boxes[i:i + batch]
        tiles = np.stack([image[y:y + th, x:x + tw] for y, x in chunk])
        restored = restore(tiles)
        for (y, x), r in zip(chunk, restored, strict=True):
            wgt = (row_w[y][:, None] * col_w[x][None, :])[..., None]
            out[y:y + th, x:x + tw] += r * wgt
            weight[y:y + th, x:x + tw] += wgt
    out /= weight  # already one where ramps meet; kept so rounding never shows
    return out[:h, :w]
