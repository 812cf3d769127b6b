"""Measure the two candidate formats for `deblur pack` on the same photos (issue 14, part 2).

    .venv/bin/python scripts/bench_pack_format.py [--n 50] [--photos ../shared/data/photos]

Candidates: raw uint8 `.npy` shards read with `np.load(mmap_mode="r")` (what deblur pack writes), and
TFRecord shards of raw bytes or of PNG. TFRecord has no random access of its own, so its reader here
keeps an offset index (what a TFRecord pack would need) and seeks to one record. Prints the pack time
and the mean random-access read time per image (warm page cache: the repeated-epoch case).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def photos(folder: Path, n: int, size: tuple[int, int] = (1280, 720)) -> list[np.ndarray]:
    """`n` 1280x720 RGB images: each photo resized, then flipped variants until there are `n`."""
    base = [cv2.resize(cv2.imread(str(p))[:, :, ::-1], size, interpolation=cv2.INTER_AREA)
            for p in sorted(folder.glob("*.jpg"))]
    out = []
    while len(out) < n:
        k = len(out) // len(base)
        im = base[len(out) % len(base)]
        out.append(np.ascontiguousarray(im[:, ::-1] if k % 2 else im))
    return out


def pack_npy(images: list[np.ndarray], folder: Path) -> list[tuple[int, tuple[int, ...]]]:
    index, offset = [], 0
    flat = np.concatenate([im.ravel() for im in images])
    for im in images:
        index.append((offset, im.shape))
        offset += im.size
    np.save(folder / "shard.npy", flat)
    return index


def read_npy(folder: Path, index, i: int, cache: dict) -> np.ndarray:
    if "a" not in cache:
        cache["a"] = np.load(folder / "shard.npy", mmap_mode="r")
    off, shape = index[i]
    return np.array(cache["a"][off:off + int(np.prod(shape))]).reshape(shape)


def pack_tfrecord(images: list[np.ndarray], folder: Path, png: bool) -> list[tuple[int, int]]:
    import tensorflow as tf

    index, path = [], folder / "shard.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as w:
        for im in images:
            payload = cv2.imencode(".png", im[:, :, ::-1])[1].tobytes() if png else im.tobytes()
            w.write(payload)
            index.append(len(payload))
    offsets, pos = [], 0
    for n in index:  # a TFRecord record: 8-byte length, 4-byte CRC, data, 4-byte CRC
        offsets.append((pos + 12, n))
        pos += 16 + n
    return offsets


def read_tfrecord(folder: Path, index, i: int, shape, png: bool, cache: dict) -> np.ndarray:
    if "f" not in cache:
        cache["f"] = open(folder / "shard.tfrecord", "rb")  # noqa: SIM115
    f = cache["f"]
    off, n = index[i]
    f.seek(off)
    data = f.read(n)
    if png:
        return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)[:, :, ::-1]
    return np.frombuffer(data, np.uint8).reshape(shape).copy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--photos", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/photos")
    args = ap.parse_args()
    import tensorflow as tf  # noqa: F401  (imported before timing: its start-up is not pack time)

    images = photos(args.photos, args.n)
    order = np.random.default_rng(0).permutation(len(images))
    shape = images[0].shape
    with tempfile.TemporaryDirectory() as tmp:
        for name, png in (("npy (mmap)", None), ("tfrecord raw", False), ("tfrecord png", True)):
            folder = Path(tmp) / name.replace(" ", "_").replace("(", "").replace(")", "")
            folder.mkdir()
            t0 = time.perf_counter()
            index = pack_npy(images, folder) if png is None else pack_tfrecord(images, folder, png)
            pack_s = time.perf_counter() - t0
            size = sum(f.stat().st_size for f in folder.iterdir())
            cache: dict = {}
            for i in order[:3]:  # warm the page cache and the file handle
                read_npy(folder, index, i, cache) if png is None else read_tfrecord(folder, index, i, shape, png, cache)
            t0 = time.perf_counter()
            for i in order:
                im = (read_npy(folder, index, i, cache) if png is None
                      else read_tfrecord(folder, index, i, shape, png, cache))
                assert np.array_equal(im, images[i])
            read_ms = (time.perf_counter() - t0) / len(images) * 1000
            print(f"{name:14s} pack {pack_s:6.2f} s ({pack_s / len(images) * 1000:6.1f} ms/image)  "
                  f"random read {read_ms:6.2f} ms/image  size {size / 2**20:7.1f} MiB")
            cache.get("f") and cache["f"].close()


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
