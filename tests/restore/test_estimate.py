from __future__ import annotations

import numpy as np

from deblur.restore import estimate as E
from deblur.restore import fourier
from deblur.restore import kernels as K
from deblur.restore.deconvolve import deconvolve
from deblur.restore.triage import agreement

from .helpers import blur, scene


def test_the_kernel_solve_is_exact_on_noise_free_circular_data() -> None:
    rng = np.random.default_rng(3)
    x = E.luminance(scene(rng, 128, 128)).astype(np.float64)
    k = K.line(7, 60, 9)
    y = fourier.convolve(x, k)
    found = E.solve_kernel(fourier.grad(x), fourier.grad(y), 9, gamma=1e-6)
    assert np.abs(found - k).sum() < 1e-3


def test_blind_estimation_finds_a_motion_kernel_well_enough_to_deconvolve_with() -> None:
    """Levin et al.'s error ratio (deconvolution error with the estimate over that with the true
    kernel) stays under 3 on a scene of step edges with linear motion blur and noise."""
    sharp = scene(np.random.default_rng(4))
    k = K.line(9, 20, 11)
    blurred = blur(sharp, k, noise=0.002)
    est = E.estimate_kernel(blurred, max_kernel=15)
    assert est.kernel.sum() > 0.999 and est.kernel.shape[0] % 2 == 1
    assert agreement(est.kernel, k) > 0.7

    def err(kernel: np.ndarray) -> float:
        return float(np.mean((np.clip(deconvolve(blurred, kernel), 0, 1) - sharp)[16:-16, 16:-16] ** 2))

    assert err(est.kernel) / err(k) < 3.0


def test_estimation_is_deterministic() -> None:
    blurred = blur(scene(np.random.default_rng(5)), K.disk(2.5, 7), noise=0.002)
    a = E.estimate_kernel(blurred, max_kernel=11, crops=2, crop=128)
    b = E.estimate_kernel(blurred, max_kernel=11, crops=2, crop=128)
    np.testing.assert_array_equal(a.kernel, b.kernel)
    assert len(a.work_kernels) == 2


def test_noise_sigma_measures_added_noise() -> None:
    flat = np.full((200, 200), 0.5)
    noisy = flat + np.random.default_rng(6).normal(0, 0.02, flat.shape)
    assert abs(E.noise_sigma(noisy) - 0.02) < 0.004


def test_sharpest_first_orders_kernels_by_spread() -> None:
    wide, narrow, middle = K.gaussian(3.0, 15), K.gaussian(0.8, 15), K.disk(2.0, 15)
    assert E.sharpest_first([wide, narrow, middle]) == [1, 2, 0]


def test_the_kernel_comes_from_the_sharpest_region() -> None:
    """A photo whose left half was already soft (depth of field) before one blur shook all of it: the
    kernel used is the sharp half's, the smaller one, and the regions' kernels come smallest first."""
    rng = np.random.default_rng(11)
    soft = blur(scene(rng, 256, 256), K.gaussian(2.5, 15))
    faint = 0.5 + 0.3 * (scene(rng, 256, 256) - 0.5)  # sharp but of low contrast: the poorer region in edges
    photo = np.concatenate([soft, faint], axis=1)
    blurred = blur(photo, K.line(7, 30, 9), noise=0.002)
    est = E.estimate_kernel(blurred, crops=2, crop=256, max_kernel=21)
    spreads = [K.spread(k) for k in est.work_kernels]
    assert spreads == sorted(spreads) and spreads[0] < spreads[1]
    assert est.crops[0][1] >= 128  # the window used lies mostly in the sharp half
    assert abs(K.spread(est.kernel) - spreads[0]) < 0.5
