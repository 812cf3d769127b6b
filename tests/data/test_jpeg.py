"""deblur.data.jpeg: JPEG re-compression matches OpenCV's encoder, with the quality drawn per image and recorded."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from keras import ops

from conftest import psnr_of, smooth_image
from deblur.data import jpeg
from deblur.data.degrade import describe, make


def test_jpeg_matches_opencv_encoder(rng):
    image = smooth_image(rng, 72, 88)  # not a multiple of 16: padded blocks
    x = image.astype(np.float32)[None] / 255.0
    for quality in (30, 75, 95):
        ours = ops.convert_to_numpy(jpeg.compress(ops.convert_to_tensor(x), quality))[0]
        _, buf = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        theirs = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
        assert psnr_of(ours, theirs) > 35  # the same codec steps; libjpeg rounds its DCT in integers
        assert abs(psnr_of(ours, x[0]) - psnr_of(theirs, x[0])) < 0.5  # and the same loss of quality
        np.testing.assert_allclose(ours * 255, np.round(ours * 255), atol=1e-3)
    gray = x[..., :1]
    low = psnr_of(ops.convert_to_numpy(jpeg.compress(ops.convert_to_tensor(gray), 10)), gray)
    high = psnr_of(ops.convert_to_numpy(jpeg.compress(ops.convert_to_tensor(gray), 90)), gray)
    assert high > low + 5


def test_jpeg_quality_is_drawn_per_image_and_recorded(rng):
    deg = make({"kind": "shake", "size": [5, 9], "jpeg": [40, 90]})
    image = ops.convert_to_tensor((smooth_image(rng, 40, 40) / 255.0).astype(np.float32))
    out, params = deg.apply(image, ops.convert_to_tensor(np.array([0.5, 0.2, 0.5, 0.0], np.float32)),
                            ops.zeros((40, 40, 3)))
    assert float(params["quality"]) == pytest.approx(65.0)
    assert float(params["size"]) == pytest.approx(7.0) and float(params["path"]) == pytest.approx(0.2)
    assert ops.convert_to_numpy(out).shape == (40, 40, 3)
    assert describe({"kind": "shake", "jpeg": [40, 90], "shot": [0, 0.01]}) == \
        "shake size~U(5, 35) + shot noise~U(0, 0.01) + JPEG quality~U(40, 90)"


def test_jpeg_of_images_smaller_than_a_block_and_a_shifted_grid(rng):
    tiny = (smooth_image(rng, 5, 6) / 255.0).astype(np.float32)[None]
    out = ops.convert_to_numpy(jpeg.compress(ops.convert_to_tensor(tiny), 80))
    assert out.shape == tiny.shape and psnr_of(out, tiny) > 15  # no crash; a 5x6 crop of strong colour edges
    # a crop cut at (top, left) from a window compressed with that origin equals the crop compressed alone
    window = (smooth_image(rng, 64, 64) / 255.0).astype(np.float32)[None]
    whole = ops.convert_to_numpy(jpeg.compress(ops.convert_to_tensor(window), 70, origin=(18, 18)))
    alone = ops.convert_to_numpy(jpeg.compress(ops.convert_to_tensor(window[:, 18:50, 18:50]), 70))
    np.testing.assert_allclose(whole[:, 20:48, 20:48], alone[:, 2:30, 2:30], atol=1.5 / 255)
