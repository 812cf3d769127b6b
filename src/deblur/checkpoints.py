"""Saving training state so that no interruption can lose or corrupt it.

Keras's ModelCheckpoint writes straight to the final file name, so a kill during the write leaves a
truncated `best.keras`. `AtomicCheckpoint` writes to a temporary file beside it and renames it into
place. `StopRequest` turns Ctrl-C into a stop at a safe point (between batches, or after the epoch's
files are written) so the run can be resumed from its last completed epoch; a second Ctrl-C
interrupts at once.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras


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
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".keras", dir=path.parent)
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
