"""The built-in restorer: triage, blind kernel estimation, non-blind deconvolution, do-no-harm guards.

    photo -> looks sharp?            -> returned bit-identical, with the reason
          -> estimate the kernel on two edge-rich regions (deblur.restore.estimate)
          -> kernels trusted? (triage) -> if not: returned bit-identical, with the reason
          -> deconvolve at full resolution (deblur.restore.deconvolve)
          -> blurred again, does it reproduce the photo? (reblur_error) -> if not: returned bit-identical
          -> refiner (optional: a network that cleans up what deconvolution leaves)
          -> halo guard (the input kept where the output reverses an edge)

The physics does the heavy lifting; a refiner plugs in after the deconvolution as a callable
`(blurred, deconvolved, kernel) -> restored`, all float32 HxWxC (the deconvolution clipped to [0, 1]); it may
overwrite `deconvolved`, which the pipeline does not use again, to save a copy of the photo. With a known kernel
(`kernel=`) triage and estimation are skipped: the user says what the blur is.

Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from deblur.core.errors import DataError, DeblurError
from deblur.imaging.imageio import check_finite, from_float, to_float
from deblur.restore import kernels as K
from deblur.restore import triage
from deblur.restore.deconvolve import deconvolve
from deblur.restore.estimate import KernelEstimate, estimate_kernel, luminance, noise_sigma, resize_gray

Refiner = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]

DEFAULT_WEIGHT = 1000.0   # data weight of the deconvolution (see deconvolve); tuned on validation photos
DEFAULT_ALPHA = 2.0 / 3.0  # hyper-Laplacian exponent (Krishnan and Fergus's choice)
REBLUR_FACTOR = 4.5       # an estimated kernel's deconvolution must re-blur to the photo within this
REBLUR_SLACK = 0.001      # many times (noise sigma + slack for JPEG); see reblur_error
REBLUR_LIMIT = 0.05       # a given kernel (the user's word) is only refused when it misses by this much
MIN_SIDE = 64              # smaller images hold too few edges to say what their blur is


@dataclass(frozen=True)
class BlindSettings:
    weight: float = DEFAULT_WEIGHT
    alpha: float = DEFAULT_ALPHA
    crops: int = 2                 # regions the kernel is estimated on (2: the blur must agree across them)
    max_kernel: int | None = None  # largest kernel searched, in the photo's pixels (None: automatic)
    halo_guard: bool = True

    def __post_init__(self) -> None:
        if not (np.isfinite(self.weight) and self.weight > 0):
            raise DeblurError(f"weight: must be a number above 0, got {self.weight!r}")
        if not (0.0 < self.alpha <= 1.0):
            raise DeblurError(f"alpha: must be in (0, 1], got {self.alpha!r}")
        if isinstance(self.crops, bool) or not isinstance(self.crops, int) or self.crops < 1:
            raise DeblurError(f"crops: must be a whole number of at least 1, got {self.crops!r}")
        if self.max_kernel is not None and (isinstance(self.max_kernel, bool) or not isinstance(self.max_kernel, int)
                                            or self.max_kernel < 3):
            raise DeblurError(f"max_kernel: must be a whole number of pixels, at least 3, got {self.max_kernel!r}")


@dataclass
class Outcome:
    """What the built-in restorer did to one photo."""

    image: np.ndarray                 # float32 HxWxC in [0, 1]; the input itself when not changed
    changed: bool
    reason: str                       # in words, for `deblur predict` to print per image
    estimate: KernelEstimate | None = None  # the kernel used (estimated or given); None if none was
    guarded: float = 0.0              # fraction of pixels the halo guard took back towards the input
    timings: dict[str, float] = field(default_factory=dict)
    reblur: float | None = None       # RMS error of the result re-blurred against the photo (working scale)


def reblur_error(work: np.ndarray, restored: np.ndarray, kernel: np.ndarray) -> float:
    """RMS difference between the photo and the restored photo blurred again with its kernel, on
    luminance at the working scale (the kernel resized to it), 8 % border left out. `work` is the
    photo's luminance at the working scale (`resize_gray(luminance(photo))`), which the restorer has
    already made for triage: it is not made again for each check.

    A deconvolution with the right kernel reproduces the photo to about its noise; one with a wrong
    kernel, once clipped to [0, 1], does not (a 7 px defocus found for a 2 px one cost a photo 21 dB on
    the benchmark, and its re-blur missed the photo by far). For an estimated kernel the limit is
    REBLUR_FACTOR x (noise sigma + REBLUR_SLACK), set on 295 images made from photos that the blind
    benchmark's test split never holds (its training and validation photos: `scripts/bench_blind.py
    --split train/val` blurs, and `scripts/bench_hard_cases.py`'s cases): the ratio was 0.6-3.3 where
    deconvolving gained, but 4.1 on the quick start's shaken astronaut, which deconvolving improves
    by 5 dB (JPEG's error in texture is not in the noise sigma, which flat areas measure). At 3.5 the
    limit refused 14 of the 295 that the absolute limit of 0.05 it replaced let by, all of which lost
    (0.2 to 17.6 dB), and the astronaut; at 4.5 it refuses 8 of them (0.4 to 17.6 dB lost), none that
    gained, and not the astronaut.
    """
    from deblur.restore import fourier

    after = resize_gray(luminance(restored))
    s = work.shape[0] / restored.shape[0]
    k = K.scale(kernel, s) if s < 1 else kernel
    again = fourier.convolve(after, k)
    mh, mw = max(k.shape[0], work.shape[0] // 12), max(k.shape[0], work.shape[1] // 12)
    diff = (again - work)[mh:-mh, mw:-mw]
    return float(np.sqrt(np.mean(diff * diff))) if diff.size else 0.0


class BlindRestorer:
    """Restore photos blurred by one (unknown or given) kernel; see the module's docstring."""

    def __init__(self, settings: BlindSettings | None = None, kernel: np.ndarray | None = None,
                 refiner: Refiner | None = None) -> None:
        self.settings = settings or BlindSettings()
        self.kernel = None if kernel is None else K.normalise(kernel)
        self.refiner = refiner

    def restore_float(self, colour: np.ndarray) -> Outcome:
        """Restore one HxWxC float32 image in [0, 1] (C = 1 or 3: colour channels only)."""
        import time

        s = self.settings
        t0 = time.perf_counter()
        h, w = colour.shape[:2]
        if self.kernel is not None:
            if self.kernel.shape[0] > min(h, w):
                raise DataError(f"the {self.kernel.shape[0]}x{self.kernel.shape[0]} kernel is larger than this {w}x{h} "
                                "image; nothing to deconvolve")
            estimate, sigma = KernelEstimate(self.kernel, "given"), 0.0
            work = resize_gray(luminance(colour))
            reason = f"deconvolved with the given {self.kernel.shape[0]}x{self.kernel.shape[0]} kernel"
        else:
            if min(h, w) < MIN_SIDE:
                return Outcome(colour, False, f"too small to estimate a blur from ({w}x{h}; needs {MIN_SIDE} px a "
                                              "side): left as it is")
            work = resize_gray(luminance(colour))
            sharpness = triage.edge_sharpness(work)
            verdict = triage.looks_sharp(sharpness)
            if verdict is not None:
                return Outcome(colour, False, verdict.reason, timings={"triage": time.perf_counter() - t0})
            estimate = estimate_kernel(colour, max_kernel=s.max_kernel, crops=s.crops)
            sigma = noise_sigma(work)
            verdict = triage.judge(estimate.work_kernels, estimate.residuals, sigma, sharpness)
            if not verdict.trusted:
                return Outcome(colour, False, verdict.reason, estimate,
                               timings={"estimate": time.perf_counter() - t0})
            size = estimate.kernel.shape[0]
            reason = f"restored: {verdict.reason}, kernel {size}x{size}"
        t1 = time.perf_counter()

        def left(reason: str, reblur: float) -> Outcome:
            return Outcome(colour, False, reason, estimate,
                           timings={"estimate": t1 - t0, "deconvolve": time.perf_counter() - t1}, reblur=reblur)

        out = deconvolve(colour, estimate.kernel, s.weight, s.alpha)
        np.clip(out, 0.0, 1.0, out=out)
        # judged on the deconvolution itself, before the refiner smooths what a wrong kernel leaves
        reblur = reblur_error(work, out, estimate.kernel)
        limit = REBLUR_LIMIT if self.kernel is not None else REBLUR_FACTOR * (sigma + REBLUR_SLACK)
        if reblur > limit:
            return left(f"the deconvolution does not reproduce the photo when blurred again (error {reblur:.4f}, "
                        f"limit {limit:.4f}): the kernel is wrong, left as it is", reblur)
        if self.refiner is not None:
            out = self.refiner(colour, out, estimate.kernel)
            np.clip(out, 0.0, 1.0, out=out)
            # and the refiner's result only for gross failure (a broken network): it removes noise that
            # the re-blur keeps, so the tight limit does not apply to it
            reblur = reblur_error(work, out, estimate.kernel)
            if reblur > REBLUR_LIMIT:
                return left(f"the refiner's result does not reproduce the photo when blurred again (error "
                            f"{reblur:.4f}): left as it is", reblur)
        guarded = 0.0
        if s.halo_guard:
            out, guarded = triage.halo_guard(colour, out)
        check_finite(out, "the deconvolution's output")
        return Outcome(out, True, reason, estimate, guarded,
                       {"estimate": t1 - t0, "deconvolve": time.perf_counter() - t1}, reblur)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, Outcome]:
        """Restore a uint8, uint16 or float ([0, 1]) image, HxW or HxWxC (C 1-4; alpha passed through).

        Returns an array of the same shape and dtype, and what was done. A photo left as it is comes
        back as the very array given (bit-identical).
        """
        squeeze = image.ndim == 2
        img = image[:, :, None] if squeeze else image
        alpha = img[:, :, -1:] if img.shape[2] in (2, 4) else None
        colour = img[:, :, :-1] if alpha is not None else img
        is_float = np.issubdtype(image.dtype, np.floating)
        if is_float:
            check_finite(colour, "the input image")
            work = np.clip(colour, 0.0, 1.0).astype(np.float32)
        else:
            work = to_float(colour)
        outcome = self.restore_float(work)
        if not outcome.changed:
            return image, outcome
        result = (np.clip(outcome.image, 0.0, 1.0).astype(image.dtype) if is_float
                  else from_float(outcome.image, image.dtype, "the deconvolution's output"))
        if alpha is not None:
            result = np.concatenate([result, alpha], axis=2)
        return (result[:, :, 0] if squeeze else result), outcome
