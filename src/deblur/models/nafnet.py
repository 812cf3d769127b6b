"""NAFNet (Chen et al., "Simple Baselines for Image Restoration", ECCV 2022) in Keras 3.

Each block: LayerNorm, 1x1 conv, 3x3 depthwise conv, SimpleGate (split channels, multiply halves),
simplified channel attention (global average pool, 1x1 conv, multiply), 1x1 conv, and a learnable
per-channel skip scale initialised at zero, so every block starts as the identity; then a
feed-forward half with the same gate and scale. Blocks sit in a U-shape with additive skips and a
global residual (output = input + correction).

One departure, on purpose: upsampling is a 2x2 stride-2 transposed convolution instead of 1x1 conv +
PixelShuffle, which Keras has no built-in layer for; it keeps the model free of custom resampling
code. Inputs must be divisible by 2 ** len(enc_blocks); `deblur predict` pads.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from deblur.models.base import MODELS


@keras.saving.register_keras_serializable(package="deblur")
class SimpleGate(layers.Layer):
    """Split the channels in two halves and multiply them: a gate with no activation function."""

    def call(self, x):
        a, b = ops.split(x, 2, axis=-1)
        return a * b

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 2)


@keras.saving.register_keras_serializable(package="deblur")
class ChannelScale(layers.Layer):
    """A learnable per-channel scale, initialised at zero so a residual branch starts switched off."""

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],), initializer="zeros")

    def call(self, x):
        return x * self.scale


def _block(x: keras.KerasTensor, channels: int, name: str, dw_expand: int = 2,
           ffn_expand: int = 2) -> keras.KerasTensor:
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(x)
    y = layers.Conv2D(channels * dw_expand, 1, name=f"{name}_expand")(y)
    y = layers.DepthwiseConv2D(3, padding="same", name=f"{name}_dw")(y)
    y = SimpleGate(name=f"{name}_gate1")(y)
    attention = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(y)
    attention = layers.Conv2D(channels * dw_expand // 2, 1, name=f"{name}_sca")(attention)
    y = layers.Multiply(name=f"{name}_attend")([y, attention])
    y = layers.Conv2D(channels, 1, name=f"{name}_project")(y)
    x = layers.Add(name=f"{name}_skip1")([x, ChannelScale(name=f"{name}_beta")(y)])
    y = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(x)
    y = layers.Conv2D(channels * ffn_expand, 1, name=f"{name}_ffn_in")(y)
    y = SimpleGate(name=f"{name}_gate2")(y)
    y = layers.Conv2D(channels, 1, name=f"{name}_ffn_out")(y)
    return layers.Add(name=f"{name}_skip2")([x, ChannelScale(name=f"{name}_gamma")(y)])


@MODELS.register("nafnet")
def build(channels: int, *, width: int = 16, enc_blocks: Sequence[int] = (1, 1, 2), middle_blocks: int = 2,
          dec_blocks: Sequence[int] = (1, 1, 1), name: str = "nafnet") -> keras.Model:
    """width: channels at full resolution (doubled per level); *_blocks: NAF blocks per level."""
    if len(dec_blocks) != len(enc_blocks):
        from deblur.core.errors import ConfigError

        raise ConfigError(f"model.dec_blocks: needs one entry per encoder level ({len(enc_blocks)}), "
                          f"got {len(dec_blocks)}")
    from deblur.core.limits import check_model_size

    # a NAF block of c channels holds about 16 c^2 weights (its 1x1 convolutions); c doubles per level
    blocks = [*enc_blocks, middle_blocks, *dec_blocks]
    levels = [*range(len(enc_blocks)), len(enc_blocks), *reversed(range(len(dec_blocks)))]
    check_model_size(sum(16 * n * (width * 2**level) ** 2 for n, level in zip(blocks, levels, strict=True)),
                     f"nafnet of width {width} with {len(enc_blocks)} levels")
    inputs = keras.Input(shape=(None, None, channels), name="blurred")
    x = layers.Conv2D(width, 3, padding="same", name="intro")(inputs)
    skips, c = [], width
    for level, n in enumerate(enc_blocks):
        for i in range(n):
            x = _block(x, c, f"enc{level}_{i}")
        skips.append(x)
        x = layers.Conv2D(c * 2, 2, strides=2, name=f"down{level}")(x)
        c *= 2
    for i in range(middle_blocks):
        x = _block(x, c, f"middle_{i}")
    for level, n in reversed(list(enumerate(dec_blocks))):
        c //= 2
        x = layers.Conv2DTranspose(c, 2, strides=2, name=f"up{level}")(x)
        x = layers.Add(name=f"skip{level}")([x, skips[level]])
        for i in range(n):
            x = _block(x, c, f"dec{level}_{i}")
    # Zero-initialised: an untrained NAFNet returns its input unchanged, and learns the correction.
    correction = layers.Conv2D(channels, 3, padding="same", kernel_initializer="zeros", name="ending")(x)
    outputs = layers.Add(name="restored")([inputs, correction])
    return keras.Model(inputs, outputs, name=name)
