"""Pictures for evaluation reports, drawn with OpenCV (no plotting library is a dependency).

`gallery` shows chosen items as blurred / restored / sharp with their PSNR; `curves` plots a run's
training history (loss and validation PSNR per epoch).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

FONT = cv2.FONT_HERSHEY_SIMPLEX
WHITE = (255, 255, 255)
PANEL_MIN = 160  # small images (CIFAR's 32x32) are enlarged, pixel by pixel, to at least this height


def _put_text(image: np.ndarray, text: str, *args: Any) -> None:
    """cv2.putText with the text made ASCII: its Hershey fonts draw nothing else, and a file name that is
    not UTF-8 (a lone surrogate in Python) crashed OpenCV with a segmentation fault."""
    cv2.putText(image, text.encode("ascii", "replace").decode("ascii"), *args)


def _to_rgb8(image: np.ndarray) -> np.ndarray:
    # NaN cast to uint8 is undefined (in practice 0); draw it as black on purpose, never as chance bytes
    x = np.clip(np.rint(np.nan_to_num(np.asarray(image, np.float32), nan=0.0) * 255), 0, 255).astype(np.uint8)
    return np.repeat(x, 3, axis=2) if x.shape[2] == 1 else x


def _panel(image: np.ndarray, label: str, height: int) -> np.ndarray:
    img = _to_rgb8(image)
    scale = height / img.shape[0]
    interp = cv2.INTER_NEAREST if scale >= 1 else cv2.INTER_AREA
    img = cv2.resize(img, (max(1, round(img.shape[1] * scale)), height), interpolation=interp)
    bar = np.zeros((22, img.shape[1], 3), np.uint8)
    _put_text(bar, label, (4, 16), FONT, 0.45, WHITE, 1, cv2.LINE_AA)
    return np.concatenate([img, bar], axis=0)


def gallery(rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, float, float]]) -> np.ndarray:
    """One row per item: (title, blurred, restored, sharp, psnr_blurred, psnr_restored), images in [0, 1]."""
    height = max(PANEL_MIN, min(360, max(r[3].shape[0] for r in rows)))
    lines = []
    for title, blurred, restored, sharp, p_in, p_out in rows:
        panels = [_panel(blurred, f"blurred {p_in:.2f} dB", height),
                  _panel(restored, f"restored {p_out:.2f} dB", height), _panel(sharp, "sharp", height)]
        gap = np.zeros((panels[0].shape[0], 6, 3), np.uint8)
        line = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
        head = np.zeros((24, line.shape[1], 3), np.uint8)
        _put_text(head, title, (4, 17), FONT, 0.5, WHITE, 1, cv2.LINE_AA)
        lines.append(np.concatenate([head, line], axis=0))
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 8), (0, width - line.shape[1]), (0, 0))) for line in lines]
    return np.concatenate(lines, axis=0)


def read_history(path: Path) -> dict[str, list[float]]:
    """A run's history.csv as columns of numbers; empty if it cannot be read (a report then has no curves)."""
    from deblur.core.safefile import HISTORY, UnsafeFile, read_small

    try:  # a regular file within a size limit: a FIFO or device under its name is never read
        text = read_small(path, HISTORY, "history.csv").decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
    except (OSError, UnsafeFile, UnicodeDecodeError, csv.Error):
        return {}
    keys = rows[0].keys() if rows else []
    out: dict[str, list[float]] = {}
    for k in keys:
        try:
            out[k] = [float(r[k]) for r in rows]
        except (TypeError, ValueError):
            continue
    return out


def _plot(series: dict[str, list[float]], title: str, size: tuple[int, int] = (300, 480)) -> np.ndarray:
    h, w = size
    img = np.full((h, w, 3), 255, np.uint8)
    left, right, top, bottom = 60, 12, 28, 34
    values = [v for s in series.values() for v in s if math.isfinite(v)]
    _put_text(img, title, (left, 18), FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    if not values:
        return img
    lo, hi = min(values), max(values)
    hi = hi if hi > lo else lo + 1e-6
    n = max(len(s) for s in series.values())
    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    for value, y in ((hi, top), (lo, h - bottom)):
        _put_text(img, f"{value:.4g}", (2, y + 4), FONT, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    _put_text(img, "epoch 1", (left, h - 14), FONT, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    _put_text(img, f"{n}", (w - right - 20, h - 14), FONT, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    colours = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)]
    for k, (name, s) in enumerate(series.items()):
        pts = [(left + (w - left - right) * (i / max(1, n - 1)), top + (h - top - bottom) * (1 - (v - lo) / (hi - lo)))
               for i, v in enumerate(s) if math.isfinite(v)]
        colour = colours[k % len(colours)]
        if len(pts) > 1:
            cv2.polylines(img, [np.round(np.array(pts)).astype(np.int32)], False, colour, 2, cv2.LINE_AA)
        for p in pts:
            cv2.circle(img, (round(p[0]), round(p[1])), 2, colour, -1)
        _put_text(img, name, (left + 8 + 120 * k, top + 16), FONT, 0.42, colour, 1, cv2.LINE_AA)
    return img


def curves(history: dict[str, list[float]]) -> np.ndarray:
    """Loss (train and validation) and validation PSNR per epoch, side by side."""
    loss: dict[str, list[float]] = {k: history[k] for k in ("loss", "val_loss") if k in history}
    quality: dict[str, list[float]] = {k: history[k] for k in ("psnr", "val_psnr") if k in history}
    return np.concatenate([_plot(loss, "loss"), _plot(quality, "PSNR (dB, training-time metric)")], axis=1)
