"""`deblur pack`: a dataset decoded once into the shards of a pack (deblur.data.packed describes the
format), its manifest written last, replacing only a pack deblur wrote."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from deblur.core.errors import DataError, DeblurError
from deblur.data.packrules import RULES
from deblur.data.shards import (
    PACK_FILE,
    PACK_FORMAT,
    PACK_MARKER,
    PACK_MARKER_TEXT,
    PACK_VERSION,
    SHARD_NAME,
    SHARD_PATTERN,
    is_pack,
    read_manifest,
)


class _ShardWriter:
    """Images appended into shards of about `limit` bytes, each written through a temporary file."""

    def __init__(self, folder: Path, limit: int) -> None:
        self.folder, self.limit = folder, limit
        self.pending: list[np.ndarray] = []
        self.pending_bytes = 0
        self.shards: list[dict[str, Any]] = []

    def add(self, image: np.ndarray) -> dict[str, Any]:
        if self.pending and self.pending_bytes + image.size > self.limit:
            self.flush()
        where = {"shard": len(self.shards), "offset": self.pending_bytes, "shape": list(image.shape)}
        self.pending.append(np.ascontiguousarray(image, dtype=np.uint8))
        self.pending_bytes += image.size
        return where

    def flush(self) -> None:
        if not self.pending:
            return
        from deblur.core.atomic import atomic_path

        name = SHARD_NAME.format(len(self.shards))
        header = io.BytesIO()  # a 1-D uint8 .npy: np.load reads it, memory-mapped
        np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                      "shape": (self.pending_bytes,)})
        h = hashlib.sha256(header.getvalue())
        with atomic_path(self.folder / name, suffix=".tmp") as tmp, open(tmp, "wb") as f:
            f.write(header.getvalue())
            for im in self.pending:
                data = im.reshape(-1).data  # a memoryview of its bytes
                f.write(data)
                h.update(data)
            f.flush()
            os.fsync(f.fileno())
            size = f.tell()
        self.shards.append({"file": name, "bytes": size, "sha256": h.hexdigest()})
        self.pending, self.pending_bytes = [], 0


def _clear_old_pack(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty OUT unless it is deblur's pack and --overwrite was given, then delete only the
    pack's own files, the old manifest first, so a half-replaced pack is never read.

    A pack is deblur's by its marker (`.deblur-pack`, with only pack.json and shard-NNNNN.npy beside it),
    or, packed before the marker, by a readable pack.json whose shards are all that is there."""
    from deblur.core.atomic import is_temp_name
    from deblur.core.locks import LOCK_FILE

    entries = [e for e in out.iterdir() if e.name not in (LOCK_FILE, PACK_MARKER) and not is_temp_name(e.name)]
    if not entries:
        return
    if _marked(out):
        ours = {e.name for e in entries if e.name == PACK_FILE or SHARD_PATTERN.fullmatch(e.name)}
    else:
        try:
            ours = {PACK_FILE, *(str(s.get("file")) for s in read_manifest(out).get("shards", [])
                                 if isinstance(s, dict))}
        except DataError:
            ours = set()
    strangers = sorted(e.name for e in entries if e.name not in ours or e.is_symlink() or not e.is_file())
    if strangers:
        shown = ", ".join(strangers[:4]) + (f" and {len(strangers) - 4} more" if len(strangers) > 4 else "")
        raise DeblurError(f"OUT {out}: holds files that are not a deblur pack ({shown}); --overwrite deletes only "
                          "a pack deblur wrote: choose an empty folder")
    if not overwrite:
        raise DeblurError(f"OUT {out}: already holds a pack; pass --overwrite to replace it")
    (out / PACK_FILE).unlink(missing_ok=True)
    for e in entries:
        e.unlink(missing_ok=True)


def _marked(out: Path) -> bool:
    from deblur.core.safefile import UnsafeFile, read_text

    try:
        return read_text(out / PACK_MARKER, what="pack marker").splitlines()[:1] == [PACK_MARKER_TEXT.splitlines()[0]]
    except (OSError, UnsafeFile):
        return False


def pack(data_dir: Path, out: Path, source: str, shard_mb: float = 512, overwrite: bool = False,
         progress: Callable[..., Iterable] = lambda items, total=None: items) -> dict[str, Any]:
    """Decode every image of `data_dir` (as data source `source` lists and reads it) into shards under
    `out`. The sources must be registered (import deblur.data.sources; `layout.detect` names one)."""
    from deblur import __version__
    from deblur.data.base import SOURCES
    from deblur.imaging.outputs import output_folder

    if not data_dir.is_dir():
        raise DataError(f"DATA_DIR {data_dir}: not a folder")
    if is_pack(data_dir):
        raise DataError(f"DATA_DIR {data_dir}: is a pack already; point data.path at it")
    if not (math.isfinite(shard_mb) and shard_mb > 0):  # NaN and inf passed `<= 0`, then failed in int()
        raise DeblurError(f"--shard-mb {shard_mb}: must be a positive number of megabytes")
    kind = source
    rule = RULES.get(kind, "--source")
    # the source's own listing and decoding, every item in one split: its names and images are the
    # ones a training run reads, and its checks (unpaired files, sizes) run before anything is written
    splits = SOURCES.get(kind, "--source").load(str(data_dir), seed=0, val_split=0.0, test_split=0.0,
                                                **rule.pack_options)
    fixed_test = kind == "pairs" and len(splits.test) > 0
    listed = [(s, splits.get(s)) for s in ("train", "val", "test")]
    total = sum(len(part) for _, part in listed)
    with output_folder(out, "OUT", "a pack"):
        _clear_old_pack(out, overwrite)
        from deblur.imaging.imageio import atomic_write_text

        atomic_write_text(out / PACK_MARKER, PACK_MARKER_TEXT)  # before any shard: a killed pack is still ours
        writer = _ShardWriter(out, int(shard_mb * 2**20))
        seen: dict[bytes, dict[str, Any]] = {}  # one copy of an image two items share (a Kaggle scene's sharp shot)

        def put(image: np.ndarray) -> dict[str, Any]:
            image = np.ascontiguousarray(image, dtype=np.uint8)
            digest = hashlib.blake2b(str(image.shape).encode(), digest_size=16)
            digest.update(image.data)
            key = digest.digest()
            if key not in seen:
                seen[key] = writer.add(image)
            return seen[key]

        def entries() -> Iterable[dict[str, Any]]:
            for split, part in listed:
                for i in range(len(part)):
                    yield {"name": part.names[i], "group": rule.group(part.names[i]),
                           "split": "test" if fixed_test and split == "test" else None,
                           "sharp": put(part.sharp[i]),
                           "blurred": put(part.blurred[i]) if part.blurred is not None else None}

        items = list(progress(entries(), total=total))
        writer.flush()
        manifest = {"format": PACK_FORMAT, "version": PACK_VERSION, "deblur": __version__, "source": kind,
                    "data_dir": str(data_dir.resolve()), "items": items, "shards": writer.shards}
        atomic_write_text(out / PACK_FILE, json.dumps(manifest))  # last: only a finished pack has one
    return {"source": kind, "items": total, "images": len(seen), "shards": len(writer.shards),
            "bytes": sum(s["bytes"] for s in writer.shards)}
