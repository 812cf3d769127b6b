"""Training pairs for the refiner: real photos blurred, then deconvolved exactly as the built-in restorer does.

The refiner (deblur.models.refiner) learns to clean up what the deconvolution leaves: ringing at strong
edges, amplified noise, JPEG blocks turned into patterns, and the residual blur of a kernel that is a
little wrong. So its inputs must carry those artefacts as the pipeline makes them. Each example is a
sharp photo blurred with one of deblur's own degradations (fresh parameters per draw), Poisson-Gaussian
sensor noise and, on some draws, JPEG; then deconvolved (deblur.restore.deconvolve, the pipeline's
weight and alpha) with a kernel chosen the way the pipeline would have it:

  true       the kernel that made the blur (the ceiling: estimation exactly right)
  perturbed  the true kernel with one error of the kind estimation makes: entries jittered and the
             support grown by a pixel, scaled by 0.8-1.2, or cut to a smaller square (a size chosen
             too small); every perturbed kernel is then re-centred on its centroid as the estimator
             re-centres its own, which moves it by up to half a pixel (the sub-pixel shift)
  estimated  the estimator's own kernel for the blurred photo (deblur.restore.estimate)

Deep Wiener Deconvolution (Dong, Roth and Schiele, NeurIPS 2020) trains its refinement on the output of
an explicit deconvolution in the same way; departure: the deconvolution here is the classical one the
pipeline ships (not learned features), and the refiner sees the deconvolved photo only, so the pairs
are ordinary (input, sharp) images that every deblur pipeline and backend trains on.

The deconvolution runs once per blurred photo, when the pairs are made: on two CPU cores it costs
seconds per photo, more than a training step, so it is paid once and each epoch cuts fresh crops
and flips from the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deblur.restore import kernels as K
from deblur.restore.blind import DEFAULT_ALPHA, DEFAULT_WEIGHT
from deblur.restore.deconvolve import deconvolve

# What the training mix draws, in the units of deblur's degradations (data.degradation). Wider than
# the blind benchmark's ranges (scripts/bench_blind.py) on both sides, so the benchmark's blurs are
# inside what the refiner saw.
KINDS: dict[str, tuple[float, dict[str, object]]] = {
    "shake": (0.40, {"kind": "shake", "size": [5.0, 35.0]}),
    "motion": (0.20, {"kind": "motion", "length": [5.0, 35.0], "angle": [0.0, 180.0]}),
    "gaussian": (0.20, {"kind": "gaussian", "sigma": [0.7, 3.5]}),
    "defocus": (0.20, {"kind": "defocus", "radius": [1.5, 7.0]}),
}
SENSOR = {"noise": [0.0, 0.012], "shot": [0.0, 0.0004]}
JPEG_SHARE, JPEG_QUALITY = 0.6, [60.0, 95.0]
SOURCES = {"true": 0.25, "perturbed": 0.45, "estimated": 0.30}


@dataclass
class Example:
    name: str
    sharp: np.ndarray        # float32 HxWx3 in [0, 1]
    blurred: np.ndarray
    deconvolved: np.ndarray  # clipped to [0, 1], as the refiner receives it
    kind: str
    source: str              # true | perturbed:<how> | estimated


def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names], np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def perturb(kernel: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """The kernel with one estimation-like error (see the module's docstring), re-centred."""
    k = K.normalise(kernel)
    how = _choice(rng, {"jitter": 1.0, "scale": 1.0, "size": 1.0})
    if how == "jitter":
        k = np.pad(k, 1)
        grown = np.maximum(k, 0.25 * _dilate(k))
        noise = rng.normal(0.0, 0.25, k.shape) * grown
        k = K.normalise(np.maximum(k + noise, 0.0) + 0.05 * grown * rng.uniform(size=k.shape))
    elif how == "scale" or k.shape[0] < 7:
        k, how = _rescaled(k, float(rng.uniform(0.8, 1.2))), "scale"
    else:  # size: a square two to four pixels smaller, its tails lost
        k = K.fit(k, k.shape[0] - 2 * int(rng.integers(1, 3)))
    return K.centre(k), how


def _rescaled(k: np.ndarray, factor: float) -> np.ndarray:
    """The kernel resampled `factor` times as large, by at least one odd size step (K.scale rounds to
    odd sizes, and a factor near 1 would leave a kernel unchanged)."""
    n = k.shape[0]
    size = K.odd(n * factor)
    if size == n:
        size = n + 2 if factor >= 1 or n < 5 else n - 2
    return K.resize(k, size)


def _dilate(k: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    return ndimage.maximum_filter(k, size=3)


def blur_once(sharp: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """(blurred photo, the kernel that blurred it, kind): one draw of the training mix."""
    from keras import ops

    from deblur.data import degrade

    kind = _choice(rng, {k: w for k, (w, _) in KINDS.items()})
    spec = dict(KINDS[kind][1], **SENSOR)
    if rng.uniform() < JPEG_SHARE:
        spec["jpeg"] = JPEG_QUALITY
    deg = degrade.make(spec)
    u = rng.uniform(size=4).astype(np.float32)
    noise = rng.standard_normal(sharp.shape).astype(np.float32)
    out, p = deg.apply(ops.convert_to_tensor(sharp), ops.convert_to_tensor(u), ops.convert_to_tensor(noise))
    params = {k: float(ops.convert_to_numpy(v)) for k, v in p.items()}
    return np.asarray(ops.convert_to_numpy(out), np.float32), degrade.kernel_array(deg, params), kind


def make_example(name: str, sharp: np.ndarray, rng: np.random.Generator,
                 estimator: Callable[[np.ndarray], np.ndarray] | None = None) -> Example:
    """One training example from a sharp photo (float32 HxWx3 in [0, 1])."""
    blurred, kernel, kind = blur_once(sharp, rng)
    source = _choice(rng, SOURCES)
    if source == "perturbed":
        kernel, how = perturb(kernel, rng)
        source = f"perturbed:{how}"
    elif source == "estimated":
        if estimator is None:
            from deblur.restore.estimate import estimate_kernel

            kernel = estimate_kernel(blurred, crops=2).kernel
        else:
            kernel = estimator(blurred)
    deconvolved = np.clip(deconvolve(blurred, kernel, DEFAULT_WEIGHT, DEFAULT_ALPHA), 0.0, 1.0)
    return Example(name, sharp, blurred, deconvolved, kind, source)


def examples(photos: Iterable[tuple[str, np.ndarray]], draws: int, seed: int) -> Iterator[Example]:
    """`draws` examples of every (name, sharp photo), seeded per photo so any subset is reproducible."""
    for index, (name, sharp) in enumerate(photos):
        rng = np.random.default_rng([seed, index])
        for _ in range(draws):
            yield make_example(name, sharp, rng)


def write_pair(root: Path, ex: Example, number: int) -> None:
    """GoPro's layout (`<sequence>/blur/`, `<sequence>/sharp/`), one sequence per photo, so the pairs
    source splits by photo and no photo is in two splits."""
    from deblur.imaging.imageio import from_float, write_image

    stem = f"{ex.name}_{number:03d}"
    for sub, image in (("blur", ex.deconvolved), ("sharp", ex.sharp)):
        folder = root / ex.name / sub
        folder.mkdir(parents=True, exist_ok=True)
        write_image(folder / f"{stem}.png", from_float(image, np.dtype(np.uint8), "a training pair"))
