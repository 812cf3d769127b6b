"""The tf.data training pipeline, for the TensorFlow backend (the Keras pipeline serves any backend).

Training draws a fresh crop, flip and kernel for every image on every epoch from stateless random
ops keyed by `Dataset.random(seed, rerandomize_each_iteration=True)`: reproducible for a seed,
different each epoch, and safe under parallel map. Validation and test sets are fixed by their
seed instead, and identical on every backend (`deblur.data.evalset`).
Blurring happens on a crop enlarged by the kernel radius and is cropped back afterwards, so
training patches have real image content at their borders, like patches cut from a blurred photo.
"""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import tensorflow as tf

from deblur.core.errors import DataError
from deblur.core.schema import as_size
from deblur.core.settings import DataConfig
from deblur.data.base import ImageSet, check_sizes
from deblur.data.degrade import N_UNIFORMS, Degradation, train_degradations
from deblur.data.skips import SKIPS
from deblur.data.store import ImageStore

AUTOTUNE = tf.data.AUTOTUNE


class _Images:
    """Random access to a list of differently sized uint8 images from inside tf.data.

    Same-sized images are stacked; others are packed into one flat buffer with offsets, so a
    parallel map can slice any image without Python in the loop.
    """

    def __init__(self, images: list[np.ndarray] | np.ndarray) -> None:
        if isinstance(images, np.ndarray):
            self._stack = tf.constant(images)
            self._flat = None
        else:
            self._stack = None
            shapes = np.array([im.shape for im in images], dtype=np.int64)
            sizes = shapes.prod(axis=1)
            self._offsets = tf.constant(np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64))
            self._sizes = tf.constant(sizes)
            self._shapes = tf.constant(shapes)
            self._flat = tf.constant(np.concatenate([im.ravel() for im in images]))
        self.channels = int(images[0].shape[-1])

    def __call__(self, i: tf.Tensor) -> tf.Tensor:
        if self._flat is None:  # one stacked array
            return tf.gather(self._stack, i)
        flat = self._flat[self._offsets[i]: self._offsets[i] + self._sizes[i]]
        image = tf.reshape(flat, self._shapes[i])
        image.set_shape([None, None, self.channels])
        return image


class _Stored:
    """Crops of images read from disk (`ImageStore`s) inside tf.data: only the crop enters the graph.

    Several aligned stores (a pair's blurred and sharp twins) are read together and returned
    concatenated along channels. The crop offset is drawn in the graph from the header sizes, as
    `tf.image.stateless_random_crop` would draw it on the whole image, so a stored dataset trains on
    the same patches as the same images held in memory. An image that cannot be read is skipped
    (`deblur.data.skips`) and the next readable one is cut instead, so the batch keeps its shape.
    """

    def __init__(self, stores: list[ImageStore]) -> None:
        self.stores = stores
        self.shapes = tf.constant(np.array(stores[0].shapes(), dtype=np.int32).reshape(-1, 3))
        self.channels = int(stores[0].shape(0)[2]) if len(stores[0]) else 0
        # see quiesce(): once closing, reads return at once, and `running` / `last_call` say when none is left
        self.closing, self.running, self.last_call = False, 0, 0.0
        self._calls = threading.Lock()
        _LIVE.add(self)

    def _read(self, i: int, top: int, left: int, h: int, w: int) -> np.ndarray:
        with self._calls:
            self.last_call = time.monotonic()
            if self.closing:  # the pipeline is being torn down: no more file reads, just the right shape
                return np.zeros((int(h), int(w), self.channels * len(self.stores)), np.uint8)
            self.running += 1
        try:
            return self._read_next(i, top, left, h, w)
        finally:
            with self._calls:
                self.running -= 1

    def shape(self, i: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.shapes, i)

    def _read_next(self, i: int, top: int, left: int, h: int, w: int) -> np.ndarray:
        n = len(self.stores[0])
        for k in range(n):
            j = (int(i) + k) % n
            try:
                images = [self._checked(store, j) for store in self.stores]
            except DataError:
                continue  # _checked recorded it
            return np.concatenate([_cut(im, int(top), int(left), int(h), int(w)) for im in images], axis=-1)
        raise DataError("no image of the training set can be read any more")

    @staticmethod
    def _checked(store: ImageStore, j: int) -> np.ndarray:
        try:
            image = store[j]
            if image.shape != store.shape(j):  # the crop offsets were drawn from the header's size
                raise DataError(f"{store.label(j)}: decodes to {image.shape[1]}x{image.shape[0]}x{image.shape[2]}, "
                                f"not the {store.shape(j)[1]}x{store.shape(j)[0]}x{store.shape(j)[2]} its header "
                                "promised")
        except DataError as exc:
            SKIPS.record(store.label(j), str(exc))
            raise
        return image

    def window(self, i: tf.Tensor, top: Any, left: Any, h: Any, w: Any) -> tf.Tensor:
        args = [tf.cast(x, tf.int64) for x in (i, top, left, h, w)]
        out = tf.numpy_function(self._read, args, tf.uint8, stateful=False)
        out.set_shape([None, None, self.channels * len(self.stores)])
        return out


_LIVE: weakref.WeakSet[_Stored] = weakref.WeakSet()


def quiesce(quiet: float = 0.2, limit: float = 10.0) -> None:
    """Let no streamed pipeline of this process call into Python again, before its iterator is freed.

    tf.data runs `_Stored._read` (a `tf.numpy_function`) on its own threads, prefetching ahead. An
    iterator freed while such calls are pending (an exception from `fit` keeps it in its traceback)
    deadlocked `deblur train` after its error line, and one still filling its buffers when the
    interpreter shut down aborted it ("terminate called without an active exception", exit 134).
    Here every pipeline is closed (its reads return zeros at once, so its buffers fill in
    milliseconds) and this waits until no read has run for `quiet` seconds (at most `limit`).
    Called by `deblur train` when fit raises, and at interpreter exit.
    """
    stored = list(_LIVE)
    if not stored:
        return
    for s in stored:
        with s._calls:
            s.closing = True
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        busy = any(s.running for s in stored)
        if not busy and time.monotonic() - max(s.last_call for s in stored) >= quiet:
            return
        time.sleep(0.02)


atexit.register(quiesce)


def _cut(image: np.ndarray, top: int, left: int, h: int, w: int) -> np.ndarray:
    """image[top:top + h, left:left + w]; a substitute image smaller than the window is reflected."""
    H, W = image.shape[:2]
    top, left = min(top, max(0, H - h)), min(left, max(0, W - w))
    part = image[top:top + h, left:left + w]
    if part.shape[:2] != (h, w):
        part = np.pad(part, ((0, h - part.shape[0]), (0, w - part.shape[1]), (0, 0)), mode="symmetric")
    return part


def _crop_offset(shape: tf.Tensor, size: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """The offset `tf.image.stateless_random_crop(value, size, seed)` cuts at, from `value`'s shape alone."""
    size = tf.cast(size, tf.int32)
    limit = tf.cast(shape, tf.int32) - size + 1
    return tf.random.stateless_uniform(tf.shape(shape), dtype=tf.int32, maxval=tf.int32.max, seed=seed) % limit


def _split_seeds(seed: tf.Tensor, n: int) -> list[tf.Tensor]:
    return list(tf.unstack(tf.random.experimental.stateless_split(seed, num=n)))


def _apply_variant(degs: Sequence[Degradation], variant: tf.Tensor, image: tf.Tensor,
                   seed: tf.Tensor, origin: tuple[Any, Any] = (0, 0)) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Blur `image` with degradation number `variant`, drawing its parameters from `seed`; `origin`
    is where the crop that will be kept starts (its JPEG block grid starts there)."""
    s_u, s_noise = _split_seeds(seed, 2)
    u = tf.random.stateless_uniform([N_UNIFORMS], seed=s_u)
    noise = tf.random.stateless_normal(tf.shape(image), seed=s_noise)
    branches: list[Callable[..., Any]] = [
        (lambda d=d: d.apply(image, u, noise, origin)) for d in degs
    ]
    if len(branches) == 1:
        return branches[0]()
    return tf.switch_case(tf.cast(variant, tf.int32), branches)


def _to_float(image: tf.Tensor) -> tf.Tensor:
    return tf.cast(image, tf.float32) / 255.0


@dataclass
class _Examples:
    """One training example from (element, random seed), on each of the four paths: synthetic blur or
    real pairs, from images in memory or streamed from disk. Streamed images are cut at the offset the
    in-memory crop would draw, so both train on the same patches. Synthetic examples are blurred on a
    crop enlarged by the kernel radius (`margin`), which `finish` cuts off again."""

    degs: list[Degradation]
    crop: tuple[int, int] | None
    flip: bool
    channels: int
    margin: int
    paired: bool
    sharp: _Images | None = None  # in memory
    blurred: _Images | None = None  # in memory, paired
    stored: _Stored | None = None  # streamed

    def __call__(self, e: tf.Tensor, r: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        n_var = max(1, len(self.degs))
        i, v = e // n_var, e % n_var
        seed_pair = tf.stack([r, e])
        s_crop, s_flip, s_deg = _split_seeds(seed_pair, 3)
        if self.stored is not None:
            if self.paired:
                return self.paired_streamed(self.stored, i, s_crop, s_flip)
            return self.synthetic_streamed(self.stored, i, v, s_crop, s_flip, s_deg)
        assert self.sharp is not None  # in memory
        if self.paired:
            assert self.blurred is not None  # paired: every image has its blurred twin
            return self.paired_in_memory(self.sharp, self.blurred, i, s_crop, s_flip)
        return self.synthetic_in_memory(self.sharp, i, v, s_crop, s_flip, s_deg)

    def paired_in_memory(self, sharp: _Images, blurred: _Images, i: tf.Tensor, s_crop: tf.Tensor,
                         s_flip: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        crop, channels = self.crop, self.channels
        target = _to_float(sharp(i))
        both = tf.concat([_to_float(blurred(i)), target], axis=-1)
        if crop:
            both = tf.image.stateless_random_crop(both, [crop[0], crop[1], 2 * channels], seed=s_crop)
        if self.flip:
            both = tf.image.stateless_random_flip_left_right(both, seed=s_flip)
        return both[..., :channels], both[..., channels:]

    def synthetic_in_memory(self, sharp: _Images, i: tf.Tensor, v: tf.Tensor, s_crop: tf.Tensor, s_flip: tf.Tensor,
                            s_deg: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        crop, margin = self.crop, self.margin
        target = _to_float(sharp(i))
        shape = tf.shape(target)
        if crop:
            big = tf.minimum(shape[:2], tf.constant([crop[0] + 2 * margin, crop[1] + 2 * margin]))
            target = tf.image.stateless_random_crop(target, tf.concat([big, [self.channels]], 0), seed=s_crop)
        return self.finish(target, v, s_flip, s_deg)

    def _window(self, stored: _Stored, i: tf.Tensor, shape: tf.Tensor, size: tf.Tensor,
                s_crop: tf.Tensor) -> tf.Tensor:
        """The `size` window of image `i` (of `shape`) read from disk, where the in-memory crop would cut it."""
        offset = (_crop_offset(tf.concat([shape[:2], [size[2]]], 0), size, s_crop) if self.crop
                  else tf.zeros([3], tf.int32))
        return _to_float(stored.window(i, offset[0], offset[1], size[0], size[1]))

    def paired_streamed(self, stored: _Stored, i: tf.Tensor, s_crop: tf.Tensor,
                        s_flip: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        crop, channels = self.crop, self.channels
        shape = stored.shape(i)
        size = tf.constant([crop[0], crop[1], 2 * channels]) if crop else tf.concat([shape[:2], [2 * channels]], 0)
        window = self._window(stored, i, shape, size, s_crop)
        if crop:
            window.set_shape([crop[0], crop[1], 2 * channels])
        if self.flip:
            window = tf.image.stateless_random_flip_left_right(window, seed=s_flip)
        return window[..., :channels], window[..., channels:]

    def synthetic_streamed(self, stored: _Stored, i: tf.Tensor, v: tf.Tensor, s_crop: tf.Tensor, s_flip: tf.Tensor,
                           s_deg: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        crop, margin = self.crop, self.margin
        shape = stored.shape(i)
        big = tf.minimum(shape[:2], tf.constant([crop[0] + 2 * margin, crop[1] + 2 * margin])) if crop \
            else shape[:2]
        size = tf.concat([big, [self.channels]], 0)
        return self.finish(self._window(stored, i, shape, size, s_crop), v, s_flip, s_deg)

    def finish(self, target: tf.Tensor, v: tf.Tensor, s_flip: tf.Tensor,
               s_deg: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Flip, blur (degradation `v`) and cut the margin off a synthetic example."""
        crop, channels = self.crop, self.channels
        if self.flip:
            target = tf.image.stateless_random_flip_left_right(target, seed=s_flip)
        top = (tf.shape(target)[0] - crop[0]) // 2 if crop else 0
        left = (tf.shape(target)[1] - crop[1]) // 2 if crop else 0
        degraded, _ = _apply_variant(self.degs, v, target, s_deg, (top, left))
        if crop:
            target = target[top:top + crop[0], left:left + crop[1]]
            degraded = degraded[top:top + crop[0], left:left + crop[1]]
            target.set_shape([crop[0], crop[1], channels])
            degraded.set_shape([crop[0], crop[1], channels])
        return degraded, target


def train_dataset(images: ImageSet, data_cfg: DataConfig, seed: int, paired: bool,
                  steps_per_epoch: int | None = None) -> tf.data.Dataset:
    """Batches of (blurred, sharp) float32 patches, new random crops and kernels every epoch."""
    crop = as_size(data_cfg.crop, "data.crop")
    check_sizes(images, crop, "data.crop", batched=True)
    degs = [] if paired else train_degradations(data_cfg)
    n_var = max(1, len(degs))
    margin = max((d.kernel_radius for d in degs), default=0)
    if images.streamed:
        stores = [images.blurred, images.sharp] if paired else [images.sharp]
        stored = _Stored(cast("list[ImageStore]", stores))  # streamed: every image list is an ImageStore
        example = _Examples(degs, crop, data_cfg.flip, stored.channels, margin, paired, stored=stored)
    else:  # in memory: lists or stacked arrays
        sharp = _Images(cast("list[np.ndarray] | np.ndarray", images.sharp))
        blurred = _Images(cast("list[np.ndarray] | np.ndarray", images.blurred)) if paired else None
        example = _Examples(degs, crop, data_cfg.flip, sharp.channels, margin, paired, sharp=sharp, blurred=blurred)
    count = len(images) * n_var * data_cfg.crops_per_image

    order = tf.data.Dataset.range(len(images) * n_var).repeat(data_cfg.crops_per_image)
    order = order.shuffle(min(count, data_cfg.shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    rng = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((order, rng)).map(example, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(data_cfg.batch_size)
    if steps_per_epoch:
        ds = ds.repeat()
    return ds.prefetch(AUTOTUNE)


def val_dataset(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tf.data.Dataset:
    """The fixed validation batches of `EvalSet.pairs` as a tf.data dataset, for Keras `fit`."""
    first = pairs[0][0]
    spec = tf.TensorSpec([None, None, None, first.shape[-1]], tf.float32)
    ds = tf.data.Dataset.from_generator(lambda: iter(pairs), output_signature=(spec, spec))
    return ds.apply(tf.data.experimental.assert_cardinality(len(pairs)))
