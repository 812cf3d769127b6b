"""Images that cannot be read in the middle of a run: named once in the log, counted, never a crash.

A file truncated, deleted or unreadable hours into a training run costs one image, not the run: the
pipelines substitute another image (so batch shapes hold), `SKIPS` names the file once and counts
every skip, and `SkipReport` puts the epoch's count in its logs (history.csv's `skipped` column).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

LOG = logging.getLogger("deblur.data")


def failed_label(exc: Exception, parts: list[Any], j: int) -> str:
    """Which of image `j`'s files (sharp, blurred twin...) an error is about: messages start with the
    file's path; with no store (arrays in memory) it is "image j"."""
    from deblur.data.store import label_of

    labels = [label_of(part, j) for part in parts if part is not None]
    return next((label for label in labels if str(exc).startswith(label)), labels[0])


class Skips:
    """A thread-safe tally of skipped images (tf.data and PyDataset workers run in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._named: set[str] = set()
        self._pending = 0

    def record(self, label: str, reason: str) -> None:
        # an error about what holds the image, named first in the reason (a pack's shard, of which the
        # image's label is `shard[offset]`), is one line for all the images it holds, not one each
        head = reason.split(": ", 1)[0]
        unit = head if label.startswith(f"{head}[") else label
        with self._lock:
            self._pending += 1
            first = unit not in self._named
            self._named.add(unit)
        if first:  # once per file: a bad image met every epoch must not flood the log
            reason = reason.removeprefix(f"{unit}: ")
            if unit == label:
                LOG.warning("skipped an unreadable image: %s: %s", label, reason)
            else:
                LOG.warning("skipped every image stored in %s: %s", unit, reason)

    def take(self) -> int:
        """Skips since the last call."""
        with self._lock:
            count, self._pending = self._pending, 0
        return count

    @property
    def named(self) -> set[str]:
        with self._lock:
            return set(self._named)


SKIPS = Skips()  # process-wide: a tf.numpy_function cannot be handed a Python object per dataset

_RAISED_INSIDE = re.compile(r"\bDataError: ([^\n]+)")


def data_error_inside(exc: BaseException) -> Exception | None:
    """The DataError a `tf.numpy_function` or `from_generator` raised inside tf.data ("no image of the
    training set can be read any more"), which TensorFlow re-raises as an UnknownError carrying only its
    text: as a DataError again, so the CLI shows it as the user's problem, not as an internal error."""
    from deblur.core.errors import DataError

    if not type(exc).__module__.startswith("tensorflow"):
        return None
    found = _RAISED_INSIDE.search(str(exc))
    return DataError(found.group(1).strip()) if found else None


def skip_report(echo: Any = print) -> Any:
    """A Keras callback: `logs["skipped"]` every epoch, and one line when an epoch skipped images."""
    import keras

    class SkipReport(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            SKIPS.take()  # skips of an earlier fit in this process are not this run's

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            count = SKIPS.take()
            if logs is not None:
                logs["skipped"] = count
            if count:
                echo(f"epoch {epoch + 1}: skipped {count} unreadable image{'s' if count != 1 else ''}")

    return SkipReport()
