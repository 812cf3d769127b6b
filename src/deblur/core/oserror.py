"""An operating-system error in one line: which path, what went wrong, and what to do about it."""

from __future__ import annotations

import errno

_HINTS = {
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "the disk quota is used up: free some space",
    errno.EROFS: "the file system is read-only: choose a folder you can write to",
    errno.EACCES: "permission denied: choose a folder you can write to, or fix its permissions",
    errno.EPERM: "not permitted: choose a folder you can write to, or fix its permissions",
    errno.EISDIR: "a folder is in the way where a file should go: move it or choose another path",
    errno.ENOTDIR: "part of the path is a file, not a folder: choose another path",
    errno.EEXIST: "it already exists: choose another path",
    errno.ENOENT: "no such file or folder",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
    errno.ELOOP: "too many symbolic links (a loop?): choose another path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) or process fewer files at once",
    errno.ENFILE: "too many open files on this machine: try again later",
    errno.EIO: "input/output error: the disk or network mount failed",
    errno.ENOMEM: "out of memory",
    errno.EXDEV: "cannot move files across file systems",
    errno.EBUSY: "the file or folder is busy",
}


def describe(exc: OSError, path: object = None) -> str:
    """`PATH: strerror (what to do)`, e.g. `out/a.png: No space left on device (the disk is full: ...)`.

    `path` names the file the user knows (the final name rather than its hidden temporary).
    """
    where = path if path is not None else exc.filename
    if path is None and exc.filename2 is not None:
        where = f"{exc.filename} -> {exc.filename2}"
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = _HINTS.get(exc.errno) if exc.errno is not None else None
    text = f"{reason} ({hint})" if hint and hint != reason.lower() else reason
    return f"{where}: {text}" if where is not None else text
