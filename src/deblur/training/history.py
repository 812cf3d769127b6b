"""A run's history.csv read back: its rows, the training time already spent, the best score so far."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from deblur.core.errors import DeblurError


def history_rows(history: Path) -> list[dict[str, str]]:
    """The rows of a run's history.csv (none if it has not been written yet)."""
    from deblur.core.safefile import HISTORY, UnsafeFile, read_small

    if not history.is_file():
        return []
    try:
        text = read_small(history, HISTORY, "history.csv").decode("utf-8")
        return list(csv.DictReader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error, UnsafeFile) as exc:  # e.g. a disk error left binary bytes in it
        raise DeblurError(f"{history}: damaged, not a readable CSV history ({exc}); move it aside (e.g. to "
                          f"{history.name}.damaged) and resume again: the run then continues without the record of "
                          "its earlier epochs (its time limit and best score start afresh)") from None


def seconds_so_far(history: Path) -> float:
    """Training time already spent by earlier sessions of a resumed run (the last logged total)."""
    rows = history_rows(history)
    seconds = _number(rows[-1].get("train_seconds")) if rows else 0.0
    return seconds if math.isfinite(seconds) and seconds >= 0 else 0.0


def best_so_far(history: Path, monitor: str) -> float | None:
    """The best monitored value in an earlier history, so a resumed run keeps a better best.keras."""
    values = [v for r in history_rows(history) if math.isfinite(v := _number(r.get(monitor)))]
    if not values:
        return None
    return max(values) if monitor_mode(monitor) == "max" else min(values)


def _number(text: str | None) -> float:
    """A history cell as a number; NaN for an empty or damaged one."""
    try:
        return float(text) if text is not None else math.nan
    except ValueError:
        return math.nan


def monitor_mode(monitor: str) -> str:
    """Whether a larger value of `monitor` is better ("max": PSNR, SSIM) or a smaller one ("min": losses)."""
    return "max" if monitor.endswith(("psnr", "ssim")) else "min"
