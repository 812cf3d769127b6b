"""The tf.data training pipeline, for the TensorFlow backend (the Keras pipeline serves any backend).

Training draws a fresh crop, flip and kernel for every image on every epoch from stateless random
ops keyed by `Dataset.random(seed, rerandomize_each_iteration=True)`: reproducible for a seed,
different each epoch, and safe under parallel map. Validation and test sets are fixed by their
seed instead, and identical on every backend (`deblur.data.evalset`).
Blurring happens on a crop enlarged by the kernel radius and is cropped back afterwards, so
training patches have real image content at their borders, like patches cut from a blurred photo.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from deblur.config import DataConfig, as_size
from deblur.data.base import ImageSet, check_sizes
from deblur.data.degrade import N_UNIFORMS, Degradation, train_degradations

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


def _split_seeds(seed: tf.Tensor, n: int) -> list[tf.Tensor]:
    return list(tf.unstack(tf.random.experimental.stateless_split(seed, num=n)))


def _apply_variant(degs: Sequence[Degradation], variant: tf.Tensor, image: tf.Tensor,
                   seed: tf.Tensor, origin: tuple[Any, Any] = (0, 0)) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
    """Blur `image` with degradation number `variant`, drawing its parameters from `seed`; `origin`
    is where the crop that will be kept starts (its JPEG block grid starts there)."""
    s_u, s_noise = _split_seeds(seed, 2)
    u = tf.random.stateless_uniform([N_UNIFORMS], seed=s_u)
    noise = tf.random.stateless_normal(tf.shape(image), seed=s_noise)
    branches: list[Callable[[], Any]] = [
        (lambda d=d: d.apply(image, u, noise, origin)) for d in degs
    ]
    if len(branches) == 1:
        return branches[0]()
    return tf.switch_case(tf.cast(variant, tf.int32), branches)


def _to_float(image: tf.Tensor) -> tf.Tensor:
    return tf.cast(image, tf.float32) / 255.0


def train_dataset(images: ImageSet, data_cfg: DataConfig, seed: int, paired: bool,
                  steps_per_epoch: int | None = None) -> tf.data.Dataset:
    """Batches of (blurred, sharp) float32 patches, new random crops and kernels every epoch."""
    crop = as_size(data_cfg.crop, "data.crop")
    check_sizes(images, crop, "data.crop", batched=True)
    degs = [] if paired else train_degradations(data_cfg)
    sharp, blurred, n_var = _Images(images.sharp), _Images(images.blurred) if paired else None, max(1, len(degs))
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
        top = (tf.shape(target)[0] - crop[0]) // 2 if crop else 0
        left = (tf.shape(target)[1] - crop[1]) // 2 if crop else 0
        degraded, _ = _apply_variant(degs, v, target, s_deg, (top, left))
        if crop:
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


def val_dataset(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tf.data.Dataset:
    """The fixed validation batches of `EvalSet.pairs` as a tf.data dataset, for Keras `fit`."""
    first = pairs[0][0]
    spec = tf.TensorSpec([None, None, None, first.shape[-1]], tf.float32)
    ds = tf.data.Dataset.from_generator(lambda: iter(pairs), output_signature=(spec, spec))
    return ds.apply(tf.data.experimental.assert_cardinality(len(pairs)))
