"""Do no harm: decide from the photo alone whether to deconvolve it, and guard the result.

Blind deconvolution with a wrong kernel is far worse than doing nothing (a 1.7 px kernel found on a
sharp photo cost it 10 dB here), and a photo can tell when not to try:
- `edge_sharpness`, before any estimation: a sharp photo has some truly abrupt edges in every
  direction; a blurred one has none across the blur. Cheap, and independent of the estimator, whose
  kernels on sharp, noisy JPEGs are not reliably a point;
- a kernel that is nearly a point (RMS radius under SHARP_SPREAD working pixels);
- kernels estimated on two separate regions that disagree: the blur varies across the photo (moving
  subjects, rotation, depth of field), and no single kernel explains it;
- a latent image whose re-blur misses the photo by far more than its noise level: the kernel does
  not explain the blur even where it was estimated.
A photo that fails any is returned bit-identical, with the reason in words. After deconvolution,
`halo_guard` keeps the input wherever the output reverses the direction of an edge, the signature of
ringing (after the halo removal of Polyblur, Delbracio et al. 2021, which blends towards the input
where gradients flip; here per pixel on luminance, weighted by how much of the input gradient the
output points against).

The thresholds were set on the validation photos of `scripts/bench_blind.py` (never on its test
photos), whose report states them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from deblur.restore import kernels as K
from deblur.restore.estimate import noise_sigma

SHARP_EDGES = 0.23       # edge_sharpness at or above this: the photo is taken as sharp
SHARP_SPREAD = 0.8       # working pixels: a kernel this close to a point means no blur worth removing
AGREEMENT = 0.45         # least normalised correlation between the kernels of two regions (0.55 until the
# re-blur check became relative to the noise: it now refuses most wrong kernels that low agreement let by, and
# 0.45 restores uniform camera shake that 0.55 refused; see deblur.restore.blind.reblur_error)
EDGE_RATIO = 2.5         # photo's edge sharpness over the kernel's: above, the kernel is too wide to be
# the blur (with true kernels on the validation photos: 0.9-1.2 for Gaussian and defocus, up to 2.4
# for long shake and motion, whose edges the 15 px contrast window cannot take in whole)
RESIDUAL_FACTOR = 4.0    # re-blur RMS above this many noise sigmas (plus JPEG slack): unexplained
RESIDUAL_SLACK = 0.01
CONTRAST_WINDOW = 15


@dataclass(frozen=True)
class Verdict:
    trusted: bool
    reason: str


def edge_sharpness(gray: np.ndarray) -> float:
    """How abrupt the photo's sharpest edges are, in the direction where they are least so.

    At each strong edge pixel (a local maximum of the gradient, above five noise sigmas, where the
    local contrast over a 15 px window exceeds 0.1), the ratio of the gradient to that contrast is
    about 1/2 for a step (central differences span two pixels) and 1/w for an edge blurred over w
    pixels. The 90th percentile per gradient direction (four bins) keeps the sharpest edges of each
    direction, and the least of the four catches motion blur, which leaves edges along the motion
    sharp. On the validation photos: sharp 0.234-0.321, blurred 0.099-0.244 (that one a Gaussian of
    sigma 1.3).
    """
    g = cv2.GaussianBlur(np.asarray(gray, np.float32), (0, 0), 0.7)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    mag = np.hypot(gx, gy)
    window = np.ones((CONTRAST_WINDOW, CONTRAST_WINDOW), np.uint8)
    contrast = cv2.dilate(g, window) - cv2.erode(g, window)
    tau = max(0.02, 5.0 * noise_sigma(gray))
    peak = (mag >= cv2.dilate(mag, np.ones((3, 3), np.uint8))) & (contrast > 0.1) & (mag > tau)
    angle = (np.arctan2(gy, gx) % np.pi)[peak]
    ratio = mag[peak] / contrast[peak]
    per_direction = []
    for b in range(4):
        sel = ratio[(angle >= b * np.pi / 4) & (angle < (b + 1) * np.pi / 4)]
        per_direction.append(float(np.quantile(sel, 0.9)) if sel.size >= 20 else 0.0)
    return min(per_direction)


def looks_sharp(score: float) -> Verdict | None:
    """`score` is the photo's `edge_sharpness` at the working scale."""
    if score >= SHARP_EDGES:
        return Verdict(False, f"looks sharp (edge sharpness {score:.2f} >= {SHARP_EDGES}): left as it is")
    return None


def kernel_sharpness(kernel: np.ndarray) -> float:
    """The `edge_sharpness` a step edge would have after this blur: per direction (0, 45, 90, 135
    degrees) the peak of the kernel's projection onto it, smoothed as `edge_sharpness` smooths (its
    Gaussian of 0.7 px and the two-pixel central difference); the least over directions."""
    r = kernel.shape[0] // 2
    yy, xx = np.indices(kernel.shape) - r
    smooth = np.convolve(cv2.getGaussianKernel(7, 0.7).ravel(), [0.5, 0.5])
    peaks = []
    for theta in np.deg2rad([0.0, 45.0, 90.0, 135.0]):
        bins = np.round(xx * np.cos(theta) + yy * np.sin(theta)).astype(int) + 2 * r
        profile = np.bincount(bins.ravel(), weights=kernel.ravel(), minlength=4 * r + 1)
        peaks.append(float(np.convolve(profile, smooth).max()))
    return min(peaks)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Peak normalised cross-correlation of two kernels over all shifts (1 = identical up to a shift)."""
    size = max(a.shape[0], b.shape[0])
    a = np.pad(a, (size - a.shape[0]) // 2)
    b = np.pad(b, (size - b.shape[0]) // 2)
    corr = cv2.matchTemplate(np.pad(a, size // 2).astype(np.float32), b.astype(np.float32), cv2.TM_CCORR_NORMED)
    return float(corr.max())


def judge(work_kernels: list[np.ndarray], residuals: list[float], sigma: float, sharpness: float) -> Verdict:
    """Whether a kernel estimate (one kernel per region, at the working scale) may be used;
    `sharpness` is the photo's `edge_sharpness` at that scale."""
    first = work_kernels[0]
    spread = K.spread(first)
    if spread < SHARP_SPREAD:
        return Verdict(False, f"looks sharp (estimated blur {spread:.1f} px RMS): left as it is")
    ratio = sharpness / max(kernel_sharpness(first), 1e-6)
    if ratio > EDGE_RATIO:
        return Verdict(False, f"the estimated kernel is wider than the photo's sharpest edges allow (they are "
                              f"{ratio:.1f}x sharper than it would leave them): left as it is")
    for other in work_kernels[1:]:
        score = agreement(first, other)
        if score < AGREEMENT:
            return Verdict(False, f"the blur differs across the photo (the kernels of two regions agree {score:.2f}, "
                                  f"under {AGREEMENT}): no single kernel explains it, left as it is")
    limit = RESIDUAL_FACTOR * sigma + RESIDUAL_SLACK
    if residuals and residuals[0] > limit:
        return Verdict(False, f"the estimated kernel does not explain the blur (re-blur error {residuals[0]:.3f}, "
                              f"noise {sigma:.3f}): left as it is")
    return Verdict(True, f"blur of {spread:.1f} px RMS")


GUARD_STRIP = 512  # rows per strip: the guard's full-size temporaries would cost a 24 MP photo ~1.5 GB
GUARD_HALO = 8     # rows of context each strip needs (Sobel 1 + Gaussian sigma 1.5 truncated at 4 sigma)


def halo_guard(blurred: np.ndarray, restored: np.ndarray) -> tuple[np.ndarray, float]:
    """Blend the output back towards the input where it reverses an edge of the input, in place on
    `restored` (float32), strip by strip so memory stays bounded on large photos.

    Returns the guarded image and the fraction of pixels that were changed.
    """
    h = restored.shape[0]
    changed = 0
    for top in range(0, h, GUARD_STRIP):
        lo, hi = max(0, top - GUARD_HALO), min(h, top + GUARD_STRIP + GUARD_HALO)
        weight = _reversal_weight(blurred[lo:hi], restored[lo:hi])[top - lo:top - lo + min(GUARD_STRIP, h - top)]
        rows = slice(top, top + weight.shape[0])
        changed += int((weight > 0.05).sum())
        w = weight[..., None] if restored.ndim == 3 else weight
        restored[rows] += w * (blurred[rows] - restored[rows])
    return restored, changed / float(restored.shape[0] * restored.shape[1])


def _reversal_weight(blurred: np.ndarray, restored: np.ndarray) -> np.ndarray:
    """Per pixel, the fraction of the input's luminance gradient the output points against, smoothed."""
    def lum(img: np.ndarray) -> np.ndarray:
        if img.ndim == 2:
            return img.astype(np.float32, copy=False)
        return (img[..., :3].mean(axis=2) if img.shape[2] >= 3 else img[..., 0]).astype(np.float32, copy=False)

    yb, yr = lum(blurred), lum(restored)
    bx, by = cv2.Sobel(yb, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(yb, cv2.CV_32F, 0, 1, ksize=3)
    rx, ry = cv2.Sobel(yr, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(yr, cv2.CV_32F, 0, 1, ksize=3)
    strength = bx * bx + by * by
    against = np.clip(-(bx * rx + by * ry) / (strength + 1e-3), 0.0, 1.0)  # 1: the edge fully reversed
    against[strength < 1e-4] = 0.0  # a flat input has no edge to reverse
    return cv2.GaussianBlur(against, (0, 0), 1.5)
