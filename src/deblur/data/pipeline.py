"""tf.data input pipelines: the only module in deblur that calls TensorFlow directly.

Training draws a fresh crop, flip and kernel for every image on every epoch from stateless random
ops keyed by `Dataset.random(seed, rerandomize_each_iteration=True)`: reproducible for a seed,
different each epoch, and safe under parallel map. Validation and test degradations are keyed by
(seed, split, index) instead, so a split is identical on every run and on every machine.
Blurring happens on a crop enlarged by the kernel radius and is cropped back afterwards, so
training patches have real image content at their borders, like patches cut from a blurred photo.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from deblur.config import DataConfig, as_size
from deblur.data.base import ImageSet
from deblur.data.degrade import N_UNIFORMS, PARAM_NAMES, Degradation, make
from deblur.errors import ConfigError, DataError

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
        if self._stack is not None:
            return tf.gather(self._stack, i)
        flat = self._flat[self._offsets[i]: self._offsets[i] + self._sizes[i]]
        image = tf.reshape(flat, self._shapes[i])
        image.set_shape([None, None, self.channels])
        return image


def degradations(data_cfg: DataConfig) -> list[Degradation]:
    specs = data_cfg.degradation if isinstance(data_cfg.degradation, list) else [data_cfg.degradation]
    return [make(s) for s in specs]


def _split_seeds(seed: tf.Tensor, n: int) -> list[tf.Tensor]:
    return list(tf.unstack(tf.random.experimental.stateless_split(seed, num=n)))


def _apply_variant(degs: Sequence[Degradation], variant: tf.Tensor, image: tf.Tensor,
                   seed: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Blur `image` with degradation number `variant`, drawing its parameters from `seed`."""
    s_u, s_noise = _split_seeds(seed, 2)
    u = tf.random.stateless_uniform([N_UNIFORMS], seed=s_u)
    noise = tf.random.stateless_normal(tf.shape(image), seed=s_noise)
    branches: list[Callable[[], Any]] = [
        (lambda d=d: d.apply(image, u, noise)) for d in degs
    ]
    if len(branches) == 1:
        return branches[0]()
    return tf.switch_case(tf.cast(variant, tf.int32), branches)


def _to_float(image: tf.Tensor) -> tf.Tensor:
    return tf.cast(image, tf.float32) / 255.0


def check_sizes(images: ImageSet, crop: tuple[int, int] | None, key: str, batched: bool) -> None:
    """Fail before training starts, naming the smallest image, rather than mid-epoch.

    Whole images of different sizes can be scored one by one, but not batched for training.
    """
    if len(images) == 0:
        return
    if crop is None:
        if batched and images.uniform_size is None:
            raise ConfigError(f"{key}: the images differ in size; set {key} (or data.resize) so they can be batched")
        return
    small = images.min_size
    if small[0] < crop[0] or small[1] < crop[1]:
        raise DataError(f"{key}: {crop[0]}x{crop[1]} is larger than the smallest image ({small[0]}x{small[1]}); "
                        f"lower {key} or set data.resize")


class _Inputs:
    """What both pipelines need from a split: checked sizes, degradations and image accessors."""

    def __init__(self, images: ImageSet, data_cfg: DataConfig, paired: bool,
                 size: tuple[int, int] | None, key: str, batched: bool) -> None:
        check_sizes(images, size, key, batched)
        self.degs = [] if paired else degradations(data_cfg)
        self.sharp = _Images(images.sharp)
        self.blurred = _Images(images.blurred) if paired else None
        self.variants = max(1, len(self.degs))


def train_dataset(images: ImageSet, data_cfg: DataConfig, seed: int, paired: bool,
                  steps_per_epoch: int | None = None) -> tf.data.Dataset:
    """Batches of (blurred, sharp) float32 patches, new random crops and kernels every epoch."""
    crop = as_size(data_cfg.crop, "data.crop")
    inputs = _Inputs(images, data_cfg, paired, crop, "data.crop", batched=True)
    degs, sharp, blurred, n_var = inputs.degs, inputs.sharp, inputs.blurred, inputs.variants
    margin = max((d.kernel_radius for d in degs), default=0)
    channels = sharp.channels
    count = len(images) * n_var * data_cfg.crops_per_image

    def example(e: tf.Tensor, r: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        i, v = e // n_var, e % n_var
        seed_pair = tf.stack([r, e])
        s_crop, s_flip, s_deg = _split_seeds(seed_pair, 3)
        target = _to_float(sharp(i))
        if paired:
            both = tf.concat([_to_float(blurred(i)), target], axis=-1)
            if crop:
                both = tf.image.stateless_random_crop(both, [crop[0], crop[1], 2 * channels], seed=s_crop)
            if data_cfg.flip:
                both = tf.image.stateless_random_flip_left_right(both, seed=s_flip)
            return both[..., :channels], both[..., channels:]
        shape = tf.shape(target)
        if crop:
            big = tf.minimum(shape[:2], tf.constant([crop[0] + 2 * margin, crop[1] + 2 * margin]))
            target = tf.image.stateless_random_crop(target, tf.concat([big, [channels]], 0), seed=s_crop)
        if data_cfg.flip:
            target = tf.image.stateless_random_flip_left_right(target, seed=s_flip)
        degraded, _ = _apply_variant(degs, v, target, s_deg)
        if crop:
            top = (tf.shape(target)[0] - crop[0]) // 2
            left = (tf.shape(target)[1] - crop[1]) // 2
            target = target[top:top + crop[0], left:left + crop[1]]
            degraded = degraded[top:top + crop[0], left:left + crop[1]]
            target.set_shape([crop[0], crop[1], channels])
            degraded.set_shape([crop[0], crop[1], channels])
        return degraded, target

    order = tf.data.Dataset.range(len(images) * n_var).repeat(data_cfg.crops_per_image)
    order = order.shuffle(min(count, data_cfg.shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    rng = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((order, rng)).map(example, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(data_cfg.batch_size)
    if steps_per_epoch:
        ds = ds.repeat()
    return ds.prefetch(AUTOTUNE)


def _split_key(split: str) -> int:
    return zlib.crc32(split.encode()) & 0x7FFFFFFF


def eval_dataset(images: ImageSet, data_cfg: DataConfig, seed: int, split: str,
                 paired: bool) -> tf.data.Dataset:
    """Fixed degraded copies of a split, as dicts with the images and every kernel parameter.

    Each image is blurred whole and then cut into `data.eval_crop` tiles (if set), so tile borders
    hold real blurred content. The result depends only on (seed, split, index).
    """
    tile = as_size(data_cfg.eval_crop, "data.eval_crop")
    inputs = _Inputs(images, data_cfg, paired, tile, "data.eval_crop", batched=False)
    degs, sharp, blurred, n_var = inputs.degs, inputs.sharp, inputs.blurred, inputs.variants
    key = _split_key(split)

    def example(e: tf.Tensor) -> dict[str, tf.Tensor]:
        i, v = e // n_var, e % n_var
        target = _to_float(sharp(i))
        if paired:
            degraded = _to_float(blurred(i))
            params = {n: tf.constant(np.nan, tf.float32) for n in PARAM_NAMES}
        else:
            degraded, params = _apply_variant(degs, v, target, tf.stack([tf.constant(seed, tf.int64),
                                                                         key * (1 << 24) + e]))
        return {"blurred": degraded, "sharp": target, "index": i, "variant": v, **params}

    def tiles(item: dict[str, tf.Tensor]) -> tf.data.Dataset:
        shape = tf.shape(item["sharp"])
        nh, nw = shape[0] // tile[0], shape[1] // tile[1]
        top, left = (shape[0] - nh * tile[0]) // 2, (shape[1] - nw * tile[1]) // 2

        def cut(x: tf.Tensor) -> tf.Tensor:
            x = x[top:top + nh * tile[0], left:left + nw * tile[1]]
            x = tf.reshape(x, [nh, tile[0], nw, tile[1], -1])
            return tf.reshape(tf.transpose(x, [0, 2, 1, 3, 4]), [nh * nw, tile[0], tile[1], -1])

        n = nh * nw
        out = {k: (cut(v) if k in ("blurred", "sharp") else tf.fill([n], v)) for k, v in item.items()}
        out["tile"] = tf.range(n, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices(out)

    ds = tf.data.Dataset.range(len(images) * n_var).map(example, num_parallel_calls=AUTOTUNE)
    if tile:
        ds = ds.flat_map(tiles)
        count = n_var * sum((im.shape[0] // tile[0]) * (im.shape[1] // tile[1]) for im in images.sharp)
    else:
        ds = ds.map(lambda item: {**item, "tile": tf.constant(0, tf.int64)})
        count = n_var * len(images)
    batch = data_cfg.eval_batch_size if (tile or images.uniform_size) else 1
    ds = ds.batch(batch).apply(tf.data.experimental.assert_cardinality(-(-count // batch)))
    return ds.prefetch(AUTOTUNE)


def fit_pairs(ds: tf.data.Dataset, multiple: int = 1) -> tf.data.Dataset:
    """(blurred, sharp) pairs for Keras `fit` validation, centre-cropped to the model's multiple."""
    def pair(item: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        b, s = item["blurred"], item["sharp"]
        if multiple > 1:
            shape = tf.shape(s)
            h, w = shape[1] // multiple * multiple, shape[2] // multiple * multiple
            top, left = (shape[1] - h) // 2, (shape[2] - w) // 2
            b, s = b[:, top:top + h, left:left + w], s[:, top:top + h, left:left + w]
        return b, s

    return ds.map(pair).cache()
