"""Blur kernels as NumPy arrays: projection onto valid kernels, centring, resizing, and the parametric
families (Gaussian, defocus disk, linear motion) that a free-form estimate is checked against.

A kernel here is a 2-D float64 array of odd size that is non-negative and sums to 1; its centre pixel
is the origin of the convolution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy import ndimage


def odd(n: float) -> int:
    """The odd integer at or above n (at least 1)."""
    k = max(1, math.ceil(n))
    return k if k % 2 else k + 1


def normalise(k: np.ndarray) -> np.ndarray:
    k = np.maximum(np.asarray(k, np.float64), 0.0)
    total = k.sum()
    if not np.isfinite(total) or total <= 0:
        return delta(k.shape[0])
    return k / total


def delta(size: int = 1) -> np.ndarray:
    k = np.zeros((size, size))
    k[size // 2, size // 2] = 1.0
    return k


def project(k: np.ndarray, rel_threshold: float = 0.05, min_mass: float = 0.1) -> np.ndarray:
    """Non-negative, small values cut, disconnected pieces holding little mass removed, sums to 1.

    The threshold and the mass rule are those of Pan et al.'s L0 code (values below 5 % of the peak
    set to 0; 8-connected pieces holding under 10 % of the mass dropped): estimation noise shows up as
    faint, scattered specks around the true trajectory, which is a connected curve.
    """
    k = np.maximum(np.nan_to_num(np.asarray(k, np.float64)), 0.0)
    if k.max() <= 0:
        return delta(k.shape[0])
    k = np.where(k >= rel_threshold * k.max(), k, 0.0)
    k = k / k.sum()
    labels, n = ndimage.label(k > 0, structure=np.ones((3, 3)))
    if n > 1:
        mass = ndimage.sum(k, labels, index=np.arange(1, n + 1))
        keep = np.concatenate([[False], mass >= min_mass])
        if keep.any():
            k = np.where(keep[labels], k, 0.0)
    return normalise(k)


def centroid(k: np.ndarray) -> tuple[float, float]:
    yy, xx = np.indices(k.shape)
    total = k.sum()
    return float((yy * k).sum() / total), float((xx * k).sum() / total)


def centre(k: np.ndarray) -> np.ndarray:
    """Shift the kernel by whole pixels so its centroid is nearest the middle pixel.

    A blind kernel is defined only up to a translation (the latent image shifts the other way); a
    centred kernel keeps the restored photo where the blurred one was.
    """
    cy, cx = centroid(k)
    mid = k.shape[0] // 2
    dy, dx = round(mid - cy), round(mid - cx)
    pad = max(abs(dy), abs(dx))
    if pad == 0:
        return k
    big = np.pad(k, pad)
    big = np.roll(big, (dy, dx), axis=(0, 1))
    return big[pad:pad + k.shape[0], pad:pad + k.shape[1]]


def trim(k: np.ndarray, margin: int = 1) -> np.ndarray:
    """The smallest odd square around the centre that holds all of the kernel's support."""
    nz = np.argwhere(k > 0)
    if nz.size == 0:
        return delta(1)
    mid = k.shape[0] // 2
    r = int(np.abs(nz - mid).max()) + margin
    r = min(r, mid)
    return normalise(k[mid - r:mid + r + 1, mid - r:mid + r + 1])


def resize(k: np.ndarray, size: int) -> np.ndarray:
    """Resample a kernel to `size` x `size` (odd), keeping its centre at the middle pixel."""
    if k.shape[0] == size:
        return normalise(k)
    out = cv2.resize(k, (size, size), interpolation=cv2.INTER_LINEAR if size > k.shape[0] else cv2.INTER_AREA)
    return normalise(out)


def fit(k: np.ndarray, size: int) -> np.ndarray:
    """The kernel zero-padded or centre-cropped to size x size (odd), renormalised."""
    n = k.shape[0]
    if size > n:
        p = (size - n) // 2
        return np.pad(k, p)
    c = (n - size) // 2
    return normalise(k[c:c + size, c:c + size])


def support(k: np.ndarray) -> int:
    """The side of the smallest centred odd square holding all of the kernel's non-zero values."""
    nz = np.argwhere(k > 0)
    if nz.size == 0:
        return 1
    return 2 * int(np.abs(nz - k.shape[0] // 2).max()) + 1


def scale(k: np.ndarray, factor: float) -> np.ndarray:
    """The kernel of the same blur at an image scale `factor` times as large (factor > 1 upsamples)."""
    return resize(k, odd(k.shape[0] * factor))


def spread(k: np.ndarray) -> float:
    """The kernel's RMS radius in pixels (0 for a delta)."""
    cy, cx = centroid(k)
    yy, xx = np.indices(k.shape)
    return float(np.sqrt((((yy - cy) ** 2 + (xx - cx) ** 2) * k).sum()))


def cut_faint(k: np.ndarray, share: float) -> np.ndarray:
    """The kernel without its faintest values that together hold `share` of its mass, projected again.

    A cut by mass, not by a fraction of the peak: a genuine camera-shake trajectory has long faint
    stretches (where the camera moved fast) that a peak-relative cut removes, while the speckle an
    estimate leaves around the trajectory is many values each holding almost nothing.
    """
    k = normalise(k)
    values = np.sort(k.ravel())
    below = np.cumsum(values)
    if share <= 0 or below[-1] <= share:
        return k
    threshold = values[np.searchsorted(below, share, side="right")]
    return project(np.where(k >= threshold, k, 0.0))


def narrow(k: np.ndarray, by: float) -> np.ndarray:
    """The kernel zoomed about its centroid so that its variance drops by `by`**2 (RMS radius
    sqrt(spread**2 - by**2)), never below half its size; same array size, renormalised."""
    s = spread(k)
    if s <= 0 or by <= 0:
        return k
    factor = math.sqrt(max(1.0 - (by / s) ** 2, 0.25))
    cy, cx = centroid(k)
    m = cv2.getRotationMatrix2D((cx, cy), 0.0, factor)
    zoomed = cv2.warpAffine(k.astype(np.float64), m, (k.shape[1], k.shape[0]), flags=cv2.INTER_LINEAR)
    return normalise(np.maximum(zoomed, 0.0))


def gaussian(sigma: float, size: int) -> np.ndarray:
    r = size // 2
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-x * x / (2.0 * max(sigma, 1e-3) ** 2))
    return normalise(np.outer(g, g))


def disk(radius: float, size: int) -> np.ndarray:
    r = size // 2
    yy, xx = np.indices((size, size)) - r
    return normalise(np.clip(radius + 0.5 - np.hypot(yy, xx), 0.0, 1.0))


def line(length: float, angle_deg: float, size: int) -> np.ndarray:
    """An anti-aliased segment of `length` pixels at `angle_deg` (counter-clockwise, rows grow down)."""
    r = size // 2
    yy, xx = (np.indices((size, size)) - r).astype(np.float64)
    theta = math.radians(angle_deg)
    dx, dy = math.cos(theta), -math.sin(theta)
    half = max(length - 1.0, 0.0) / 2.0
    along = np.clip(xx * dx + yy * dy, -half, half)
    dist = np.hypot(xx - along * dx, yy - along * dy)
    return normalise(np.clip(1.0 - dist, 0.0, 1.0))


def _moments(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cy, cx = centroid(k)
    yy, xx = np.indices(k.shape)
    dy, dx = yy - cy, xx - cx
    cov = np.array([[(dx * dx * k).sum(), (dx * dy * k).sum()], [(dx * dy * k).sum(), (dy * dy * k).sum()]])
    return np.linalg.eigh(cov)


def elongation(k: np.ndarray) -> float:
    """Ratio of the kernel's largest to smallest principal standard deviation (1: round)."""
    evals, _ = _moments(k)
    return float(np.sqrt(max(evals[1], 1e-9) / max(evals[0], 1e-9)))


@dataclass(frozen=True)
class Fit:
    """A parametric kernel fitted to a free-form one by its second moments."""

    kind: str
    params: dict[str, float]
    kernel: np.ndarray


def parametric_fits(k: np.ndarray) -> list[Fit]:
    """Gaussian, disk and line kernels with the free-form kernel's second moments.

    For a Gaussian each axis has variance sigma^2; for a uniform disk of radius r, r^2 / 4; for a
    segment of length L, L^2 / 12 along it and ~0 across. The fit is by moments rather than by a
    search because the moments of an L0 estimate are stable even where its shape is noisy.
    """
    evals, evecs = _moments(k)
    size = k.shape[0]
    fits = []
    mean_var = float(evals.mean())
    sigma = math.sqrt(max(mean_var, 1e-6))
    fits.append(Fit("gaussian", {"sigma": sigma}, gaussian(sigma, size)))
    radius = 2.0 * math.sqrt(max(mean_var, 1e-6))
    fits.append(Fit("defocus", {"radius": radius}, disk(radius, size)))
    length = math.sqrt(12.0 * max(float(evals[1]) - float(evals[0]), 0.0)) + 1.0
    vx, vy = evecs[0, 1], evecs[1, 1]
    angle = math.degrees(math.atan2(-vy, vx)) % 180.0
    fits.append(Fit("motion", {"length": length, "angle": angle}, line(length, angle, size)))
    return fits


def from_image(pixels: np.ndarray) -> np.ndarray:
    """A kernel from a picture of one (gray or colour, any bit depth): summed channels, made square
    and odd by zero padding around the centre, normalised. Raises ValueError on unusable content."""
    k = np.asarray(pixels, np.float64)
    if k.ndim == 3:
        k = k[..., :3].mean(axis=2) if k.shape[2] >= 3 else k[..., 0]
    if k.ndim != 2 or k.size == 0:
        raise ValueError("a kernel picture must be a 2-D image")
    if not np.all(np.isfinite(k)):
        raise ValueError("the kernel has non-finite values")
    if k.min() < 0:
        raise ValueError("the kernel has negative values")
    if k.sum() <= 0:
        raise ValueError("the kernel is empty (all zero)")
    size = odd(max(k.shape))
    out = np.zeros((size, size))
    top, left = (size - k.shape[0]) // 2, (size - k.shape[1]) // 2
    out[top:top + k.shape[0], left:left + k.shape[1]] = k
    return out / out.sum()


def to_image(k: np.ndarray, min_size: int = 64) -> np.ndarray:
    """An 8-bit picture of a kernel, scaled so its peak is white, enlarged (nearest) to be visible."""
    peak = k.max()
    img = np.round(255.0 * k / peak).astype(np.uint8) if peak > 0 else np.zeros(k.shape, np.uint8)
    factor = max(1, math.ceil(min_size / k.shape[0]))
    return np.kron(img, np.ones((factor, factor), np.uint8))


MAX_KERNEL_FILE_SIDE = 1025  # a kernel picture larger than this is no blur kernel deblur can use


def load(path: str | Path) -> np.ndarray:
    """Read a kernel picture (`deblur predict --kernel`) through deblur's image reader, which applies
    every file check (regular file, size, pixel limit before decoding); refuse unusable content in one
    line naming the file (empty, negative or non-finite values, too large)."""
    from deblur.core.errors import DataError
    from deblur.imaging.imageio import read_image

    path = Path(path)
    pixels = read_image(path, max_pixels_mp=1.1)
    if max(pixels.shape[:2]) > MAX_KERNEL_FILE_SIDE:
        raise DataError(f"{path}: a {pixels.shape[1]}x{pixels.shape[0]} kernel is larger than deblur takes "
                        f"({MAX_KERNEL_FILE_SIDE} px)")
    if pixels.ndim == 3 and pixels.shape[2] in (2, 4):
        pixels = pixels[..., :-1]  # alpha is no part of a kernel
    try:
        return from_image(pixels)
    except ValueError as exc:
        raise DataError(f"{path}: {exc}") from None
