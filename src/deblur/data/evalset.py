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

import math
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from deblur.config import as_size
from deblur.data.base import ImageSet, check_sizes
from deblur.data.degrade import N_UNIFORMS, PARAM_NAMES, _bounds, degradations

IMAGE_KEYS = ("blurred", "sharp")
LARGE_ITEM = 512 * 512  # deblur.predict.DEFAULT_TILE squared: larger items are restored in tiles


def split_key(split: str) -> int:
    """A stable number per split name, so val and test draw different blurs from one seed."""
    return zlib.crc32(split.encode()) & 0x7FFFFFFF


def _to_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0


class EvalSet:
    """The degraded split, iterable any number of times with identical results."""

    def __init__(self, images: ImageSet, data_cfg: Any, seed: int, split: str, paired: bool) -> None:
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
        self.items = self.variants * (sum(math.prod(self._tiles_of(im)) for im in images.sharp)
                                      if self.tile else len(images))

    def _tiles_of(self, image: np.ndarray) -> tuple[int, int]:
        assert self.tile is not None
        return image.shape[0] // self.tile[0], image.shape[1] // self.tile[1]

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

    def _items(self) -> Iterator[dict[str, Any]]:
        for e in range(len(self.images) * self.variants):
            blurred, sharp, params = self.degrade(e)
            meta = {"index": e // self.variants, "variant": e % self.variants, **params}
            if not self.tile:
                yield {"blurred": blurred, "sharp": sharp, "tile": 0, **meta}
                continue
            (th, tw), (nh, nw) = self.tile, self._tiles_of(sharp)
            top, left = (sharp.shape[0] - nh * th) // 2, (sharp.shape[1] - nw * tw) // 2
            for t in range(nh * nw):
                y, x = top + (t // nw) * th, left + (t % nw) * tw
                yield {"blurred": blurred[y:y + th, x:x + tw], "sharp": sharp[y:y + th, x:x + tw], "tile": t, **meta}

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        chunk: list[dict[str, Any]] = []
        for item in self._items():
            chunk.append(item)
            if len(chunk) == self.batch:
                yield _stack(chunk)
                chunk = []
        if chunk:
            yield _stack(chunk)

    def pairs(self, multiple: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
        """(blurred, sharp) batches for validation during training, centre-cropped to the model's multiple."""
        out = []
        for batch in self:
            b, s = batch["blurred"], batch["sharp"]
            h, w = s.shape[1] // multiple * multiple, s.shape[2] // multiple * multiple
            top, left = (s.shape[1] - h) // 2, (s.shape[2] - w) // 2
            out.append((b[:, top:top + h, left:left + w], s[:, top:top + h, left:left + w]))
        return out


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
