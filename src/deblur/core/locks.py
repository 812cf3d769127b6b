"""One deblur process at a time per output folder: an exclusive, non-blocking lock on the folder.

Two `deblur train` runs into one run folder would interleave history.csv and overwrite each other's
checkpoints; two `predict` or `eval` jobs into one folder would mix their outputs. The lock is
`flock` on the folder itself, so it leaves no file behind, and the kernel releases it when the
process dies (even by SIGKILL): a stale lock can never block a later run. Where the file system
cannot lock a folder (some network mounts), a `.deblur.lock` file inside it is locked instead.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from deblur.core.errors import DeblurError

try:
    import fcntl
except ImportError:  # not POSIX (Windows): folders are not locked there
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".deblur.lock"


class FolderBusy(DeblurError):
    """Another process holds the folder's lock."""


class FolderLock:
    """An exclusive lock on a folder, held until `release()` (or the process ends)."""

    def __init__(self, folder: Path, purpose: str = "writing") -> None:
        self.folder = Path(folder)
        self.fd: int | None = None
        if fcntl is not None:
            self.fd = self._lock(os.open(self.folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)), purpose,
                                 fallback=True)

    def _lock(self, fd: int, purpose: str, fallback: bool) -> int:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise FolderBusy(f"{self.folder} is in use by another deblur process ({purpose}); wait for it to "
                                 "finish, or choose another folder") from None
            if not fallback:
                raise
        return self._lock(os.open(self.folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666), purpose, fallback=False)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


@contextlib.contextmanager
def folder_lock(folder: Path, purpose: str = "writing") -> Iterator[FolderLock]:
    lock = FolderLock(folder, purpose)
    try:
        yield lock
    finally:
        lock.release()
