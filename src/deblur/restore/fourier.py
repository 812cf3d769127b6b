"""Fourier-domain building blocks shared by kernel estimation and deconvolution.

Every solver here works on real images with `scipy.fft.rfft2`, which uses all cores (`workers=-1`)
and both float32 and float64: estimation runs in float64 on a small crop, full-resolution
deconvolution in float32 to halve time and memory.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike
from scipy import fft as sfft

WORKERS = -1  # scipy.fft: one thread per core


def rfft2(x: np.ndarray) -> np.ndarray:
    return sfft.rfft2(x, workers=WORKERS)


def irfft2(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return sfft.irfft2(x, s=shape, workers=WORKERS)


def fast_shape(h: int, w: int) -> tuple[int, int]:
    """The next sizes at or above (h, w) whose FFT is fast (products of 2, 3, 5)."""
    return sfft.next_fast_len(h, real=True), sfft.next_fast_len(w, real=True)


def pad_for_fft(plane: np.ndarray, pad: int) -> np.ndarray:
    """`plane` reflected outwards by `pad` pixels on every side, and further at the bottom and right up
    to a fast FFT size; the plane itself starts at (pad, pad)."""
    h, w = plane.shape
    fh, fw = fast_shape(h + 2 * pad, w + 2 * pad)
    return np.pad(plane, ((pad, fh - h - pad), (pad, fw - w - pad)), mode="symmetric")


def otf(kernel: np.ndarray, shape: tuple[int, int], dtype: DTypeLike = np.float64) -> np.ndarray:
    """The half-spectrum transfer function of `kernel` for images of `shape` (MATLAB's psf2otf):
    the kernel zero-padded to `shape` and rolled so that its centre pixel sits at the origin."""
    kh, kw = kernel.shape
    big = np.zeros(shape, dtype=dtype)
    big[:kh, :kw] = kernel
    big = np.roll(big, (-(kh // 2), -(kw // 2)), axis=(0, 1))
    return rfft2(big)


def gradient_otfs(shape: tuple[int, int], dtype: DTypeLike = np.float64) -> tuple[np.ndarray, np.ndarray]:
    """Transfer functions of the forward differences d/dx = x[i, j+1] - x[i, j] and d/dy."""
    dx = np.zeros((1, 3), dtype)
    dx[0, 1], dx[0, 2] = -1.0, 1.0  # centre at column 1: x[j+1] - x[j] (a correlation kernel, flipped below)
    dy = dx.reshape(3, 1)
    # otf() implements convolution; convolving with [1, -1, 0] (flipped [0, -1, 1]) is the forward difference
    return otf(dx[:, ::-1], shape, dtype), otf(dy[::-1, :], shape, dtype)


def grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Circular forward differences, matching `gradient_otfs`."""
    return np.roll(x, -1, axis=1) - x, np.roll(x, -1, axis=0) - x


def grad_t(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """The adjoint of `grad` (a negative divergence)."""
    return (np.roll(gx, 1, axis=1) - gx) + (np.roll(gy, 1, axis=0) - gy)


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Circular convolution of a 2-D image with a small kernel centred on its middle pixel."""
    shape = (image.shape[0], image.shape[1])
    return irfft2(rfft2(image) * otf(kernel, shape, image.dtype), shape).astype(image.dtype, copy=False)


def taper(padded: np.ndarray, kotf: np.ndarray, pad: int) -> np.ndarray:
    """Blend the outer `pad` frame of a reflected plane into its blurred, wrapped copy, so the plane
    is periodic and its border consistent with the blur (the idea of MATLAB's `edgetaper`)."""
    h, w = padded.shape
    blurred = irfft2(rfft2(padded) * kotf, (h, w)).astype(padded.dtype)
    alpha = np.outer(_ramp(h, pad, padded.dtype), _ramp(w, pad, padded.dtype))
    return alpha * padded + (1.0 - alpha) * blurred


def _ramp(n: int, pad: int, dtype: DTypeLike) -> np.ndarray:
    r = np.ones(n, dtype)
    edge = 0.5 - 0.5 * np.cos(np.pi * np.linspace(0.0, 1.0, pad, dtype=dtype))
    r[:pad] = edge
    r[n - pad:] = edge[::-1]
    return r
