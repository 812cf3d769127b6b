"""The journal of an evaluation in progress: rows go to disk as they are scored, so an interrupted
evaluation is resumed (`deblur eval ... --resume`) instead of redone.

`<output>/per_image.partial.jsonl` holds one JSON object per line:

- a header, written atomically before any item is scored: `{"journal": 1, "fingerprint": {...},
  "state": {...}, "replace_reports": bool}`. The fingerprint names everything the scores depend on
  (the models' weights, the data, split, blur, seed, tiles and batch size, the metric options, the
  baselines asked for, the Keras backend); `state` holds what the run decided once for all items (the
  baselines' settings tuned on the validation split), so a resumed run scores with the same ones.
- then, for every batch, one line per item and a commit line `{"commit": B, "skipped": [...]}` (the
  batch's number, and the images found unreadable since the last commit), written in one `write`,
  flushed and fsync'd.

Only what precedes the last commit line counts: a batch cut short by Ctrl-C, SIGKILL or a power cut
(a torn last line included) is dropped on resume and scored again, so every batch in the final
report was scored whole, exactly as an uninterrupted run scores it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deblur.errors import DeblurError
from deblur.imageio import atomic_write_text
from deblur.safefile import JOURNAL, UnsafeFile, parse_json, read_small

PARTIAL_NAME = "per_image.partial.jsonl"
VERSION = 1


@dataclass(frozen=True)
class Partial:
    """Where an evaluation keeps its journal, and what the user said about an existing one."""

    path: Path
    resume: bool = False  # continue the journal found there (--resume)
    overwrite: bool = False  # start again, discarding it (--overwrite)

    @classmethod
    def beside(cls, output: Path, resume: bool = False, overwrite: bool = False) -> Partial:
        return cls(output / PARTIAL_NAME, resume, overwrite)


@dataclass
class Resumed:
    """What an interrupted run left: its header and the items of every batch it finished."""

    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[list[str]] = field(default_factory=list)
    batches: int = 0  # the batch after the last committed one: the resumed run starts there
    end: int = 0  # byte offset just past the last commit line


def normalized(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists), so a stored value compares equal."""
    return json.loads(json.dumps(value, default=str))


def _read(path: Path) -> Resumed | None:
    """The committed part of a journal; None when it has no readable header (not one of deblur's).
    Read as a regular file within a size limit (a FIFO or device under its name is refused, not read)."""
    resumed: Resumed | None = None
    pending: list[dict[str, Any]] = []
    offset = 0
    for raw in read_small(path, JOURNAL, "evaluation journal").splitlines(keepends=True):
        offset += len(raw)
        if not raw.endswith(b"\n"):
            break  # torn last line: the write of its batch never finished
        try:
            line = parse_json(raw, path, "evaluation journal")
        except UnsafeFile:
            break
        if resumed is None:
            if not isinstance(line, dict) or line.get("journal") != VERSION or not isinstance(line.get("fingerprint"),
                                                                                            dict):
                return None
            resumed = Resumed(header=line, end=offset)
        elif isinstance(line, dict) and "commit" in line:
            if not isinstance(line["commit"], int) or not isinstance(line.get("skipped", []), list):
                break  # not a commit deblur wrote: what follows is not trusted either
            resumed.records.extend(pending)
            resumed.skipped.extend(line.get("skipped", []))
            resumed.batches, resumed.end, pending = line["commit"] + 1, offset, []
        else:
            pending.append(line)
    return resumed


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The fingerprint entries that differ, by name."""
    return [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]


def check(partial: Partial, fingerprint: dict[str, Any]) -> Resumed | None:
    """Check an existing journal against what is about to be scored; the work to take over, if any.

    Without --resume an existing journal is refused unless --overwrite (it holds work the user may
    want); with --resume, one written for anything else (another checkpoint, data, option) is refused.
    """
    path = partial.path
    if path.is_symlink() or (os.path.lexists(path) and not path.is_file()):
        raise DeblurError(f"{path}: is a symbolic link, folder, pipe or device, not a journal deblur wrote; move it "
                          "aside")
    if not path.is_file():
        return None
    if not partial.resume:
        if partial.overwrite:
            if _read(path) is None:  # --overwrite replaces deblur's own journal, never a file of the user's
                raise DeblurError(f"{path}: not an evaluation journal deblur wrote; --overwrite replaces only "
                                  "deblur's own files: move it aside or choose another --output")
            return None
        raise DeblurError(f"{path} holds an interrupted evaluation; pass --resume to continue it, or --overwrite "
                          "to start again")
    resumed = _read(path)
    if resumed is None:
        raise DeblurError(f"--resume: {path} is not a journal deblur can read; move it aside and score again "
                          "without --resume")
    changed = differences(resumed.header["fingerprint"], normalized(fingerprint))
    if changed:
        raise DeblurError(f"--resume: {path} was written by another evaluation ({', '.join(changed)} differ); "
                          "drop --resume and pass --overwrite to start again")
    return resumed


class Journal:
    """Appends committed batches to the journal; a context manager that closes it."""

    def __init__(self, path: Path, fingerprint: dict[str, Any], state: dict[str, Any], replace_reports: bool,
                 resumed: Resumed | None) -> None:
        self.path = path
        if resumed is None:
            header = {"journal": VERSION, "fingerprint": fingerprint, "state": state,
                      "replace_reports": replace_reports}
            atomic_write_text(path, json.dumps(normalized(header)) + "\n")
        else:
            if os.stat(path).st_nlink > 1:  # appending would write into every other name of the file too
                raise DeblurError(f"{path}: has other hard links; deblur appends only to its own journal: move it "
                                  "aside and pass --overwrite to start again")
            with open(path, "r+b") as f:  # drop the uncommitted tail before appending
                f.truncate(resumed.end)
        self._file = open(path, "ab")  # noqa: SIM115 - closed by close() / the context manager

    def commit(self, batch: int, records: list[dict[str, Any]], skipped: list[tuple[str, str]]) -> None:
        """One batch's records and its commit line, in one write, on disk before the next batch starts."""
        commit = {"commit": batch, "skipped": [list(s) for s in skipped]}
        lines = [json.dumps(r) for r in records] + [json.dumps(commit)]
        self._file.write(("\n".join(lines) + "\n").encode("ascii"))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
