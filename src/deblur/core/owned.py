"""What deblur wrote into an output folder, so that `--overwrite` replaces only that.

`--overwrite` is a permission to replace deblur's own earlier outputs, never the user's files that
happen to carry the same name (a `metrics.json` of their own, a picture called `gallery.png`). So each
command that writes reports records, in a ledger beside them (`.deblur-written.json`), every file it
wrote with its sha256; a later `--overwrite` replaces a file only if the ledger lists it with the
same content. Anything else (not listed, changed since, a symbolic link, a folder) is refused in one
line naming it. Folders of deblur's own kind carry their own mark instead: a run folder its
`.deblur-run` marker, a pack its manifest, an export its sidecar.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from deblur.core.errors import DeblurError

LEDGER = ".deblur-written.json"
LEDGER_FORMAT = "deblur-written"


class NotOurs(DeblurError):
    """An output path holds something deblur did not write, and --overwrite will not replace it."""


def _sha256(path: Path) -> str:
    from deblur.core.digest import file_sha256

    return file_sha256(path)


def ledger(folder: Path) -> dict[str, str]:
    """name -> sha256 of the files deblur recorded as written in `folder`; {} when none (or unreadable:
    then nothing there counts as deblur's)."""
    from deblur.core.safefile import UnsafeFile, read_json

    try:
        data = read_json(folder / LEDGER, what="output ledger")
    except (OSError, UnsafeFile):
        return {}
    files = data.get("files") if isinstance(data, dict) and data.get("format") == LEDGER_FORMAT else None
    if not isinstance(files, dict):
        return {}
    return {k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str)}


def record(folder: Path, paths: Iterable[Path], forget: Iterable[str] = ()) -> None:
    """Add `paths` (files just written into `folder`) to its ledger, and drop the names in `forget`
    (files deblur removed). Written atomically; the caller holds the folder's lock."""
    from deblur.core.atomic import atomic_write_bytes

    files = ledger(folder)
    for name in forget:
        files.pop(name, None)
    for path in paths:
        files[Path(path).name] = _sha256(Path(path))
    text = json.dumps({"format": LEDGER_FORMAT, "version": 1, "files": dict(sorted(files.items()))}, indent=1)
    atomic_write_bytes(folder / LEDGER, (text + "\n").encode())


def is_ours(path: Path, recorded: dict[str, str] | None = None) -> bool:
    """Whether `path` is a regular file that its folder's ledger lists with its current content."""
    if path.is_symlink() or not path.is_file():
        return False
    files = ledger(path.parent) if recorded is None else recorded
    try:
        return files.get(path.name) == _sha256(path)
    except OSError:
        return False


def check_replaceable(paths: Iterable[Path], option: str = "--overwrite",
                      legacy: Callable[[Path], bool] | None = None) -> None:
    """Refuse, naming the first one, any existing path among `paths` that deblur did not write: not
    in its folder's ledger with this content, unless `legacy(path)` recognises an output of a deblur
    from before the ledger. A missing path is fine: nothing is replaced there."""
    cache: dict[Path, dict[str, str]] = {}
    for path in paths:
        path = Path(path)
        if not os.path.lexists(path):
            continue
        if path.is_symlink():
            raise NotOurs(f"{path}: is a symbolic link; {option} replaces only files deblur wrote: move it aside "
                          "or choose another output")
        if not path.is_file():
            raise NotOurs(f"{path}: is not a file deblur wrote (a folder, pipe or device); {option} never replaces "
                          "it: move it aside or choose another output")
        recorded = cache.setdefault(path.parent, ledger(path.parent))
        if is_ours(path, recorded) or (legacy is not None and legacy(path)):
            continue
        why = "changed since deblur wrote it" if path.name in recorded else "not written by deblur"
        raise NotOurs(f"{path}: {why}; {option} replaces only deblur's own outputs: move it aside or choose "
                      "another output")
