"""The files of a pack (deblur.data.packed): its format's names, its manifest, and its shards read
back verified.

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
import os
import re
import stat
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deblur.core.digest import file_sha256
from deblur.core.errors import DataError
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
