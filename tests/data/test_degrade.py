"""deblur.data.degrade: Gaussian, motion and camera-shake kernels, sensor noise and quantisation, and bad
values refused in one line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from keras import ops

from deblur.core.errors import ConfigError
from deblur.data.degrade import N_UNIFORMS, convolve, describe, make


def _apply(spec, image, u=None):
    deg = make({**spec, "quantize": False})
    u = np.zeros(N_UNIFORMS, np.float32) if u is None else np.asarray(u, np.float32)
    out, params = deg.apply(ops.convert_to_tensor(image), ops.convert_to_tensor(u),
                            ops.zeros(image.shape))
    return ops.convert_to_numpy(out), {k: float(ops.convert_to_numpy(v)) for k, v in params.items()}


@pytest.fixture
def image(rng):
    return rng.random((23, 31, 3)).astype(np.float32)


def _kernels(spec, u):
    deg = make(spec)
    return deg, ops.convert_to_numpy(deg.kernel(deg.params(ops.convert_to_tensor(np.asarray(u, np.float32)))))


def test_batched_convolution_gives_each_image_its_own_kernel(rng):
    images = rng.random((3, 20, 24, 2)).astype(np.float32)
    deg = make({"kind": "defocus", "radius": [1, 4]})
    u = rng.random((3, 4)).astype(np.float32)
    kernels = deg.kernel(deg.params(ops.convert_to_tensor(u)))
    together = ops.convert_to_numpy(convolve(ops.convert_to_tensor(images), kernels, deg.kernel_radius))
    for i in range(3):
        alone = deg.apply(ops.convert_to_tensor(images[i]), ops.convert_to_tensor(u[i]), ops.zeros((20, 24, 2)))[0]
        np.testing.assert_allclose(together[i], ops.convert_to_numpy(alone), atol=0.5 / 255 + 1e-6)
    valid = ops.convert_to_numpy(convolve(ops.convert_to_tensor(images), kernels, deg.kernel_radius, border="valid"))
    r = deg.kernel_radius
    np.testing.assert_allclose(valid, together[:, r:-r, r:-r], atol=1e-5)


def test_fixed_3x3_matches_opencv_exactly(image):
    """The Fashion-MNIST report used cv2.GaussianBlur(img, (3, 3), 0): reproduce it, borders included."""
    ours, _ = _apply({"kind": "gaussian", "sigma": 0, "ksize": 3}, image)
    theirs = cv2.GaussianBlur(image, (3, 3), 0)
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_gaussian_sigma_matches_opencv(image):
    ours, params = _apply({"kind": "gaussian", "sigma": 2.0}, image)
    theirs = cv2.GaussianBlur(image, (13, 13), 2.0)  # truncate 3 -> radius 6
    assert params["sigma"] == pytest.approx(2.0)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_sigma_range_draws_from_uniforms(image):
    _, low = _apply({"kind": "gaussian", "sigma": [1.0, 3.0]}, image, [0.0, 0, 0, 0])
    _, high = _apply({"kind": "gaussian", "sigma": [1.0, 3.0]}, image, [0.75, 0, 0, 0])
    assert low["sigma"] == pytest.approx(1.0) and high["sigma"] == pytest.approx(2.5)


def test_sigma_zero_is_identity(image):
    out, _ = _apply({"kind": "gaussian", "sigma": 0.0}, image)
    np.testing.assert_allclose(out, image, atol=1e-6)


def test_kernels_are_normalised_and_shaped():
    motion = make({"kind": "motion", "length": 5, "angle": 0})
    k = ops.convert_to_numpy(motion.kernel(motion.params(ops.zeros(N_UNIFORMS))))
    assert k.sum() == pytest.approx(1.0, abs=1e-5)
    r = motion.kernel_radius
    assert np.count_nonzero(k > 1e-6) == 5 and np.allclose(k[r, r - 2:r + 3], 0.2, atol=1e-6)
    vertical = ops.convert_to_numpy(make({"kind": "motion", "length": 5, "angle": 90}).kernel(
        {"length": ops.convert_to_tensor(5.0), "angle": ops.convert_to_tensor(90.0)}))
    np.testing.assert_allclose(vertical, k.T, atol=1e-6)
    disk = make({"kind": "defocus", "radius": 3})
    d = ops.convert_to_numpy(disk.kernel(disk.params(ops.zeros(N_UNIFORMS))))
    assert d.sum() == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(d, d.T, atol=1e-7)
    np.testing.assert_allclose(d, d[::-1, ::-1], atol=1e-7)


def test_noise_and_quantisation(image):
    deg = make({"kind": "gaussian", "sigma": 1.0, "noise": 0.05})
    noise = np.random.default_rng(1).standard_normal(image.shape).astype(np.float32)
    out, params = deg.apply(ops.convert_to_tensor(image), ops.zeros(N_UNIFORMS), ops.convert_to_tensor(noise))
    out = ops.convert_to_numpy(out)
    assert float(params["noise"]) == pytest.approx(0.05)
    np.testing.assert_allclose(out * 255, np.round(out * 255), atol=1e-3)  # 8-bit levels
    assert out.min() >= 0 and out.max() <= 1


def test_gray_images_stay_one_channel(rng):
    gray = rng.random((20, 20, 1)).astype(np.float32)
    out, _ = _apply({"kind": "defocus", "radius": 2}, gray)
    assert out.shape == (20, 20, 1)


def test_labels_and_bad_values():
    assert describe({"kind": "gaussian", "sigma": [0, 3]}) == "gaussian sigma~U(0, 3)"
    assert describe({"kind": "gaussian", "sigma": 0, "ksize": 3}) == "gaussian 3x3 (cv2, sigma=0)"
    with pytest.raises(ConfigError, match="odd"):
        make({"kind": "gaussian", "sigma": 1, "ksize": 4})
    with pytest.raises(ConfigError, match="0 or more"):
        make({"kind": "defocus", "radius": -1})


def test_shake_kernels_are_normalised_sized_and_seeded(rng):
    u = rng.random((12, N_UNIFORMS)).astype(np.float32)
    deg, k = _kernels({"kind": "shake", "size": [5, 35]}, u)
    assert k.shape == (12, 2 * deg.kernel_radius + 1, 2 * deg.kernel_radius + 1) and deg.kernel_radius == 18
    np.testing.assert_allclose(k.sum(axis=(1, 2)), 1.0, atol=1e-5)
    assert (k >= 0).all()
    sizes = 5 + u[:, 0] * 30
    for ki, size in zip(k, sizes, strict=True):
        ys, xs = np.nonzero(ki > 1e-6)
        extent = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        assert size - 1 <= extent <= size + 2  # the larger side of the support is the size drawn
    # the same uniforms give the same kernel; another trajectory seed gives another shape
    _, again = _kernels({"kind": "shake", "size": [5, 35]}, u)
    np.testing.assert_array_equal(k, again)
    other = u.copy()
    other[:, 1] = (other[:, 1] + 0.37) % 1.0
    _, moved = _kernels({"kind": "shake", "size": [5, 35]}, other)
    assert all(np.abs(a - b).sum() > 0.2 for a, b in zip(k, moved, strict=True))


def test_shake_paths_are_not_straight_lines(rng):
    """Real shake curves: most kernels cover clearly more pixels than a straight line of their size."""
    u = rng.random((32, N_UNIFORMS)).astype(np.float32)
    u[:, 0] = 1.0  # size 35
    _, k = _kernels({"kind": "shake", "size": [35, 35]}, u)
    covered = (k > 1e-4).sum(axis=(1, 2))
    assert np.median(covered) > 2 * 35


def test_poisson_gaussian_noise_grows_with_the_signal():
    deg = make({"kind": "none", "noise": 0.01, "shot": 0.004, "quantize": False})
    rng = np.random.default_rng(0)
    for level in (0.1, 0.8):
        flat = np.full((64, 64, 1), level, np.float32)
        noise = rng.standard_normal(flat.shape).astype(np.float32)
        out, params = deg.apply(ops.convert_to_tensor(flat), ops.zeros(N_UNIFORMS), ops.convert_to_tensor(noise))
        std = float(np.std(ops.convert_to_numpy(out)))
        assert std == pytest.approx(np.sqrt(0.004 * level + 0.01 ** 2), rel=0.05)
    assert float(params["shot"]) == pytest.approx(0.004)


def test_bad_values_are_one_line_errors():
    with pytest.raises(ConfigError, match="JPEG quality is 1 to 100"):
        make({"kind": "shake", "jpeg": [50, 120]})
    with pytest.raises(ConfigError, match=r"jpeg: must be 1\.0 or more"):
        make({"kind": "gaussian", "jpeg": 0})
    with pytest.raises(ConfigError, match=r"shot: must be 0\.0 or more"):
        make({"kind": "none", "shot": -1})
    with pytest.raises(ConfigError, match=r"size: must be 1\.0 or more"):
        make({"kind": "shake", "size": [0, 3]})
