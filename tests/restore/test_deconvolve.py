from __future__ import annotations

import numpy as np
import pytest

from deblur.restore import deconvolve as D
from deblur.restore import kernels as K

from .helpers import blur, psnr, scene


def test_deconvolution_with_the_true_kernel_restores_a_blurred_scene() -> None:
    sharp = scene(np.random.default_rng(0))
    k = K.line(11, 30, 13)
    blurred = blur(sharp, k, noise=0.003)
    out = D.deconvolve(blurred, k, weight=2000.0)
    assert out.shape == blurred.shape and out.dtype == np.float32
    assert psnr(out, sharp) > psnr(blurred, sharp) + 5.0


def test_borders_do_not_ring() -> None:
    """Reflection plus tapering: the outer 16 px restore as well as the interior does, roughly."""
    sharp = scene(np.random.default_rng(1))
    k = K.disk(3, 9)
    out = D.deconvolve(blur(sharp, k), k)
    edge = np.concatenate([(out - sharp)[:16].ravel(), (out - sharp)[-16:].ravel()])
    inner = (out - sharp)[32:-32, 32:-32].ravel()
    assert np.sqrt(np.mean(edge ** 2)) < 3.0 * np.sqrt(np.mean(inner ** 2)) + 0.01


def test_tiled_planes_match_the_whole_plane(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiles with margins of 3 kernel sizes leave seams far below one 8-bit level on average."""
    rng = np.random.default_rng(2)
    sharp = np.concatenate([scene(rng), scene(rng)], axis=1)[:, :, 0]  # 256 x 512
    k = K.gaussian(1.5, 9)
    blurred = blur(sharp[..., None], k)[..., 0]
    whole = D.deconvolve_plane(blurred, k, 1000.0, 2 / 3)
    monkeypatch.setattr(D, "TILE_PIXELS", 100 * 100)
    monkeypatch.setattr(D, "TILE_CORE", 96)
    tiled = D.deconvolve_plane(blurred, k, 1000.0, 2 / 3)
    diff = np.abs(tiled - whole)
    assert diff.mean() < 0.5 / 255 and diff.max() < 8 / 255


@pytest.mark.parametrize("alpha", [1.0, 0.8, 2 / 3])
def test_shrinkage_solves_its_scalar_problem(alpha: float) -> None:
    """shrink(v) minimises 0.5 (w - v)^2 + lam |w|^alpha: no point of a fine grid does better."""
    v = np.linspace(-1, 1, 41)
    lam = 0.05
    w = D.shrink(v, lam, alpha)
    grid = np.linspace(-1.2, 1.2, 4801)[None, :]
    cost = 0.5 * (grid - v[:, None]) ** 2 + lam * np.abs(grid) ** alpha
    best = cost.min(axis=1)
    got = 0.5 * (w - v) ** 2 + lam * np.abs(w) ** alpha
    assert np.all(got <= best + 1e-4)
