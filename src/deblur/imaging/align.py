"""Registering a hand-held blurred shot to its sharp twin, so a score measures blur, not framing.

The Kaggle blur dataset's pairs are separate photos: scored as they are, a perfect deblurrer would
still lose to misalignment. OpenCV's ECC estimates a homography (translation first, then the full
warp, on downscaled and lightly smoothed grays, since ECC on blurred vs sharp needs both smooth);
images are then compared only on the rectangle that both frames cover.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

WORK_SIDE = 512  # ECC runs on images no larger than this (faster, and robust to blur)
MIN_OVERLAP = 0.25  # an alignment that keeps less of the frame than this is treated as failed
MIN_CORRELATION = 0.5


@dataclass(frozen=True)
class Alignment:
    """`homography` maps sharp-frame pixels to blurred-frame pixels; `box` is (y0, y1, x0, x1)."""

    homography: np.ndarray
    box: tuple[int, int, int, int]
    correlation: float

    def warp(self, image: np.ndarray) -> np.ndarray:
        """Bring an image in the blurred frame (the blurred shot or its restoration) into the sharp frame."""
        h, w = image.shape[:2]
        out = cv2.warpPerspective(image, self.homography, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                  borderMode=cv2.BORDER_REFLECT)
        return out if out.ndim == 3 else out[:, :, None]

    def crop(self, image: np.ndarray) -> np.ndarray:
        y0, y1, x0, x1 = self.box
        return image[y0:y1, x0:x1]


def _gray(image: np.ndarray, scale: float) -> np.ndarray:
    g = image.mean(axis=2).astype(np.float32) if image.shape[2] > 1 else image[:, :, 0].astype(np.float32)
    if scale != 1.0:
        g = cv2.resize(g, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(g, (5, 5), 0)


def estimate(blurred: np.ndarray, sharp: np.ndarray) -> Alignment | None:
    """Align `blurred` to `sharp` (same size, float in [0, 1]); None when ECC cannot."""
    h, w = sharp.shape[:2]
    scale = min(1.0, WORK_SIDE / max(h, w))
    template, moving = _gray(sharp, scale), _gray(blurred, scale)
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)
    # OpenCV's stubs type the mask of the overload with gaussFiltSize as a required array; None (no mask)
    # is what OpenCV documents and accepts, hence the two ignores.
    try:
        _, shift = cv2.findTransformECC(template, moving, np.eye(2, 3, dtype=np.float32),  # type: ignore[call-overload]
                                        cv2.MOTION_TRANSLATION, criteria, None, 1)
        start = np.eye(3, dtype=np.float32)
        start[:2] = shift
        cc, warp = cv2.findTransformECC(template, moving, start, cv2.MOTION_HOMOGRAPHY, criteria,  # type: ignore[call-overload]
                                        None, 1)
    except cv2.error:
        return None
    if not np.all(np.isfinite(warp)) or cc < MIN_CORRELATION:
        return None
    s = np.diag([scale, scale, 1.0]).astype(np.float64)
    homography = np.linalg.inv(s) @ warp.astype(np.float64) @ s
    box = _overlap(homography, h, w)
    if box is None:
        return None
    return Alignment(homography=homography, box=box, correlation=float(cc))


def _overlap(homography: np.ndarray, h: int, w: int, margin: int = 2) -> tuple[int, int, int, int] | None:
    """The axis-aligned rectangle of the sharp frame that the warped blurred frame fully covers."""
    try:
        inverse = np.linalg.inv(homography)
    except np.linalg.LinAlgError:
        return None
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], dtype=np.float64).T
    mapped = inverse @ corners
    if np.any(mapped[2] <= 0):
        return None
    x, y = mapped[0] / mapped[2], mapped[1] / mapped[2]  # TL, TR, BL, BR in the sharp frame
    x0 = max(x[0], x[2], 0) + margin
    x1 = min(x[1], x[3], w - 1) - margin
    y0 = max(y[0], y[1], 0) + margin
    y1 = min(y[2], y[3], h - 1) - margin
    box = (int(np.ceil(y0)), int(np.floor(y1)) + 1, int(np.ceil(x0)), int(np.floor(x1)) + 1)
    area = max(0, box[1] - box[0]) * max(0, box[3] - box[2])
    return box if area >= MIN_OVERLAP * h * w else None
