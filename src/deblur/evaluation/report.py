"""Pictures for evaluation reports, drawn with OpenCV (no plotting library is a dependency).

`gallery` shows chosen items as blurred / restored / sharp with their PSNR (and, given a `BlindShown`
per item, the blind restorer's output and its estimated kernel beside the true one); `curves` plots a
run's training history (loss and validation PSNR per epoch).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class BlindShown:
    """What the blind restorer (the `blind` or `builtin` baseline) did to one gallery item."""

    name: str                     # the baseline's name, as --baselines spells it
    image: np.ndarray             # its output in [0, 1], as scored (the input itself when left unchanged)
    psnr: float
    changed: bool                 # False: triage (or the re-blur check) left the image as it was
    estimated: np.ndarray | None  # the kernel it deconvolved with; unused (so not shown) when not changed
    true: np.ndarray | None       # the synthetic degradation's kernel; None for real pairs, which have none


def _common_size(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both kernels zero-padded, centred, to one size: drawn at one scale, their extents can be compared."""
    h, w = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])

    def pad(k: np.ndarray) -> np.ndarray:
        dh, dw = h - k.shape[0], w - k.shape[1]
        return np.pad(k, ((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))

    return pad(a), pad(b)


def _kernel_panel(kernel: np.ndarray | None, label: str, height: int) -> np.ndarray:
    """A kernel's picture (black when there is none to show), widened so its label fits: the label is
    drawn after widening, as OpenCV clips text at the edge of the bar."""
    from deblur.restore.kernels import to_image

    picture = (np.zeros((height, height, 1), np.float32) if kernel is None
               else to_image(kernel)[:, :, None].astype(np.float32) / 255.0)
    img = _panel(picture, "", height)[:height]
    (text_width, _), _ = cv2.getTextSize(label, FONT, 0.45, 1)
    extra = max(0, text_width + 8 - img.shape[1])
    img = np.pad(img, ((0, 0), (extra // 2, extra - extra // 2), (0, 0)))
    bar = np.zeros((22, img.shape[1], 3), np.uint8)
    _put_text(bar, label, (4, 16), FONT, 0.45, WHITE, 1, cv2.LINE_AA)
    return np.concatenate([img, bar], axis=0)


def _kernel_column(shown: BlindShown, height: int) -> np.ndarray:
    """The estimated kernel above the true one, together as tall as an image panel with its label."""
    half = (height - 22) // 2  # two panels, each with its 22 px label bar, fill one panel's height
    if not shown.changed or shown.estimated is None:
        # the restorer deconvolved with no kernel: saying so is the truth, a kernel picture would not be
        estimated, top = None, f"{shown.name}: unchanged (triage)"
    else:
        estimated = shown.estimated
        top = f"{shown.name} estimate {estimated.shape[0]}x{estimated.shape[1]}"
    true = shown.true
    if estimated is not None and true is not None:
        estimated, true = _common_size(estimated, true)
    bottom = "no true kernel (real pair)" if shown.true is None else \
        f"true kernel {shown.true.shape[0]}x{shown.true.shape[1]}"
    panels = [_kernel_panel(estimated, top, half), _kernel_panel(true, bottom, half)]
    width = max(p.shape[1] for p in panels)
    panels = [np.pad(p, ((0, 0), (0, width - p.shape[1]), (0, 0))) for p in panels]
    column = np.concatenate(panels, axis=0)
    return np.pad(column, ((0, height + 22 - column.shape[0]), (0, 0), (0, 0)))


def gallery(rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray, float, float]],
            blind: Sequence[BlindShown] | None = None) -> np.ndarray:
    """One row per item: (title, blurred, restored, sharp, psnr_blurred, psnr_restored), images in [0, 1].

    With `blind` (one per row), each row also shows the blind restorer's output beside the model's and,
    after the sharp image, the kernel it estimated above the item's true kernel.
    """
    height = max(PANEL_MIN, min(360, max(r[3].shape[0] for r in rows)))
    lines = []
    for n, (title, blurred, restored, sharp, p_in, p_out) in enumerate(rows):
        panels = [_panel(blurred, f"blurred {p_in:.2f} dB", height),
                  _panel(restored, f"restored {p_out:.2f} dB", height), _panel(sharp, "sharp", height)]
        if blind is not None:
            shown = blind[n]  # whether it was left unchanged is said under its kernel, where there is room
            panels.insert(2, _panel(shown.image, f"{shown.name} {shown.psnr:.2f} dB", height))
            panels.append(_kernel_column(shown, height))
        gap = np.zeros((panels[0].shape[0], 6, 3), np.uint8)
        line = np.concatenate([part for panel in panels for part in (gap, panel)][1:], axis=1)
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
