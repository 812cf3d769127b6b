"""deblur.imaging.align: ECC recovers a shift and scores the overlap; unrelated images are not aligned."""

import numpy as np

from conftest import shifted_pair, smooth_image
from deblur.imaging.align import estimate
from deblur.imaging.metrics import psnr


def test_ecc_recovers_a_shift_and_scores_the_overlap(rng):
    blurred, sharp = shifted_pair(rng, 5, -3)
    found = estimate(blurred, sharp)
    assert found is not None
    np.testing.assert_allclose(found.homography[:2, 2], [5, -3], atol=0.1)
    y0, y1, x0, x1 = found.box
    assert x1 - x0 <= 160 - 5 and y1 - y0 <= 120 - 3  # only what both frames cover
    assert psnr(found.crop(sharp), found.crop(found.warp(blurred))) > psnr(sharp, blurred) + 10


def test_unrelated_images_are_reported_as_not_aligned(rng):
    a = smooth_image(rng, 80, 80).astype(np.float32) / 255
    b = rng.random((80, 80, 3)).astype(np.float32)
    assert estimate(a, b) is None
