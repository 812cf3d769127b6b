"""deblur.imaging.metrics: the metric card matches scikit-image, and a non-finite output has no score."""

import math

import numpy as np
import pytest
from keras import ops
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from deblur.core.errors import DeblurError
from deblur.imaging.metrics import PSNR_CAP_DB, keras_psnr, keras_ssim, psnr_from_mse, quantize, score_image, summarize


@pytest.fixture
def pair(rng):
    ref = rng.random((40, 48, 3))
    img = np.clip(ref + rng.normal(0, 0.05, ref.shape), 0, 1)
    return ref, img


def test_psnr_of_a_non_finite_mse_is_nan_never_the_cap():
    assert math.isnan(psnr_from_mse(math.nan)) and math.isnan(psnr_from_mse(math.inf))
    assert psnr_from_mse(0.0) == PSNR_CAP_DB and psnr_from_mse(0.01) == pytest.approx(20.0)
    sharp = np.full((16, 16, 3), 0.5)
    for bad in (np.nan, np.inf, -np.inf):  # clipping would have made +inf white and -inf black
        image = sharp.copy()
        image[3, 4, 1] = bad
        assert all(math.isnan(v) for v in score_image(sharp, image).values()), bad
    good = score_image(sharp, sharp)
    assert good["psnr"] == PSNR_CAP_DB and good["ssim"] == pytest.approx(1.0)
    means = summarize([good, score_image(sharp, np.full_like(sharp, np.nan))])
    assert all(math.isnan(v) for v in means.values())  # one failed item: the method has no score


def test_training_time_metrics_are_nan_for_a_sample_with_non_finite_output():
    truth = np.full((3, 16, 16, 3), 0.5, np.float32)
    pred = truth.copy()
    pred[0, 2, 2, 0] = np.nan
    pred[1, 5, 5, 2] = np.inf
    for metric in (keras_psnr, keras_ssim):
        values = np.asarray(metric(truth, pred))
        assert math.isnan(values[0]) and math.isnan(values[1]) and math.isfinite(values[2]), metric.__name__


def test_metric_card_matches_scikit_image(pair):
    ref, img = pair
    q_ref, q_img = quantize(ref), quantize(img)
    s = score_image(ref, img)
    assert s["psnr"] == pytest.approx(peak_signal_noise_ratio(q_ref, q_img, data_range=1.0), abs=1e-9)
    assert s["mse"] == pytest.approx(mean_squared_error(q_ref, q_img), abs=1e-12)
    expected = structural_similarity(q_ref, q_img, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=1.0, channel_axis=-1)
    assert s["ssim"] == pytest.approx(expected, abs=1e-9)


def test_known_values():
    ref = np.full((16, 16, 3), 100 / 255)
    s = score_image(ref, ref + 25.5 / 255)  # off by 25.5 levels -> rounds to 26 after quantisation
    assert s["mse"] == pytest.approx((26 / 255) ** 2)
    assert s["psnr"] == pytest.approx(20 * np.log10(255 / 26))
    same = score_image(ref, ref)
    assert same["psnr"] == PSNR_CAP_DB and same["ssim"] == pytest.approx(1.0) and same["mse"] == 0


def test_out_of_range_values_are_clipped_before_scoring():
    ref = np.zeros((16, 16, 1))
    assert score_image(ref, ref - 5.0)["psnr"] == PSNR_CAP_DB


def test_images_too_small_for_the_ssim_window_are_refused():
    with pytest.raises(DeblurError, match="at least 11x11"):
        score_image(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))


def test_gray_images_have_no_special_case(rng):
    ref = rng.random((28, 28, 1))
    s = score_image(ref, ref * 0.9)
    expected = structural_similarity(quantize(ref)[..., 0], quantize(ref * 0.9)[..., 0], gaussian_weights=True,
                                     sigma=1.5, use_sample_covariance=False, data_range=1.0)
    assert s["ssim"] == pytest.approx(expected)


def test_summary_reports_psnr_of_mean_mse():
    rows = [{"psnr": 60.0, "ssim": 1.0, "mse": 0.0}, {"psnr": 20.0, "ssim": 0.5, "mse": 0.01}]
    s = summarize(rows)
    assert s["psnr"] == 40.0 and s["psnr_of_mean_mse"] == pytest.approx(10 * np.log10(1 / 0.005))


def test_keras_metrics_track_the_card(pair):
    ref, img = (x[None].astype(np.float32) for x in pair)
    ssim = float(ops.convert_to_numpy(keras_ssim(ref, img))[0])
    expected = structural_similarity(ref[0], img[0], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     data_range=1.0, channel_axis=-1)
    assert ssim == pytest.approx(expected, abs=1e-4)
    psnr = float(ops.convert_to_numpy(keras_psnr(ref, img))[0])
    assert psnr == pytest.approx(peak_signal_noise_ratio(ref[0], img[0], data_range=1.0), abs=1e-3)


def test_y_channel_and_crop_border_options():
    from deblur.imaging.metrics import to_y

    white, black = np.ones((1, 1, 3)), np.zeros((1, 1, 3))
    assert to_y(white)[0, 0, 0] == pytest.approx(235 / 255) and to_y(black)[0, 0, 0] == pytest.approx(16 / 255)
    ref = np.full((20, 20, 3), 0.5)
    img = ref.copy()
    img[:2] = 0.0  # damage only a 2-pixel border
    assert score_image(ref, img)["psnr"] < 40
    assert score_image(ref, img, crop_border=2)["psnr"] == PSNR_CAP_DB
    colour_only = ref.copy()
    colour_only[..., 0] += 0.1  # red up, green down, luma unchanged to rounding
    colour_only[..., 1] -= 0.1 * 65.481 / 128.553
    assert score_image(ref, colour_only, y_channel=True)["psnr"] > score_image(ref, colour_only)["psnr"] + 15


def _blurred_and_moved(rng, dy: int, dx: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A textured reference, a blurred copy of it, and that copy moved by (dy, dx) pixels."""
    import cv2

    ref = quantize(cv2.resize(rng.random((8, 10, 3)), (50, 40), interpolation=cv2.INTER_CUBIC).clip(0, 1))
    blurred = quantize(cv2.GaussianBlur(ref, (5, 5), 1.0))
    return ref, blurred, np.roll(blurred, (dy, dx), axis=(0, 1))


def test_a_moved_image_scores_as_if_unmoved_once_the_shift_covers_it(rng):
    """Levin et al. 2009: a blind result moved by its kernel's translation is scored at its best shift,
    on the interior; the metrics are those of the unmoved image on the same interior."""
    ref, blurred, moved = _blurred_and_moved(rng, 2, -1)
    unmoved = score_image(ref, blurred, crop_border=2)
    assert unmoved["psnr"] < PSNR_CAP_DB - 10  # not capped: the comparison below is not trivially equal
    assert score_image(ref, moved, shift=2) == unmoved  # PSNR, SSIM and MSE all at the same shift
    assert score_image(ref, moved, crop_border=2)["psnr"] < unmoved["psnr"] - 5
    assert score_image(ref, moved, shift=1)["psnr"] < unmoved["psnr"] - 3  # (2, -1) is out of its reach
    # a wider crop border is kept: the interior is max(crop_border, shift) px in
    assert score_image(ref, moved, crop_border=5, shift=2) == score_image(ref, blurred, crop_border=5)
    assert score_image(ref, moved, y_channel=True, shift=3) == score_image(ref, blurred, y_channel=True,
                                                                            crop_border=3)


def test_shift_zero_is_the_unshifted_score_and_a_tie_keeps_no_shift(rng, pair):
    from deblur.imaging.metrics import best_shift

    ref, img = pair
    assert score_image(ref, img, shift=0) == score_image(ref, img)
    assert score_image(ref, img, crop_border=3, shift=0) == score_image(ref, img, crop_border=3)

    def start(window: np.ndarray) -> int:
        return window.__array_interface__["data"][0]

    flat = np.full((20, 20, 1), 0.5)  # every shift of a flat image is equally good: none is taken
    image = flat.copy()
    inner, window = best_shift(flat, image, 2, 2)
    assert inner.shape == window.shape == (16, 16, 1) and start(window) == start(image[2:18, 2:18])
    ramp = np.tile(np.arange(20.0)[:, None, None] / 19, (1, 20, 1))  # every column alike: dx ties, dy does not
    moved = np.roll(ramp, 1, axis=0)
    inner, window = best_shift(ramp, moved, 2, 2)
    assert np.array_equal(inner, window) and start(window) == start(moved[3:19, 2:18])  # (dy, dx) = (1, 0)
