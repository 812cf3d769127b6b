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

Checksums: reading a pack stats every shard (a missing or truncated one is an error at start-up);
the first time a process reads from a shard, its sha256 is computed in one streaming pass. That is
one sequential read per shard per process (~0.5 s per 512 MB at hashlib's ~1 GB/s), which an epoch
over the same bytes dwarfs, and no corrupt byte is ever trained on; a sampled check would let a
flipped bit through, and hashing everything at start-up would make a large pack slow to start. A
mismatch is a one-line DataError naming the shard and how many images it holds (the streaming
pipeline skips all of them, with one line in the log for the shard, not one per image); a failed
shard is not hashed again.

Data cannot change under a training unnoticed. Before training, every shard's `.npy` header is read
and every item's offset and shape checked against the data it holds. Each image is then read from a
descriptor whose `fstat` must match the shard as it was verified (device, inode, size, mtime and
ctime: a rewrite in place changes ctime even when mtime is set back, a replacement changes the
inode); a shard that changed is hashed again, and read only if it still holds what was packed (one
`fstat` per image costs microseconds; hashing every image on every read would cost as much as the
read itself). A process reading a pack holds a shared `flock` on its folder, so `deblur pack
--overwrite` into it is refused in one line while a training reads it (and a training cannot start
on a pack being written).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import stat
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deblur.core.digest import file_sha256
from deblur.core.errors import DataError, DeblurError
from deblur.core.registry import Registry
from deblur.data.base import (
    ImageSet,
    Splits,
    describe_counts,
    split_groups,
    split_indices,
)
from deblur.data.store import ImageStore, Shape

PACK_FILE = "pack.json"
PACK_FORMAT = "deblur-pack"
# Bump when the shard or manifest layout changes: an older or newer pack is refused, never misread.
PACK_VERSION = 1
SHARD_NAME = "shard-{:05d}.npy"
SHARD_PATTERN = re.compile(r"shard-\d{5,}\.npy")  # a manifest's shard is a plain name in the pack folder
# Written into OUT before the first shard: the proof that `deblur pack --overwrite` may delete the
# pack.json and shard-NNNNN.npy files there (a killed pack has shards but no manifest yet).
PACK_MARKER = ".deblur-pack"
PACK_MARKER_TEXT = ("deblur-pack-folder 1\nThis folder was made by `deblur pack`; `deblur pack --overwrite` deletes "
                    "its pack.json and shard-NNNNN.npy files.\n")
MANIFEST_LIMIT = 1 << 30  # about 5 million items; a larger "manifest" is not one deblur wrote


def is_pack(path: str | os.PathLike | None) -> bool:
    if not path:
        return False
    return (Path(path).expanduser() / PACK_FILE).is_file()


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Record:
    shard: int
    offset: int
    shape: Shape

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2]


_VERIFIED: set[tuple[str, int, int, str]] = set()  # (path, size, mtime_ns, sha256) checked in this process
_VERIFY_LOCK = threading.Lock()


def _identity(st: os.stat_result) -> tuple[int, ...]:
    """What changes when a file is rewritten (ctime even if mtime is set back) or replaced (inode)."""
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _fd_sha256(fd: int) -> str:
    digest, position = hashlib.sha256(), 0
    while chunk := os.pread(fd, 1 << 20, position):
        digest.update(chunk)
        position += len(chunk)
    return digest.hexdigest()


class Shards:
    """A pack's shard files, each opened (and verified) once, on first use, then memory-mapped."""

    def __init__(self, root: Path, entries: list[dict[str, Any]], images: Sequence[int] | None = None,
                 extents: Sequence[int] | None = None) -> None:
        self.root = root
        self.entries = entries
        self.images = list(images) if images is not None else [0] * len(entries)  # images stored per shard
        self.extents = list(extents) if extents is not None else [0] * len(entries)  # bytes its items span
        self._maps: dict[int, np.memmap] = {}
        self._failed: dict[int, str] = {}  # a shard that failed its check fails again at once, unhashed
        self._seen: dict[int, tuple[int, ...]] = {}  # the identity of each shard as verified
        self._lock_fd: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        # to a worker process: the paths, never the mapped pixels (pickling a memmap copies its data) nor
        # the lock (the main process holds it)
        return {**self.__dict__, "_maps": {}, "_failed": {}, "_seen": {}, "_lock_fd": None}

    def hold(self) -> None:
        """A shared lock on the pack folder while this object lives: `deblur pack --overwrite` (an exclusive
        lock) is refused while a training reads it, and a pack being written cannot be read."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        try:
            fd = os.open(self.root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            import errno

            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise DataError(f"{self.root}: a deblur pack is being written into this folder; wait for it to "
                                "finish") from None
            return  # a file system without flock: read unlocked
        import weakref

        self._lock_fd = fd
        weakref.finalize(self, os.close, fd)  # released with the last reference (or the process)

    def path(self, k: int) -> Path:
        return self.root / self.entries[k]["file"]

    def check_sizes(self) -> None:
        """At start-up, one stat and one header read per shard: a missing or truncated shard, or an item
        beyond the data its shard holds, is an error before training."""
        for k in range(len(self.entries)):
            self._stat(k)
            path = self.path(k)
            try:
                with open(path, "rb") as f:
                    major, _ = np.lib.format.read_magic(f)
                    header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                    shape, _, dtype = header(f)
                    start = f.tell()
            except (OSError, ValueError) as exc:
                raise DataError(f"{path}: not a readable shard ({str(exc)[:120]}), {self._held(k)}; pack the data "
                                "again with deblur pack") from None
            held = int(shape[0]) if dtype == np.uint8 and len(shape) == 1 else -1
            if held < 0 or start + held != self.entries[k]["bytes"] or self.extents[k] > held:
                raise DataError(f"{path}: holds {held if held >= 0 else 'no'} bytes of images where its items need "
                                f"{self.extents[k]:,} ({self.root / PACK_FILE} and the shard disagree); pack the data "
                                "again with deblur pack")

    def array(self, k: int) -> np.memmap:
        mapped = self._maps.get(k)
        if mapped is None:
            with _VERIFY_LOCK:  # tf.data may read from several threads; hash each shard once
                mapped = self._maps.get(k)
                if mapped is None:
                    if k in self._failed:
                        raise DataError(self._failed[k])
                    try:
                        mapped = self._maps[k] = self._open(k)
                    except DataError as exc:
                        self._failed[k] = str(exc)
                        raise
        return mapped

    def _stat(self, k: int) -> os.stat_result:
        path, entry = self.path(k), self.entries[k]
        try:
            st = path.stat()
        except OSError:
            raise DataError(f"{path}: shard missing (listed in {self.root / PACK_FILE}); pack the data again "
                            "with deblur pack") from None
        if not stat.S_ISREG(st.st_mode):  # a device or pipe would be read (hashed) for ever
            raise DataError(f"{path}: not a regular file, so not a shard deblur wrote; pack the data again with "
                            "deblur pack")
        if st.st_size != entry["bytes"]:
            raise DataError(f"{path}: shard is {st.st_size:,} bytes but was packed as {entry['bytes']:,} "
                            "(truncated or replaced); pack the data again with deblur pack")
        return st

    def _open(self, k: int) -> np.memmap:
        path, entry = self.path(k), self.entries[k]
        st = self._stat(k)
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns, entry["sha256"])
        if key not in _VERIFIED:
            if file_sha256(path) != entry["sha256"]:
                raise DataError(f"{path}: shard checksum mismatch (damaged or changed since it was packed), "
                                f"{self._held(k)}; pack the data again with deblur pack")
            _VERIFIED.add(key)
        self._seen[k] = _identity(st)
        try:
            mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable shard ({exc}), {self._held(k)}") from None
        if mapped.dtype != np.uint8 or mapped.ndim != 1:
            raise DataError(f"{path}: not a deblur shard (a {mapped.dtype} array of shape {mapped.shape}), "
                            f"{self._held(k)}")
        return mapped

    def read(self, k: int, offset: int, size: int) -> bytes:
        """`size` bytes of shard `k`'s data from `offset`, from a descriptor whose file is still the shard
        that was verified: one that changed since (rewritten, replaced) is hashed again, and refused
        unless it still holds what was packed."""
        mapped = self.array(k)  # verified, and its header parsed, once per process
        path = self.path(k)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            raise DataError(f"{path}: shard missing since the training started (a pack was replaced or deleted "
                            f"under it), {self._held(k)}") from None
        try:
            now = _identity(os.fstat(fd))
            if now != self._seen.get(k):
                with _VERIFY_LOCK:
                    if now != self._seen.get(k):
                        if now[2] != self.entries[k]["bytes"] or _fd_sha256(fd) != self.entries[k]["sha256"]:
                            raise DataError(f"{path}: shard changed since the training started (rewritten or "
                                            f"replaced), {self._held(k)}; pack the data again with deblur pack, "
                                            "then train")
                        self._seen[k] = now
            return os.pread(fd, size, mapped.offset + offset)
        finally:
            os.close(fd)

    def _held(self, k: int) -> str:
        # the message names the shard, not an image: the streaming pipeline logs it once for all of
        # the shard's images (`deblur.data.skips`), which it then skips without a line each
        n = self.images[k]
        return f"{n} image{'s' if n != 1 else ''} unreadable"


class PackedStore(ImageStore):
    """Images of a pack: `read(i)` copies one image out of its memory-mapped shard (no decoding)."""

    def __init__(self, shards: Shards, records: Sequence[Record], names: Sequence[str]) -> None:
        self.shards, self.records, self.names = shards, list(records), list(names)

    def __len__(self) -> int:
        return len(self.records)

    def read(self, i: int) -> np.ndarray:
        """One image, read from its shard with a plain file read (the OS page cache keeps the pixels
        between epochs). Not a view into the memory map: mapped pages a process has touched count in its
        resident memory, which then grew with the pack (N = 10,000 pairs: 3.5 GiB RSS after 60 steps, of
        which 0.7 GiB its own), while pages read into the page cache belong to the OS."""
        r = self.records[i]
        flat = np.frombuffer(self.shards.read(r.shard, r.offset, r.size), dtype=np.uint8)
        if flat.size != r.size:
            raise DataError(f"{self.label(i)}: shard ends inside this image; pack the data again with deblur pack")
        return np.asarray(flat).reshape(r.shape)

    def shape(self, i: int) -> Shape:
        return self.records[i].shape

    def label(self, i: int) -> str:
        # the stored image itself, so items sharing one (a Kaggle scene's sharp shot) share a label,
        # as two items reading one file do (the combined source keeps such a shot once)
        r = self.records[i]
        return f"{self.shards.path(r.shard)}[{r.offset}]"

    def subset(self, indices: Sequence[int]) -> PackedStore:
        return PackedStore(self.shards, [self.records[i] for i in indices], [self.names[i] for i in indices])


def read_manifest(root: Path) -> dict[str, Any]:
    from deblur.core.safefile import UnsafeFile, read_json

    path = root / PACK_FILE
    try:
        manifest = read_json(path, MANIFEST_LIMIT, "pack manifest")
    except (OSError, UnsafeFile) as exc:
        raise DataError(f"{path}: unreadable pack manifest ({exc}); pack the data again with deblur pack") from None
    if not isinstance(manifest, dict) or manifest.get("format") != PACK_FORMAT:
        raise DataError(f"{path}: not a deblur pack manifest")
    if manifest.get("version") != PACK_VERSION:
        raise DataError(f"{root}: packed in pack format {manifest.get('version')} (deblur "
                        f"{manifest.get('deblur', '?')}); this deblur reads format {PACK_VERSION}: pack the data "
                        "again with this version's deblur pack")
    return manifest


@dataclass
class Item:
    name: str
    group: str
    split: str | None  # "test" for a pairs dataset's own test/ folder; None: split by the seed
    sharp: Record
    blurred: Record | None


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


# ------------------------------------------------------------ the sources' rules, on a pack
#
# Each kind keeps its source's listing filter (options), grouping and split rule, so that a pack and
# its original folder give the same splits for a seed. `group` is stored in the manifest (derived at
# pack time from the names exactly as the source groups them).


@dataclass(frozen=True)
class PackRule:
    group: Callable[[str], str]  # name -> the unit a split keeps together
    select: Callable[..., Callable[[Item], bool]]  # the source's options -> which packed items it lists
    by_group: bool  # split_groups (scenes, sequences) rather than split_indices
    paired: bool
    label: Callable[..., str]
    pack_options: dict[str, Any]  # the source options that list everything when packing
    how: str = "split by seed {seed}"  # the split, as the source's description words it
    channels_from_train: bool = False  # pairs count colour on the training split, the others on every image


RULES: Registry[PackRule] = Registry("packable source")

RULES.register("folder")(PackRule(
    group=lambda name: name,
    select=lambda recursive=True: (lambda it: recursive or ("/" not in it.name and os.sep not in it.name)),
    by_group=False, paired=False, label=lambda **_: "folder", pack_options={"recursive": True}))
RULES.register("pairs")(PackRule(
    group=lambda name: name.rsplit("/", 1)[0] if "/" in name else name,
    select=lambda: (lambda it: True), by_group=True, paired=True, label=lambda **_: "pairs", pack_options={},
    channels_from_train=True))
_KAGGLE_TAGS = {"motion": ("M",), "defocus": ("F",), "both": ("M", "F")}
RULES.register("kaggle_blur")(PackRule(
    group=lambda name: name[:-2],  # <scene>_M / <scene>_F
    select=lambda blur="both": (lambda it: it.name[-1:] in _KAGGLE_TAGS[blur]),
    by_group=True, paired=True, label=lambda blur="both", **_: f"Kaggle blur ({blur})", pack_options={"blur": "both"},
    how="split by scene"))


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


# ----------------------------------------------------------------------------- writing


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
