"""Camera-shake kernels: random hand-shake trajectories rasterised with sub-pixel accuracy.

The trajectory follows Boracchi and Foi, "Modeling the performance of image restoration from motion
blur" (IEEE TIP 2012), the generator DeblurGAN trains with: a point moves at constant speed, and at
every step its velocity receives a Gaussian push ("shake"), a pull back towards where it started
(centripetal inertia) and, now and then, an abrupt near-reversal (a "big shake"); how jittery the
hand is (`anxiety`) and each of those strengths are drawn per kernel. The path is then scaled so its
extent equals the kernel size drawn, centred, and every sample point is splatted bilinearly on the
pixel grid (sub-pixel sampling), which gives the smooth, curved, uneven-intensity kernels of real
camera shake rather than a straight line.

Everything is `keras.ops` on tensors, so the same code runs inside tf.data, inside a model on any
backend, and eagerly for a fixed test set. Its randomness is a deterministic function of one
uniform number per kernel: a Weyl sequence `frac(s * alpha_k + beta_k)` with fixed constants. Only
rounded multiplies and adds are involved (no amplified transcendental), so one `s` gives the same
trajectory on every backend, and the caller's seeding decides everything, as for the other kinds.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from keras import ops

STEPS = 48          # velocity updates along the path
SUBSTEPS = 4        # points splatted per step (linear interpolation), so no gaps at long sizes
_GLOBALS = 5        # anxiety, centripetal pull, big-shake probability, Gaussian shake, initial angle
_PER_STEP = 4       # two normals (Box-Muller), the big-shake test and its angle
_RNG = np.random.default_rng(20120101)  # fixed: the constants define the generator, not a seed
_ALPHA = _RNG.uniform(500.0, 1500.0, _GLOBALS + _PER_STEP * STEPS).astype(np.float32)
_BETA = _RNG.uniform(0.0, 1.0, _GLOBALS + _PER_STEP * STEPS).astype(np.float32)


def _uniforms(s: Any) -> Any:
    """[..., N] pseudo-uniform numbers in [0, 1) from one uniform per kernel (shape [...])."""
    x = s[..., None] * ops.convert_to_tensor(_ALPHA) + ops.convert_to_tensor(_BETA)
    return x - ops.floor(x)


def trajectory(s: Any) -> tuple[Any, Any]:
    """(x, y) sample points of shape [..., STEPS * SUBSTEPS + 1] of one shake path per seed `s`."""
    h = _uniforms(s)
    anxiety = 0.005 + 0.1 * h[..., 0]
    centripetal = 0.7 * h[..., 1]
    prob_big = 0.2 * h[..., 2]
    shake = 10.0 * h[..., 3]
    angle = 2.0 * math.pi * h[..., 4]
    step = 1.0 / STEPS  # unit path length; the extent is rescaled to the drawn size afterwards
    vx, vy = ops.cos(angle) * step, ops.sin(angle) * step
    x = y = ops.zeros_like(anxiety)
    xs, ys = [x], [y]
    for t in range(STEPS):
        u1, u2, big, turn = (h[..., _GLOBALS + _PER_STEP * t + j] for j in range(_PER_STEP))
        radius = ops.sqrt(-2.0 * ops.log(ops.maximum(u1, 1e-7)))
        nx, ny = radius * ops.cos(2.0 * math.pi * u2), radius * ops.sin(2.0 * math.pi * u2)
        # an abrupt shake: the velocity turned by about 180 degrees and doubled, as in the paper
        jump = ops.cast(big < prob_big * anxiety * 10.0, "float32")
        phi = math.pi + (turn - 0.5)
        jx = jump * 2.0 * (vx * ops.cos(phi) - vy * ops.sin(phi))
        jy = jump * 2.0 * (vx * ops.sin(phi) + vy * ops.cos(phi))
        vx = vx + jx + anxiety * (shake * nx - centripetal * x * STEPS) * step
        vy = vy + jy + anxiety * (shake * ny - centripetal * y * STEPS) * step
        norm = ops.maximum(ops.sqrt(vx * vx + vy * vy), 1e-12)
        vx, vy = vx / norm * step, vy / norm * step  # constant speed: exposure spread along the path
        x, y = x + vx, y + vy
        xs.append(x)
        ys.append(y)
    return _densify(ops.stack(xs, axis=-1)), _densify(ops.stack(ys, axis=-1))


def _densify(p: Any) -> Any:
    """Linear interpolation of SUBSTEPS points per step, so a long path leaves no gaps when splatted."""
    f = ops.convert_to_tensor(np.arange(SUBSTEPS, dtype=np.float32) / SUBSTEPS)
    inner = p[..., :-1, None] + (p[..., 1:, None] - p[..., :-1, None]) * f
    shape = ops.shape(inner)
    flat = ops.reshape(inner, (*shape[:-2], shape[-2] * shape[-1]))
    return ops.concatenate([flat, p[..., -1:]], axis=-1)


def kernel(size: Any, s: Any, radius: int) -> Any:
    """(2r+1)^2 kernels (a leading batch shape as `size`) of shake paths scaled to `size` pixels."""
    x, y = trajectory(s)
    # centre the path's bounding box and scale its larger side to size - 1 (a kernel of `size` px)
    x = x - (ops.max(x, axis=-1, keepdims=True) + ops.min(x, axis=-1, keepdims=True)) / 2.0
    y = y - (ops.max(y, axis=-1, keepdims=True) + ops.min(y, axis=-1, keepdims=True)) / 2.0
    extent = ops.maximum(ops.maximum(ops.max(x, axis=-1), ops.max(y, axis=-1)) * 2.0, 1e-6)
    scale = (ops.maximum(size, 1.0) - 1.0)[..., None] / extent[..., None]
    x, y = x * scale, y * scale
    grid = ops.arange(-radius, radius + 1, dtype="float32")
    # bilinear splat: every sample point spreads its exposure over its four nearest pixels
    wx = ops.relu(1.0 - ops.abs(grid - x[..., None]))  # [..., points, 2r+1]
    wy = ops.relu(1.0 - ops.abs(grid - y[..., None]))
    k = ops.einsum("...pi,...pj->...ij", wy, wx)
    return k / ops.sum(k, axis=(-2, -1), keepdims=True)
