"""Fixed degraded copies of a validation or test split: the same on every backend and every machine.

A score names its protocol (dataset, split, blur, seed), so the blurred test images must depend on
nothing else: not on the Keras backend, the batch size or the number of threads. Image `e` of a
split draws its blur parameters and noise from NumPy's generator seeded by (seed, split, e), and is
blurred whole by the same `keras.ops` operators that training uses, one image at a time. Only then
is it cut into `data.eval_crop` tiles, so tile borders hold real blurred content.

Batches are generated on demand (a test set of large photos never sits in memory as float32), as
dicts of NumPy arrays: the images, and for every item its image index, variant, tile number and
every kernel parameter (NaN where a kind has none), which the non-blind baselines and the
per-strength breakdowns of a report read.
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from deblur.core.errors import DataError
from deblur.core.schema import as_size
from deblur.core.settings import DataConfig
from deblur.data.base import ImageSet, check_sizes
from deblur.data.degrade import N_UNIFORMS, PARAM_NAMES, _bounds, degradations
from deblur.data.skips import SKIPS, failed_label
from deblur.data.store import label_of

IMAGE_KEYS = ("blurred", "sharp")
VAL_CACHE_BYTES = 512 << 20  # validation batches kept between epochs; more are made again each pass
LARGE_ITEM = 512 * 512  # deblur.restore.predict.DEFAULT_TILE squared: larger items are restored in tiles


def split_key(split: str) -> int:
    """A stable number per split name, so val and test draw different blurs from one seed."""
    return zlib.crc32(split.encode()) & 0x7FFFFFFF


def _to_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


class EvalSet:
    """The degraded split, iterable any number of times with identical results."""

    def __init__(self, images: ImageSet, data_cfg: DataConfig, seed: int, split: str, paired: bool) -> None:
        self.tile = as_size(data_cfg.eval_crop, "data.eval_crop")
        check_sizes(images, self.tile, "data.eval_crop", batched=False)
        self.images, self.seed, self.key, self.paired = images, seed, split_key(split), paired
        self.degs = [] if paired else degradations(data_cfg)
        self.variants = max(1, len(self.degs))
        size = self.tile or images.uniform_size
        self.batch = data_cfg.eval_batch_size if size else 1
        if size and size[0] * size[1] > LARGE_ITEM:
            # one at a time, so the model restores each tile by tile: 32 camera photos of one size in
            # one batch ran out of memory
            self.batch = 1
        # items per image from header sizes (nothing decoded), and where each (image, variant) starts
        self.shapes = images.shapes()
        per_image = [math.prod(self._tiles_of(shape)) if self.tile else 1 for shape in self.shapes]
        self.starts = [0, *itertools.accumulate(per_image[e // self.variants]
                                                for e in range(len(images) * self.variants))]
        self.items = self.starts[-1]
        # (file, reason) of every image that could not be read, each once: scored splits report them
        self.skipped: list[tuple[str, str]] = []
        self.next_batch = 0  # the batch number after the one a pass yielded last (skips leave gaps)
        self._last: tuple[int, Any] = (-1, None)  # the last image degraded: tiles of one image span batches

    def _tiles_of(self, shape: tuple[int, ...]) -> tuple[int, int]:
        assert self.tile is not None
        return shape[0] // self.tile[0], shape[1] // self.tile[1]

    def __len__(self) -> int:
        """Number of batches."""
        return -(-self.items // self.batch)

    def degrade(self, e: int) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
        """Item `e` of the split (image e // variants, degradation e % variants), blurred whole."""
        from keras import ops

        i, v = divmod(e, self.variants)
        sharp = _to_float(self.images.sharp[i])
        if self.paired:
            assert self.images.blurred is not None
            return _to_float(self.images.blurred[i]), sharp, dict.fromkeys(PARAM_NAMES, float("nan"))
        deg = self.degs[v]
        rng = np.random.default_rng([self.seed, self.key, e])
        u = rng.random(N_UNIFORMS, dtype=np.float32)
        noisy = _bounds(deg.noise, "noise")[1] > 0 or deg.has_shot  # shot noise needs the normal draw too
        noise = rng.standard_normal(sharp.shape, dtype=np.float32) if noisy else np.zeros_like(sharp)
        out, params = deg.apply(ops.convert_to_tensor(sharp), ops.convert_to_tensor(u),
                                ops.convert_to_tensor(noise))
        return (np.asarray(ops.convert_to_numpy(out), np.float32), sharp,
                {k: float(ops.convert_to_numpy(params[k])) for k in PARAM_NAMES})

    def _degraded(self, e: int) -> tuple[np.ndarray, np.ndarray, dict[str, float]] | None:
        """`degrade(e)`, or None when its image cannot be read (named once in `skipped`, and the log)."""
        if self._last[0] == e:
            return self._last[1]
        i = e // self.variants
        try:
            out = self.degrade(e)
            if out[1].shape[:2] != self.shapes[i][:2]:  # tiles and batch sizes were planned from the header
                raise DataError(f"{label_of(self.images.sharp, i)}: decodes to {out[1].shape[1]}x{out[1].shape[0]}, "
                                f"not the {self.shapes[i][1]}x{self.shapes[i][0]} its header promised")
        except DataError as exc:
            label = failed_label(exc, [self.images.sharp, self.images.blurred], i)
            if all(label != known for known, _ in self.skipped):
                self.skipped.append((label, str(exc).removeprefix(f"{label}: ")))
            SKIPS.record(label, str(exc))
            out = None
        self._last = (e, out)
        return out

    def _items(self, skip: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        """(item number, item) in order from item `skip` on; earlier items are neither degraded nor
        returned, and the items of an unreadable image are left out."""
        for e in range(max(0, bisect.bisect_right(self.starts, skip) - 1), len(self.images) * self.variants):
            first, end = max(skip, self.starts[e]), self.starts[e + 1]
            if first >= end:
                continue
            got = self._degraded(e)
            if got is None:
                continue
            blurred, sharp, params = got
            meta = {"index": e // self.variants, "variant": e % self.variants, **params}
            if not self.tile:
                yield first, {"blurred": blurred, "sharp": sharp, "tile": 0, **meta}
                continue
            (th, tw), (nh, nw) = self.tile, self._tiles_of(sharp.shape)
            top, left = (sharp.shape[0] - nh * th) // 2, (sharp.shape[1] - nw * tw) // 2
            for t in range(first - self.starts[e], nh * nw):
                y, x = top + (t // nw) * th, left + (t % nw) * tw
                yield self.starts[e] + t, {"blurred": blurred[y:y + th, x:x + tw], "sharp": sharp[y:y + th, x:x + tw],
                                           "tile": t, **meta}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self.from_batch(0)

    def from_batch(self, first: int) -> Iterator[dict[str, np.ndarray]]:
        """Batches `first`, `first + 1`, ... exactly as a whole pass gives them; the items of earlier
        batches are not degraded (a resumed evaluation skips what it scored before).

        Batch `b` holds items b * batch ... (b + 1) * batch - 1, less those of unreadable images: such
        a batch is shorter, and one with no readable item is not yielded at all; `next_batch` then
        says which batch number comes after the one yielded last.
        """
        chunk: list[dict[str, Any]] = []
        current = first
        for position, item in self._items(first * self.batch):
            number = position // self.batch
            if number != current and chunk:
                self.next_batch = current + 1
                yield _stack(chunk)
                chunk = []
            current = number
            chunk.append(item)
        if chunk:
            self.next_batch = current + 1
            yield _stack(chunk)

    def pairs(self, multiple: int = 1) -> ValPairs:
        """(blurred, sharp) batches for validation during training, centre-cropped to the model's multiple:
        made on demand, so a large validation split is never all in memory."""
        return ValPairs(self, multiple)


class ValPairs(Sequence[tuple[np.ndarray, np.ndarray]]):
    """An EvalSet's batches as (blurred, sharp) pairs, by batch number, re-iterable in the same order.

    Batches are kept once made while they fit in `budget` bytes (a small split is degraded once per
    run, as when the list was made up front); the rest are made again each pass. A batch whose every
    image is unreadable is replaced by the next readable one, so a pass has `len` batches.
    """

    def __init__(self, evalset: EvalSet, multiple: int, budget: int = VAL_CACHE_BYTES) -> None:
        self.evalset, self.multiple, self.budget = evalset, multiple, budget
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._held = 0
        self._lock = threading.Lock()  # PyDataset workers and tf.data share one EvalSet

    def __len__(self) -> int:
        return len(self.evalset)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[override]
        if not 0 <= i < len(self):
            raise IndexError(i)
        with self._lock:
            if i in self._cache:
                return self._cache[i]
            batch = next(self.evalset.from_batch(i), None) or next(self.evalset.from_batch(0), None)
            if batch is None:
                raise DataError("no image of the validation split can be read")
            b, s = batch["blurred"], batch["sharp"]
            m = self.multiple
            h, w = s.shape[1] // m * m, s.shape[2] // m * m
            top, left = (s.shape[1] - h) // 2, (s.shape[2] - w) // 2
            pair = (b[:, top:top + h, left:left + w], s[:, top:top + h, left:left + w])
            if self._held + b.nbytes + s.nbytes <= self.budget:
                self._cache[i] = pair
                self._held += b.nbytes + s.nbytes
            return pair

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return (self[i] for i in range(len(self)))


def _stack(items: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for k in items[0]:
        values = [it[k] for it in items]
        if k in IMAGE_KEYS:
            out[k] = np.stack(values)
        elif k in PARAM_NAMES:
            out[k] = np.asarray(values, np.float32)
        else:
            out[k] = np.asarray(values, np.int64)
    return out
