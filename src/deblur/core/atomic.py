"""Writing a file so that no crash leaves half of it, and cleaning up after crashes that left temporaries.

Every file deblur writes goes to a hidden temporary beside it (`.NAME.deblur-XXXXXXXX.tmp`) and is
renamed into place, so the final name only ever holds a complete file. A SIGKILL between the two
leaves the temporary behind: `clean_stale_temps` removes those, and only those, when a command
starts writing into that folder again (under the folder's lock, so no live writer owns them).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TEMP_TAG = ".deblur-"
# mkstemp's random part is 8 characters of [a-z0-9_]. The second pattern is the naming of deblur
# before the tag existed (`.NAME.XXXXXXXX.tmp`, `.best.XXXXXXXX.keras`), limited to the kinds of
# file deblur writes so that a user's own hidden files never match.
_TEMP_NAMES = (
    re.compile(r"^\..+\.deblur-[a-z0-9_]{8}\.tmp(\.keras)?$"),
    re.compile(r"^\..+\.(png|json|csv|yaml|keras)\.[a-z0-9_]{8}\.tmp$|^\.(best|last)\.[a-z0-9_]{8}\.keras$"),
)


def is_temp_name(name: str) -> bool:
    """Whether `name` is one of deblur's own temporary file names."""
    return any(p.match(name) for p in _TEMP_NAMES)


def file_mode() -> int:
    """The permissions `open()` would give a new file: 0o666 less the umask.

    mkstemp creates its file 0600 whatever the umask, which would make every report and image
    private to its writer. The umask is read from /proc where possible: setting it to read it back
    is not thread-safe.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; on success it is renamed onto `path`.

    If the block fails (or is interrupted) the temporary is removed and `path` is untouched.
    `suffix` matters to writers that check it (Keras saves only to names ending in `.keras`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}{TEMP_TAG}", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write `payload` to `path` through a temporary file, flushed to disk before the rename."""
    with atomic_path(path) as tmp, os.fdopen(os.open(tmp, os.O_WRONLY | os.O_TRUNC), "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def clean_stale_temps(folder: Path) -> int:
    """Remove deblur's temporary files left in `folder` (not below it) by a killed writer; returns how many.

    Call it only while holding the folder's lock, so that no live deblur process is writing them.
    """
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += 1
    return removed


# A temporary folder is locked by its maker right after mkdtemp: one younger than this may not be yet.
TEMP_DIR_GRACE_S = 60.0
# Where folders cannot be locked (not POSIX), a temporary folder this old is taken for a killed process's.
TEMP_DIR_MAX_AGE_S = 3600.0


@contextlib.contextmanager
def locked_temp_dir(folder: Path, prefix: str) -> Iterator[Path]:
    """A new temporary folder `folder/<prefix>XXXXXXXX`, locked while the block runs (so that
    `clean_stale_temp_dirs` in another process leaves it alone) and removed after it."""
    from deblur.core.locks import FolderLock

    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=folder))
    lock = None
    try:
        lock = FolderLock(tmp, "a temporary folder")
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already if the block renamed it into place
        if lock is not None:
            lock.release()


def clean_stale_temp_dirs(folder: Path, prefix: str) -> int:
    """Remove the temporary folders `<prefix>*` in `folder` that a killed process left (made by
    `locked_temp_dir`: a live one is locked, the kernel drops a dead one's lock; where folders cannot
    be locked, those older than an hour); returns how many."""
    from deblur.core.locks import FolderBusy, FolderLock, fcntl

    removed = 0
    # exactly mkdtemp's names: a folder of the user's that merely starts with the prefix is never touched
    ours = re.compile(re.escape(prefix) + r"[a-z0-9_]{8}")
    try:
        entries = [e for e in os.scandir(folder) if ours.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return 0
    for entry in entries:
        try:
            age = time.time() - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        if age < TEMP_DIR_GRACE_S or (fcntl is None and age < TEMP_DIR_MAX_AGE_S):
            continue
        try:
            lock = FolderLock(Path(entry.path), "a temporary folder") if fcntl is not None else None
        except (FolderBusy, OSError):  # a live process is working in it (or it vanished meanwhile)
            continue
        try:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed += 1
        finally:
            if lock is not None:
                lock.release()
    return removed
