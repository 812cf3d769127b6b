"""The built-in restorer end to end: triage leaves what it should alone, bit-identical."""

from __future__ import annotations

import numpy as np
import pytest

from deblur.core.errors import DataError, DeblurError
from deblur.restore import kernels as K
from deblur.restore.blind import BlindRestorer, BlindSettings
from deblur.restore.triage import SHARP_EDGES, edge_sharpness, halo_guard

from .helpers import blur, psnr, scene


def test_a_sharp_photo_comes_back_as_the_very_array() -> None:
    sharp = (scene(np.random.default_rng(7)) * 255).astype(np.uint8)
    out, outcome = BlindRestorer()(sharp)
    assert out is sharp and not outcome.changed and "sharp" in outcome.reason


def test_a_blurred_photo_is_restored_in_its_own_dtype_and_shape() -> None:
    sharp = scene(np.random.default_rng(8))
    k = K.line(11, 45, 13)
    blurred8 = (blur(sharp, k, noise=0.002) * 255).round().astype(np.uint8)
    out, outcome = BlindRestorer()(blurred8)
    assert outcome.changed, outcome.reason
    assert out.dtype == np.uint8 and out.shape == blurred8.shape
    assert psnr(out / 255.0, sharp) > psnr(blurred8 / 255.0, sharp) + 1.0


def test_blur_that_differs_across_the_photo_is_left_alone() -> None:
    """Left half shaken horizontally, right half vertically: no single kernel explains it."""
    rng = np.random.default_rng(9)
    a, b = scene(rng, 512, 512), scene(rng, 512, 512)
    left = blur(a, K.line(15, 0, 17), noise=0.002)[:, :256]
    right = blur(b, K.line(15, 90, 17), noise=0.002)[:, 256:]
    image = np.concatenate([left, right], axis=1)
    out, outcome = BlindRestorer()(image)
    assert out is image and not outcome.changed, outcome.reason


def test_a_given_kernel_skips_estimation_and_a_too_large_one_fails_the_image() -> None:
    sharp = scene(np.random.default_rng(10))
    k = K.gaussian(2.0, 13)
    blurred = blur(sharp, k)
    out, outcome = BlindRestorer(kernel=k)(blurred)
    assert outcome.changed and outcome.estimate is not None and outcome.estimate.kind == "given"
    assert psnr(out, sharp) > psnr(blurred, sharp) + 2.0
    with pytest.raises(DataError, match="larger than"):
        BlindRestorer(kernel=K.delta(301))(blurred)


def test_alpha_is_passed_through_and_gray_stays_gray() -> None:
    sharp = scene(np.random.default_rng(11))
    blurred = blur(sharp, K.line(9, 10, 11), noise=0.002)
    rgba = np.concatenate([blurred, np.linspace(0, 1, blurred.shape[1], dtype=np.float32)[None, :, None]
                           .repeat(blurred.shape[0], 0)], axis=2)
    out, _ = BlindRestorer(kernel=K.line(9, 10, 11))(rgba)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    gray, _ = BlindRestorer(kernel=K.line(9, 10, 11))(blurred[..., 0])
    assert gray.shape == blurred.shape[:2]


def test_tiny_images_are_left_alone() -> None:
    tiny = np.random.default_rng(12).random((32, 32, 3)).astype(np.float32)
    out, outcome = BlindRestorer()(tiny)
    assert out is tiny and "too small" in outcome.reason


def test_edge_sharpness_separates_sharp_from_blurred() -> None:
    sharp = scene(np.random.default_rng(13))[..., 0]
    blurred = blur(sharp[..., None], K.disk(3, 9))[..., 0]
    assert edge_sharpness(sharp) >= SHARP_EDGES > edge_sharpness(blurred)


def test_halo_guard_takes_back_a_reversed_edge_and_leaves_a_sharpened_one() -> None:
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (32, 1))
    steeper = np.clip((ramp - 0.5) * 1.5 + 0.5, 0, 1)
    kept, frac = halo_guard(ramp, steeper.copy())  # the guard works in place on the output
    np.testing.assert_allclose(kept, steeper, atol=1e-6)
    assert frac == 0
    reversed_ = 1.0 - ramp
    guarded, frac = halo_guard(ramp, reversed_.copy())
    assert frac > 0.5 and np.abs(guarded - ramp).mean() < np.abs(reversed_ - ramp).mean() / 2


@pytest.mark.parametrize("bad", [{"weight": float("nan")}, {"weight": -1.0}, {"alpha": 0.0}, {"crops": 0},
                                 {"crops": 1.5}, {"max_kernel": 2}, {"max_kernel": True}])
def test_settings_are_checked(bad: dict) -> None:
    with pytest.raises(DeblurError):
        BlindSettings(**bad)


def test_an_estimated_kernel_too_wide_for_the_blur_is_refused_by_the_re_blur_check(monkeypatch) -> None:
    """A mild blur (Gaussian, sigma 1.2) that estimation took for a wide defocus: triage is made to
    pass it, and the deconvolution, clipped, no longer re-blurs to the photo within a few noise sigmas.
    The right kernel, "estimated" the same way, passes the same check."""
    from deblur.restore import blind, triage
    from deblur.restore.estimate import KernelEstimate

    sharp = scene(np.random.default_rng(11))
    true = K.gaussian(1.2, 9)
    blurred = blur(sharp, true, noise=0.002)
    monkeypatch.setattr(blind.triage, "edge_sharpness", lambda gray: 0.1)
    monkeypatch.setattr(blind.triage, "judge", lambda *a: triage.Verdict(True, "made to pass"))
    for kernel, kept in ((K.disk(6.0, 13), False), (true, True)):
        monkeypatch.setattr(blind, "estimate_kernel", lambda image, k=kernel, **kw: KernelEstimate(k, "free"))
        out, outcome = BlindRestorer()(blurred)
        assert outcome.changed is kept, outcome.reason
        if not kept:
            assert out is blurred and "blurred again" in outcome.reason
            assert outcome.reblur is not None and outcome.reblur < blind.REBLUR_LIMIT  # the old limit let it by
