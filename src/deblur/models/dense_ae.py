"""The dense-bottleneck convolutional autoencoder of the GNR638 and Kaggle (SSN) reports.

Encoder: 3x3 stride-2 convolutions (ReLU) with growing filters, Flatten, Dense latent vector.
Decoder: Dense, Reshape, 3x3 stride-2 transposed convolutions with the filters reversed, and a
3x3 transposed convolution to the image channels with a sigmoid. With filters (8, 16, 32), latent
128 and 256x448x3 inputs this has exactly the 14,758,819 parameters the GNR638 report prints.

The SSN report's printed code cannot run as written (stride-1 layers, then a 32x32 reshape for a
128x128 output); its text says the encoder downsamples and the decoder mirrors it, which is what
this builder does with filters (64, 128, 256) and latent 256.
The latent bottleneck can hold little of a photograph, which is why such models often score below
the blurred input itself: deblur reports that beside their numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from deblur.core.errors import ConfigError
from deblur.models.base import MODELS


@MODELS.register("dense_ae")
def build(channels: int, *, input_size: Sequence[int] = (128, 128), filters: Sequence[int] = (64, 128, 256),
          latent_dim: int = 256, kernel_size: int = 3, activation: str = "relu",
          output_activation: str = "sigmoid") -> keras.Model:
    """input_size: [height, width] the model is fixed to; both must be divisible by 2**len(filters)."""
    h, w = (int(s) for s in input_size)
    scale = 2 ** len(filters)
    if h % scale or w % scale:
        raise ConfigError(f"model.input_size: {h}x{w} must be divisible by {scale} (2 ** len(filters))")
    inputs = keras.Input(shape=(h, w, channels), name="blurred")
    x = inputs
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, kernel_size, strides=2, padding="same", activation=activation, name=f"enc{i}")(x)
    latent = layers.Dense(latent_dim, name="latent")(layers.Flatten()(x))
    hh, ww = h // scale, w // scale
    x = layers.Dense(hh * ww * filters[-1], name="expand")(latent)
    x = layers.Reshape((hh, ww, filters[-1]))(x)
    for i, f in enumerate(reversed(filters)):
        x = layers.Conv2DTranspose(f, kernel_size, strides=2, padding="same", activation=activation,
                                   name=f"dec{i}")(x)
    outputs = layers.Conv2DTranspose(channels, kernel_size, padding="same", activation=output_activation,
                                     name="restored")(x)
    return keras.Model(inputs, outputs, name="dense_ae")
