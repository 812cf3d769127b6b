"""Reading the small files deblur keeps beside its outputs (JSON, sidecars, journals, manifests, CSV),
checked before a byte is read.

Such a file may be anything by the time deblur reads it: a FIFO (an `open()` blocks for ever), a
device (`/dev/zero` never ends), a huge file, or JSON nested 100,000 levels deep (the parser's
recursion limit: RecursionError). `read_small` opens without blocking, checks with `fstat` on the
opened descriptor (no race between the check and the read) that it is a regular file under a size
limit, and reads at most that much; `read_json` adds the parse, with a deep nesting said in one line.
Both raise `UnsafeFile` (a DeblurError naming the path); callers that treat a bad file as missing
catch it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from deblur.core.errors import DeblurError

SMALL = 16 << 20  # sidecars, markers, the engine-choice cache, histories: far below this
HISTORY = 256 << 20  # history.csv: a row per epoch
JOURNAL = 1 << 30  # an evaluation journal grows with the items scored (about 1 KiB each)


class UnsafeFile(DeblurError):
    """A file deblur keeps that is not a regular file, is too large, or does not parse."""


def read_small(path: str | Path, limit: int = SMALL, what: str = "file") -> bytes:
    """The bytes of `path`, a regular file of at most `limit` bytes; else UnsafeFile (FileNotFoundError
    and other OS errors propagate, so callers keep their own handling of a missing file)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(f"{path}: not a regular file (a pipe, device or folder), so it is not read as a "
                             f"deblur {what}; move it aside")
        if st.st_size > limit:
            raise UnsafeFile(f"{path}: {st.st_size:,} bytes is far too large for a deblur {what} (limit "
                             f"{limit:,}); move it aside")
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:  # grew while being read
            raise UnsafeFile(f"{path}: larger than {limit:,} bytes, far too large for a deblur {what}")
        return data
    finally:
        os.close(fd)


def parse_json(data: bytes | str, where: object, what: str = "file") -> Any:
    """`json.loads`, with malformed text and nesting too deep for the parser as one UnsafeFile line."""
    try:
        return json.loads(data)
    except RecursionError:
        raise UnsafeFile(f"{where}: JSON nested too deeply to be a deblur {what}") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise UnsafeFile(f"{where}: not valid JSON ({str(exc)[:120]}), so not a deblur {what}") from None


def read_json(path: str | Path, limit: int = SMALL, what: str = "file") -> Any:
    """A small JSON file, read as `read_small` reads and parsed as `parse_json` parses."""
    return parse_json(read_small(path, limit, what), path, what)


def read_text(path: str | Path, limit: int = SMALL, what: str = "file") -> str:
    """A small UTF-8 text file (undecodable bytes escaped, so a damaged file still reads)."""
    return read_small(path, limit, what).decode("utf-8", "surrogateescape")
