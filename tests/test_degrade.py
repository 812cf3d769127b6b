import cv2
import numpy as np
import pytest
from keras import ops

from deblur.core.errors import ConfigError
from deblur.data.degrade import N_UNIFORMS, describe, make


def _apply(spec, image, u=None):
    deg = make({**spec, "quantize": False})
    u = np.zeros(N_UNIFORMS, np.float32) if u is None else np.asarray(u, np.float32)
    out, params = deg.apply(ops.convert_to_tensor(image), ops.convert_to_tensor(u),
                            ops.zeros(image.shape))
    return ops.convert_to_numpy(out), {k: float(ops.convert_to_numpy(v)) for k, v in params.items()}


@pytest.fixture
def image(rng):
    return rng.random((23, 31, 3)).astype(np.float32)


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
