"""`deblur pack`: a folder, pairs or Kaggle dataset decoded once into shards, read back at memory speed.

Format, chosen by measurement (`scripts/bench_pack_format.py`, 50 photos at 1280x720, 2-core machine
under load, warm page cache): raw uint8 `.npy` shards read with `np.load(mmap_mode="r")` pack in
~8-10 ms/image and read one image at random in ~1.2-2.3 ms (a memory copy); TFRecord of raw bytes
reads as fast but only through an offset index of our own (TFRecord has no random access), and
TFRecord of PNG is 2.5x smaller but ~37-41 ms/image to decode, as slow as the JPEGs it replaces.
Raw `.npy` needs no decoder, no index format and no TensorFlow, so every backend reads it.

A pack folder holds `shard-NNNNN.npy` (each a 1-D uint8 array: images back to back) and `pack.json`:
the source kind, and per item its name, group (the unit a split keeps together), fixed split (a
pairs dataset's own `test/`) and where its sharp (and blurred) image lies: shard, offset, shape; per
shard its file name, size and sha256. The manifest is written last, so an interrupted pack is never
read. `data.path` pointing at a pack is read by the same source name, with the same split rules, so a
seed gives the same train/validation/test names as the original folder (`readable` below).

The shard files, read back verified, are deblur.data.shards; the pack rules of each source
deblur.data.packrules; the writer, `deblur pack`, deblur.data.packing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from deblur.core.errors import DataError
from deblur.data.base import (
    ImageSet,
    Splits,
    describe_counts,
    split_groups,
    split_indices,
)
from deblur.data.packing import _ShardWriter, pack
from deblur.data.packrules import RULES, Item, PackRule
from deblur.data.shards import (
    MANIFEST_LIMIT,
    PACK_FILE,
    PACK_FORMAT,
    PACK_MARKER,
    PACK_MARKER_TEXT,
    PACK_VERSION,
    SHARD_NAME,
    SHARD_PATTERN,
    PackedStore,
    Record,
    Shards,
    is_pack,
    read_manifest,
)

# with the names callers and tests import from here, where they were defined before the split
__all__ = ["MANIFEST_LIMIT", "PACK_FILE", "PACK_FORMAT", "PACK_MARKER", "PACK_MARKER_TEXT", "PACK_VERSION", "RULES",
           "SHARD_NAME", "SHARD_PATTERN", "Item", "PackRule", "PackedStore", "Record", "Shards", "_ShardWriter",
           "is_pack", "load", "pack", "read_manifest", "readable"]


def _record(entry: dict[str, Any]) -> Record:
    return Record(int(entry["shard"]), int(entry["offset"]), tuple(int(s) for s in entry["shape"]))  # type: ignore[arg-type]


def _items(manifest: dict[str, Any]) -> list[Item]:
    return [Item(e["name"], e["group"], e.get("split"), _record(e["sharp"]),
                 _record(e["blurred"]) if e.get("blurred") else None) for e in manifest["items"]]


def _image_set(shards: Shards, items: Sequence[Item], paired: bool) -> ImageSet:
    names = [it.name for it in items]
    sharp = PackedStore(shards, [it.sharp for it in items], names)
    blurred = PackedStore(shards, [it.blurred for it in items], names) if paired else None  # type: ignore[misc]
    return ImageSet(sharp=sharp, names=names, blurred=blurred)


def _channels(items: Iterable[Item]) -> int:
    """As the sources count them: 3 if any sharp image has colour, else 1."""
    return 3 if any(it.sharp.shape[2] >= 3 for it in items) else 1


def load(root: Path, kind: str, *, seed: int, val_split: float, test_split: float, **options: Any) -> Splits:
    """A pack read as source `kind` would read its original folder: same names, same splits."""
    manifest = read_manifest(root)
    try:
        packed_kind, every = manifest["source"], _items(manifest)
        entries: list[dict[str, Any]] = [{"file": str(e["file"]), "bytes": int(e["bytes"]), "sha256": str(e["sha256"])}
                                         for e in manifest["shards"]]
        for e in entries:  # a name like /dev/zero or ../x would be read (and hashed) outside the pack
            if not SHARD_PATTERN.fullmatch(e["file"]) or e["bytes"] < 0:
                raise ValueError(f"shard entry {e['file']!r} is not a shard-NNNNN.npy file of this pack")
        for it in every:
            for r in (it.sharp, it.blurred):
                if r is None:
                    continue
                if not 0 <= r.shard < len(entries):
                    raise IndexError("an item's shard is not listed")
                if (len(r.shape) != 3 or min(r.shape) < 1 or r.shape[2] not in (1, 2, 3, 4) or r.offset < 0
                        or r.offset + r.size > entries[r.shard]["bytes"]):
                    raise ValueError(f"item {it.name!r}: shape {r.shape} at offset {r.offset} does not lie in its "
                                     "shard")
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise DataError(f"{root / PACK_FILE}: damaged pack manifest ({type(exc).__name__}: {exc}); pack the data "
                        "again with deblur pack") from None
    if packed_kind != kind:
        raise DataError(f"{root}: this pack holds a {packed_kind} dataset; set data.source: {packed_kind} to read it")
    rule = RULES.get(kind, "data.source")
    keep = rule.select(**options)
    items = [it for it in every if keep(it)]
    stored = {(r.shard, r.offset) for it in every for r in (it.sharp, it.blurred) if r is not None}
    per_shard = Counter(shard for shard, _ in stored)
    extents = [0] * len(entries)
    for r in (r for it in every for r in (it.sharp, it.blurred) if r is not None):
        extents[r.shard] = max(extents[r.shard], r.offset + r.size)
    shards = Shards(root, entries, [per_shard[k] for k in range(len(entries))], extents)
    shards.hold()
    shards.check_sizes()
    fixed = [it for it in items if it.split == "test"]
    free = [it for it in items if it.split != "test"]
    how = rule.how.format(seed=seed)
    if fixed:  # a pairs dataset with its own train/ and test/: validation only is cut, by sequence
        parts = [*split_groups([it.group for it in free], val_split, 0.0, seed)[:2], None]
        how = "its own train/ and test/"
    elif rule.by_group:
        parts = list(split_groups([it.group for it in free], val_split, test_split, seed))
    else:
        parts = list(split_indices(len(free), val_split, test_split, seed))
    chosen = [[free[i] for i in part] if part is not None else fixed for part in parts]
    train, val, test = (_image_set(shards, part, rule.paired) for part in chosen)
    splits = Splits(train, val, test, channels=_channels(chosen[0] if rule.channels_from_train else items),
                    description="", paired=rule.paired)
    splits.description = describe_counts(rule.label(**options), splits, f" (pack {root}, {how})")
    return splits


def readable(kind: str, load_files: Callable[..., Splits]) -> Callable[..., Splits]:
    """A source's `load`, made to read a pack when `data.path` holds a pack.json."""
    def load_any(path: str | None, **kwargs: Any) -> Splits:
        if path is not None and is_pack(path):
            return load(Path(path).expanduser(), kind, **kwargs)
        return load_files(path, **kwargs)

    load_any.__doc__ = load_files.__doc__
    return load_any
