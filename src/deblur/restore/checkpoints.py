"""Saving training state so that no interruption can lose or corrupt it.

Keras's ModelCheckpoint writes straight to the final file name, so a kill during the write leaves a
truncated `best.keras`. `AtomicCheckpoint` writes to a temporary file beside it and renames it into
place. `StopRequest` turns Ctrl-C into a stop at a safe point (between batches, or after the epoch's
files are written) so the run can be resumed from its last completed epoch; a second Ctrl-C
interrupts at once. `check_archive` inspects a `.keras` zip before anything in it is read.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras

from deblur.core.atomic import atomic_path
from deblur.core.errors import DeblurError

# Limits on what a .keras zip declares, checked from its central directory before anything is inflated.
# Keras writes three members (metadata.json, config.json, model.weights.h5), stored uncompressed; the
# built-in model is 4.2 MiB and the largest benchmark model (35 M parameters, with Adam's state) about
# 0.4 GiB. Keras's own guard only refuses a member above 4 GiB: a 4 MB file declaring just under that
# took 9 GB of memory and a minute before it failed.
MAX_CHECKPOINT_ENTRIES = 256
MAX_CHECKPOINT_BYTES = 2 << 30  # 2 GiB inflated, all members together
MAX_EXPANSION = 100  # inflated / stored, per member; DEFLATE reaches about 1032, honest weights about 1.1
EXPANSION_FLOOR = 1 << 20  # members below 1 MiB (JSON) may compress well; their size is harmless


def check_archive(path: Path) -> None:
    """Refuse a `.keras` zip whose declared contents could exhaust memory or disk, or escape its folder.

    Only the central directory is read. Python's zipfile never inflates a member past its declared
    size (a member that lies fails its CRC check), so bounding the declared sizes bounds the work.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DeblurError(f"{path}: not a readable Keras .keras checkpoint ({exc})") from None
    if len(infos) > MAX_CHECKPOINT_ENTRIES:
        raise DeblurError(f"{path}: refused: the archive holds {len(infos):,} files (a Keras checkpoint has a few; "
                          f"limit {MAX_CHECKPOINT_ENTRIES})")
    total = sum(i.file_size for i in infos)
    if total > MAX_CHECKPOINT_BYTES:
        raise DeblurError(f"{path}: refused: it would inflate to {total / 2**20:,.0f} MiB, over the limit of "
                          f"{MAX_CHECKPOINT_BYTES / 2**20:,.0f} MiB for a checkpoint")
    for info in infos:
        name = info.filename.replace("\\", "/")
        if name.startswith("/") or ".." in name.split("/") or ":" in name:
            raise DeblurError(f"{path}: refused: the archive member {info.filename!r} points outside the archive")
        if info.file_size > EXPANSION_FLOOR and info.file_size > MAX_EXPANSION * max(info.compress_size, 1):
            raise DeblurError(f"{path}: refused: {info.filename} would inflate from {info.compress_size:,} to "
                              f"{info.file_size:,} bytes (over {MAX_EXPANSION}x: a decompression bomb)")


class Interrupted(Exception):
    """Raised out of `model.fit` when the user asked to stop; nothing half-written is left behind."""


class StopRequest:
    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def on_interrupt(self) -> Iterator[None]:
        def handler(signum: int, frame: Any) -> None:
            if self.requested:  # second Ctrl-C: the user means it
                raise KeyboardInterrupt
            self.requested = True

        try:
            previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave Ctrl-C as it is
            yield
            return
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class StopAtSafePoint(keras.callbacks.Callback):
    def __init__(self, request: StopRequest) -> None:
        super().__init__()
        self.request = request

    def _check(self) -> None:
        if self.request.requested:
            raise Interrupted

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._check()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._check()


def atomic_save(model: keras.Model, path: Path) -> None:
    """Save through a temporary `.keras` file beside `path` (Keras insists on the suffix), then rename."""
    with atomic_path(path, suffix=".tmp.keras") as tmp:
        model.save(tmp)


class AtomicCheckpoint(keras.callbacks.Callback):
    """Save the model after each epoch (or only when `monitor` improves), atomically."""

    def __init__(self, path: Path, monitor: str = "val_loss", mode: str = "min", best_only: bool = False,
                 initial: float | None = None, saved: keras.Model | None = None) -> None:
        super().__init__()
        self.path, self.monitor, self.mode, self.best_only = Path(path), monitor, mode, best_only
        self.saved = saved  # e.g. the restorer inside the model fit trains, which also holds the blur layer
        self.best = initial if initial is not None else (math.inf if mode == "min" else -math.inf)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.best_only:
            value = (logs or {}).get(self.monitor)
            if value is None or not math.isfinite(float(value)):
                return
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = float(value)
        atomic_save(self.saved or self.model, self.path)


class TrainingClock(keras.callbacks.Callback):
    """Log the cumulative training wall time (`train_seconds`) and enforce `train.time_limit_minutes`.

    The total carries over a resume, so a benchmark's time budget means the same however often the
    run was interrupted. The stop happens at an epoch end, after that epoch's checkpoints are written.
    """

    def __init__(self, already: float = 0.0, limit_minutes: float | None = None) -> None:
        super().__init__()
        self.already = already
        self.limit = None if limit_minutes is None else 60.0 * limit_minutes
        self.start = time.perf_counter()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        total = self.already + time.perf_counter() - self.start
        if logs is not None:
            logs["train_seconds"] = round(total, 1)
        if self.limit is not None and total >= self.limit:
            self.model.stop_training = True
            print(f"time limit: {total / 60:.1f} of {self.limit / 60:g} minutes used; stopping after epoch {epoch + 1}")
