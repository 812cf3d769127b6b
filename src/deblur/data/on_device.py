"""Blur synthesis inside the model's input step, for the Keras pipeline on any backend.

The Keras pipeline (`deblur.data.sequence`) sends sharp crops enlarged by the kernel radius, plus a
few uniform numbers and a variant index per image; `Degrade` turns them into kernels and blurs the
whole batch with one depthwise convolution on the accelerator, where the model runs. The host only
slices arrays, so Python never blurs an image during training.

`Degrade` draws its noise with `keras.random` from its own seed generator, so a run is reproducible
for a seed on a given backend. The variant after the configured degradations means "as given": the
input is already blurred (real twins, validation images) and passes through unchanged.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from deblur.data.degrade import N_UNIFORMS, Degradation, convolve, make, sensor


def margin_of(degs: list[Degradation]) -> int:
    """How many pixels each side a training crop is enlarged by, so blurred borders hold real content."""
    return max((d.kernel_radius for d in degs), default=0)


@keras.saving.register_keras_serializable(package="deblur")
class Degrade(keras.layers.Layer):
    """(sharp crop + margin, uniforms, variant) -> blurred crop, without the margin."""

    def __init__(self, degradations: list[dict[str, Any]], seed: int = 0, **kwargs: Any) -> None:
        super().__init__(dtype="float32", **kwargs)
        self.specs = degradations
        self.degs = [make(s) for s in degradations]
        self.margin = margin_of(self.degs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def as_given(self) -> int:
        """The variant index that passes an already blurred image through."""
        return len(self.degs)

    def call(self, image: Any, u: Any, variant: Any) -> Any:
        m = self.margin
        pick = ops.one_hot(ops.cast(variant, "int32"), len(self.degs) + 1, dtype="float32")
        delta = ops.pad(ops.ones((1, 1, 1)), [[0, 0], [m, m], [m, m]])
        kernel = pick[:, -1, None, None] * delta
        zero = ops.zeros_like(pick[:, 0])
        level, shot, quality, rounded, jpeg = zero, zero, zero, zero, zero
        for i, deg in enumerate(self.degs):
            p = deg.params(u)
            pad = m - deg.kernel_radius
            w = pick[:, i]
            kernel = kernel + w[:, None, None] * ops.pad(deg.kernel(p), [[0, 0], [pad, pad], [pad, pad]])
            level = level + w * p["noise"]
            rounded = rounded + w * float(deg.quantize)
            if deg.has_shot:
                shot = shot + w * p["shot"]
            if deg.jpeg is not None:
                quality = quality + w * p["quality"]
                jpeg = jpeg + w
        out = convolve(image, kernel, m, border="valid") if m else image
        noise = keras.random.normal(ops.shape(out), seed=self.seed_generator)
        # each image finished as its own degradation would; JPEG only computed when some kind asks for it
        any_jpeg = any(d.jpeg is not None for d in self.degs)
        return sensor(out, noise, level, shot=shot if any(d.has_shot for d in self.degs) else None,
                      quality=ops.where(jpeg > 0, quality, 100.0) if any_jpeg else None,
                      quantize=rounded, jpeg_weight=jpeg if any_jpeg else None)

    def compute_output_shape(self, image_shape: Any, u_shape: Any = None, variant_shape: Any = None) -> Any:
        b, h, w, c = image_shape
        m = 2 * self.margin
        return b, None if h is None else h - m, None if w is None else w - m, c

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "degradations": self.specs, "seed": self.seed}


def with_degradation(restorer: keras.Model, specs: list[dict[str, Any]], channels: int, seed: int,
                     size: tuple[int, int] | None) -> keras.Model:
    """The model `fit` trains: Degrade, then the restorer (whose weights it shares and updates).

    `size` is the restorer's fixed input size, if it has one; checkpoints save the restorer alone.
    """
    degrade = Degrade(specs, seed=seed, name="degrade")
    m = degrade.margin
    shape = (size[0] + 2 * m, size[1] + 2 * m, channels) if size else (None, None, channels)
    image = keras.Input(shape, name="image")
    u = keras.Input((N_UNIFORMS,), name="u")
    variant = keras.Input((), dtype="int32", name="variant")
    out = restorer(degrade(image, u, variant))
    return keras.Model({"image": image, "u": u, "variant": variant}, out, name=f"degrade_{restorer.name}")
