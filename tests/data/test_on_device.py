"""deblur.data.on_device: the blur layer matches the reference blur for every kind."""

from __future__ import annotations

import numpy as np
from keras import ops

from conftest import psnr_of, smooth_image
from deblur.data.degrade import N_UNIFORMS
from deblur.data.on_device import Degrade


def test_on_device_blur_matches_the_reference_blur(rng):
    specs = [{"kind": "gaussian", "sigma": [0.5, 2.5]}, {"kind": "motion", "length": [3, 9]}]
    layer = Degrade(specs, seed=0)
    m = layer.margin
    window = rng.random((4, 16 + 2 * m, 18 + 2 * m, 3)).astype(np.float32)
    u = rng.random((4, 4)).astype(np.float32)
    variant = np.array([0, 1, 2, 1], np.int32)  # 2 = as given
    out = ops.convert_to_numpy(layer(window, u, variant))
    assert out.shape == (4, 16, 18, 3)
    np.testing.assert_array_equal(out[2], window[2, m:-m, m:-m])
    for i in (0, 1, 3):
        deg = layer.degs[variant[i]]
        ref, _ = deg.apply(ops.convert_to_tensor(window[i]), ops.convert_to_tensor(u[i]), ops.zeros(window.shape[1:]))
        ref = ops.convert_to_numpy(ref)[m:-m, m:-m]
        diff = np.abs(out[i] - ref)
        assert diff.max() <= 1 / 255 + 1e-6 and (diff > 1e-6).mean() < 0.01  # at most a rounding tie apart


def test_on_device_blur_matches_the_reference_for_the_new_kinds(rng):
    # size up to 31: a margin of 16 px, so the crop keeps the window's JPEG block grid (4:2:0 is 16 px)
    specs = [{"kind": "shake", "size": [5, 31], "jpeg": [50, 90]}, {"kind": "gaussian", "sigma": [0.5, 2.0]}]
    layer = Degrade(specs, seed=0)
    m = layer.margin
    assert m == 16
    window = np.stack([smooth_image(rng, 32 + 2 * m, 32 + 2 * m) for _ in range(4)]).astype(np.float32) / 255
    u = rng.random((4, N_UNIFORMS)).astype(np.float32)
    variant = np.array([0, 1, 0, 2], np.int32)
    out = ops.convert_to_numpy(layer(window, u, variant))
    np.testing.assert_array_equal(out[3], window[3, m:-m, m:-m])
    for i in (0, 1, 2):
        deg = layer.degs[variant[i]]
        ref, _ = deg.apply(ops.convert_to_tensor(window[i]), ops.convert_to_tensor(u[i]), ops.zeros(window.shape[1:]))
        ref = ops.convert_to_numpy(ref)[m:-m, m:-m]
        # equal up to a rare DCT coefficient rounded the other way (the convolutions sum in another order),
        # away from the crop's edge, where chroma upsampling sees the window's pixels or repeated ones
        assert psnr_of(out[i, 2:-2, 2:-2], ref[2:-2, 2:-2]) > 45
