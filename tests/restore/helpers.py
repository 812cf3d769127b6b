"""Synthetic scenes for the restore tests: step edges in every direction, the structure a blur
kernel is estimated from, blurred with a known kernel."""

from __future__ import annotations

import cv2
import numpy as np


def scene(rng: np.random.Generator, h: int = 256, w: int = 256) -> np.ndarray:
    """A float32 gray-ish RGB image of flat rectangles and disks (sharp step edges), in [0.1, 0.9]."""
    img = np.full((h, w, 3), 0.5, np.float32)
    for _ in range(40):
        colour = rng.uniform(0.1, 0.9, 3).astype(np.float32)
        y, x = int(rng.integers(0, h - 20)), int(rng.integers(0, w - 20))
        if rng.random() < 0.5:
            img[y:y + int(rng.integers(10, 60)), x:x + int(rng.integers(10, 60))] = colour
        else:
            cv2.circle(img, (x, y), int(rng.integers(5, 25)), colour.tolist(), -1)
    return img


def blur(image: np.ndarray, kernel: np.ndarray, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Convolve (not correlate) with `kernel`, reflected borders, plus Gaussian noise, 8-bit rounded."""
    flipped = kernel[::-1, ::-1].astype(np.float32)
    out = np.stack([cv2.filter2D(image[..., c], -1, flipped, borderType=cv2.BORDER_REFLECT)
                    for c in range(image.shape[2])], axis=2)
    out = out + np.random.default_rng(seed).normal(0.0, noise, out.shape).astype(np.float32)
    return (np.round(np.clip(out, 0.0, 1.0) * 255.0) / 255.0).astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray, border: int = 16) -> float:
    d = np.clip(a, 0, 1)[border:-border, border:-border] - b[border:-border, border:-border]
    return float(10.0 * np.log10(1.0 / np.mean(d * d)))
