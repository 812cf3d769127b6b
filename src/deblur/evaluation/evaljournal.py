"""The journal of an evaluation in progress: rows go to disk as they are scored, so an interrupted
evaluation is resumed (`deblur eval ... --resume`) instead of redone.

`<output>/per_image.partial.jsonl` holds one JSON object per line:

- a header, written atomically before any item is scored: `{"journal": 1, "fingerprint": {...},
  "state": {...}, "replace_reports": bool}`. The fingerprint names everything the scores depend on
  (the models' weights, the data, split, blur, seed, tiles and batch size, the metric options, the
  baselines asked for, the Keras backend); `state` holds what the run decided once for all items (the
  baselines' settings tuned on the validation split), so a resumed run scores with the same ones.
- then, for every batch, one line per item and a commit line `{"commit": B, "prev": P, "skipped": [...],
  "chain": H}` (the batch's number, the number of the batch committed before it, -1 for none, and the
  images found unreadable since the last commit), written in one `write`, flushed and fsync'd.

A resumed report must equal a fresh one, or be refused. So each commit carries `chain`, the sha256
of the previous commit's chain (the header line's for the first) and of this batch's lines as
written: an edited score, a dropped, duplicated or reordered batch breaks it. Batch numbers must
follow each other (`prev` is the last commit read; numbers only grow: a batch of unreadable images
only is never written, so they may skip) and stay within the split, every item line must be a record
of its batch, and the evaluation checks at the end that the items counted are the split's. The chain
detects damage and careless edits, not a forger who recomputes it (nothing local can: the journal is
the user's own file).

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

from deblur.core.errors import DeblurError
from deblur.core.safefile import JOURNAL, UnsafeFile, parse_json, read_small
from deblur.imaging.imageio import atomic_write_text

PARTIAL_NAME = "per_image.partial.jsonl"
VERSION = 2  # 1: before the chain (an older deblur's journal is refused on --resume, not trusted)


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
    last: int = -1  # the number of the last committed batch
    chain: str = ""  # the last commit's chain (the header line's digest before any)


class DamagedJournal(DeblurError):
    """A journal whose committed part does not prove itself: refused, never scored from."""


def chain_digest(previous: str, lines: bytes) -> str:
    """The chain after one batch: sha256 of the previous chain and of the batch's lines as written."""
    import hashlib

    return hashlib.sha256(previous.encode("ascii") + b"\n" + lines).hexdigest()


def _commit_core(batch: int, prev: int, skipped: list[Any]) -> bytes:
    return json.dumps({"commit": batch, "prev": prev, "skipped": skipped}).encode("ascii")


def _is_record(line: Any, batch: int) -> bool:
    """Whether `line` is one item's record as deblur.evaluation.evaluate writes it, for batch `batch`."""
    if not isinstance(line, dict) or line.get("batch") != batch or isinstance(line.get("batch"), bool):
        return False
    if "unaligned" in line:
        return isinstance(line["unaligned"], str)
    size, failed = line.get("size"), line.get("failed", [])
    return (isinstance(line.get("row"), dict) and isinstance(size, list) and len(size) == 2
            and all(isinstance(v, int) and v > 0 for v in size)
            and isinstance(failed, list) and all(isinstance(v, str) for v in failed))


def normalized(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists), so a stored value compares equal."""
    return json.loads(json.dumps(value, default=str))


def _read(path: Path, batches: int | None = None) -> Resumed | None:
    """The committed part of a journal; None when it has no readable header (not one of deblur's).
    A committed batch that does not prove itself (see the module docstring) raises DamagedJournal;
    `batches` is the split's number of batches, when known. Read as a regular file within a size
    limit (a FIFO or device under its name is refused, not read)."""
    import hashlib

    resumed: Resumed | None = None
    pending: list[bytes] = []
    offset = 0

    def damaged(why: str) -> DamagedJournal:
        return DamagedJournal(f"--resume: {path}: {why}; it cannot prove what it covers: pass --overwrite (without "
                              "--resume) to score again")

    for number, raw in enumerate(read_small(path, JOURNAL, "evaluation journal").splitlines(keepends=True), 1):
        offset += len(raw)
        if not raw.endswith(b"\n"):
            break  # torn last line: the write of its batch never finished
        try:
            line = parse_json(raw, path, "evaluation journal")
        except UnsafeFile:
            if resumed is None:
                return None
            raise damaged(f"line {number} is not JSON") from None
        if resumed is None:
            if not isinstance(line, dict) or line.get("journal") != VERSION or not isinstance(line.get("fingerprint"),
                                                                                            dict):
                return None
            state = line.get("state", {})
            if not isinstance(state, dict) or not isinstance(state.get("baselines", {}), dict):
                raise damaged("its header's state is not one deblur wrote")
            resumed = Resumed(header=line, end=offset, chain=hashlib.sha256(raw).hexdigest())
        elif isinstance(line, dict) and "commit" in line:
            batch, prev, skipped = line.get("commit"), line.get("prev"), line.get("skipped")
            if not (type(batch) is int and type(prev) is int and isinstance(skipped, list)
                    and isinstance(line.get("chain"), str)):
                raise damaged(f"line {number} is not a commit deblur wrote")
            if prev != resumed.last or batch <= prev or (batches is not None and batch >= batches):
                within = f" of the split's {batches}" if batches is not None else ""
                raise damaged(f"batch {batch} (line {number}) does not follow batch {resumed.last}{within}")
            records = [parse_json(r, path, "evaluation journal") for r in pending]
            bad = next((i for i, r in enumerate(records) if not _is_record(r, batch)), None)
            if bad is not None:
                raise damaged(f"line {number - len(pending) + bad} is not an item record of batch {batch}")
            chain = chain_digest(resumed.chain, b"".join(pending) + _commit_core(batch, prev, skipped))
            if chain != line["chain"]:
                raise damaged(f"batch {batch} (line {number}) was changed since it was written (its chain does not "
                              "match)")
            resumed.records.extend(records)
            resumed.skipped.extend(skipped)
            resumed.batches, resumed.end, resumed.last, resumed.chain = batch + 1, offset, batch, chain
            pending = []
        else:
            pending.append(raw)
    return resumed


def _read_header(path: Path) -> dict[str, Any] | None:
    """The journal's header when it is one of deblur's (any version), else None: what --overwrite asks."""
    from deblur.core.safefile import read_small

    first = read_small(path, JOURNAL, "evaluation journal").split(b"\n", 1)[0]
    try:
        line = parse_json(first, path, "evaluation journal")
    except UnsafeFile:
        return None
    ok = isinstance(line, dict) and isinstance(line.get("journal"), int) and isinstance(line.get("fingerprint"), dict)
    return line if ok else None


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The fingerprint entries that differ, by name."""
    return [k for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]


def check(partial: Partial, fingerprint: dict[str, Any], batches: int | None = None) -> Resumed | None:
    """Check an existing journal against what is about to be scored; the work to take over, if any.

    Without --resume an existing journal is refused unless --overwrite (it holds work the user may
    want); with --resume, one written for anything else (another checkpoint, data, option) is refused,
    and so is one that does not prove what it covers (DamagedJournal). `batches`: the split's count.
    """
    path = partial.path
    if path.is_symlink() or (os.path.lexists(path) and not path.is_file()):
        raise DeblurError(f"{path}: is a symbolic link, folder, pipe or device, not a journal deblur wrote; move it "
                          "aside")
    if not path.is_file():
        return None
    if not partial.resume:
        if partial.overwrite:
            if _read_header(path) is None:  # --overwrite replaces deblur's own journal, never a file of the user's
                raise DeblurError(f"{path}: not an evaluation journal deblur wrote; --overwrite replaces only "
                                  "deblur's own files: move it aside or choose another --output")
            return None
        raise DeblurError(f"{path} holds an interrupted evaluation; pass --resume to continue it, or --overwrite "
                          "to start again")
    resumed = _read(path, batches)
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
        import hashlib

        self.path = path
        if resumed is None:
            header = {"journal": VERSION, "fingerprint": fingerprint, "state": state,
                      "replace_reports": replace_reports}
            text = json.dumps(normalized(header)) + "\n"
            atomic_write_text(path, text)
            self.last, self.chain = -1, hashlib.sha256(text.encode()).hexdigest()
        else:
            self.last, self.chain = resumed.last, resumed.chain
            if os.stat(path).st_nlink > 1:  # appending would write into every other name of the file too
                raise DeblurError(f"{path}: has other hard links; deblur appends only to its own journal: move it "
                                  "aside and pass --overwrite to start again")
            with open(path, "r+b") as f:  # drop the uncommitted tail before appending
                f.truncate(resumed.end)
        self._file = open(path, "ab")  # noqa: SIM115 - closed by close() / the context manager

    def commit(self, batch: int, records: list[dict[str, Any]], skipped: list[tuple[str, str]]) -> None:
        """One batch's records and its commit line, in one write, on disk before the next batch starts."""
        listed = [list(s) for s in skipped]
        rows = "".join(json.dumps(r) + "\n" for r in records).encode("ascii")
        chain = chain_digest(self.chain, rows + _commit_core(batch, self.last, listed))
        commit = {"commit": batch, "prev": self.last, "skipped": listed, "chain": chain}
        self._file.write(rows + (json.dumps(commit) + "\n").encode("ascii"))
        self._file.flush()
        os.fsync(self._file.fileno())
        self.last, self.chain = batch, chain

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
