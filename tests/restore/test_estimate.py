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
