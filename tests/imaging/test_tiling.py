"""deblur.imaging.tiling: tile layouts within the memory bound, overlap only where tiles meet, seamless blending."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deblur.imaging.tiling import plan_layout, restore_tiled, split_axis
from deblur.restore.predict import DEFAULT_OVERLAP, DEFAULT_TILE

PHOTOS = [(1024, 1024), (3000, 4000), (4000, 3000), (4000, 6000), (1080, 1920), (2448, 3264), (768, 1024)]
MULTIPLES = [1, 8, 16]  # the built-in model needs 8; U-Nets of depth 3 and 4 need 8 and 16

def _pad(length: int, multiple: int) -> int:
    return -(-length // multiple) * multiple


def _check_axis(axis, length: int, overlap: int) -> None:
    starts = list(axis.starts)
    assert starts[0] == 0 and starts[-1] + axis.size == length  # covers the image, never past it
    assert starts == sorted(set(starts))
    if len(starts) > 1:
        shared = axis.overlaps()
        assert min(shared) >= overlap and max(shared) - min(shared) <= 1, shared  # surplus spread evenly
        # overlap only where neighbours meet: a tile never reaches the one after its neighbour
        assert all(a + axis.size <= c for a, c in zip(starts, starts[2:], strict=False))


@pytest.mark.parametrize("shape", [(100, 150, 3), (64, 64, 1), (37, 200, 2)])
def test_blending_is_exact_for_identity_and_offsets(shape, rng):
    image = rng.random(shape).astype(np.float32)
    same = restore_tiled(lambda t: t, image, tile=32, overlap=8, multiple=4)
    np.testing.assert_allclose(same, image, atol=1e-6)
    shifted = restore_tiled(lambda t: t + 0.25, image, tile=32, overlap=8, multiple=4)
    np.testing.assert_allclose(shifted, image + 0.25, atol=1e-6)  # weights sum to one everywhere


@pytest.mark.parametrize("multiple", [1, 4, 8, 16, 64])
@pytest.mark.parametrize(("height", "width", "tile", "overlap"), [
    (1024, 1024, 512, 32), (4000, 6000, 512, 32), (37, 200, 32, 8), (100, 152, 32, 8), (64, 64, 32, 8),
    (512, 512, 512, 32), (513, 512, 512, 32), (300, 5000, 256, 0), (5000, 300, 256, 100), (2000, 40, 64, 16)])
def test_layouts_cover_the_image_within_the_bound(height, width, tile, overlap, multiple):
    hp, wp = _pad(height, multiple), _pad(width, multiple)
    layout = plan_layout(hp, wp, tile, overlap, multiple)
    th, tw = layout.tile_shape
    bound = _pad(max(tile, multiple), multiple) ** 2
    assert th * tw <= bound or hp * wp <= bound  # the memory bound, in pixels per model call
    assert th % multiple == 0 and tw % multiple == 0
    _check_axis(layout.rows, hp, overlap)
    _check_axis(layout.cols, wp, overlap)
    if hp * wp <= bound:
        assert layout.tiles == 1 and layout.overhead == 0  # within the bound: the whole image, no overlap


@pytest.mark.parametrize("multiple", MULTIPLES)
@pytest.mark.parametrize(("height", "width"), PHOTOS)
def test_default_tiling_wastes_under_15_percent(height, width, multiple):
    hp, wp = _pad(height, multiple), _pad(width, multiple)
    layout = plan_layout(hp, wp, DEFAULT_TILE, DEFAULT_OVERLAP, multiple)
    assert layout.overhead < 0.15, (layout.tiles, layout.tile_shape, layout.overhead)


def test_the_model_sees_what_the_layout_says(rng):
    """Counted at the model: 1024x1024 in 6 calls of one shape (the old fixed grid: 9 of 512x512)."""
    image = rng.random((1024, 1024, 3), dtype=np.float32)
    shapes = []

    def restore(tiles: np.ndarray) -> np.ndarray:
        shapes.append(tiles.shape)
        return tiles

    restore_tiled(restore, image, DEFAULT_TILE, DEFAULT_OVERLAP, multiple=8)
    assert len(set(shapes)) == 1 and shapes[0][1] * shapes[0][2] <= DEFAULT_TILE**2
    pixels = sum(n * h * w for n, h, w, _ in shapes)
    assert len(shapes) == 6 and pixels / image[..., 0].size - 1 < 0.15


def test_split_axis_equal_tiles_just_large_enough():
    axis = split_axis(1024, 3, 32, multiple=8)
    assert axis.size == 368 and axis.starts == (0, 328, 656) and axis.overlaps() == [40, 40]
    assert split_axis(1000, 1, 32) == split_axis(1000, 1, 0)  # one tile: the whole length, no overlap


@pytest.mark.parametrize(("shape", "tile", "overlap", "multiple"), [
    ((1024, 1024, 3), 512, 32, 8), ((300, 470, 1), 128, 16, 4), ((37, 200, 2), 32, 8, 4), ((90, 60, 3), 32, 0, 1)])
def test_a_per_pixel_model_gives_the_whole_image_result(shape, tile, overlap, multiple, rng):
    image = rng.random(shape, dtype=np.float32)
    model = lambda t: np.sqrt(t) * 0.5 + 0.25  # noqa: E731 - any function of one pixel
    np.testing.assert_allclose(restore_tiled(model, image, tile, overlap, multiple), model(image), atol=1e-6)


def test_a_convolution_is_seamless(rng):
    """A blur seen through tiles matches the whole-image blur; without overlap the tile edges show."""
    # photo-like (smooth), and a multiple of 8: padding, which changes the borders, is another matter
    image = cv2.GaussianBlur(rng.random((304, 400, 3), dtype=np.float32), (0, 0), 2)

    def blur(tiles: np.ndarray) -> np.ndarray:
        return np.stack([cv2.GaussianBlur(t, (0, 0), 1.5, borderType=cv2.BORDER_REFLECT) for t in tiles])

    whole = blur(image[None])[0]
    error = np.abs(restore_tiled(blur, image, 128, 16, 8) - whole)
    seams = np.abs(restore_tiled(blur, image, 128, 0, 8) - whole)
    assert error.max() < 0.1 * seams.max() and error.mean() < 1e-4  # as the fixed grid did (1.1e-3, 1.5e-5)
