"""The all-convolutional autoencoder of the Fashion-MNIST article (Level Up Coding, 2020).

Stride-1 Conv2D layers (64, 32, 16), an 8-filter hidden layer, Conv2DTranspose layers (16, 32, 64),
all with kernel 2 and, as in the article, no activation between them; then a 1x1 transposed
convolution to the image channels with a sigmoid. Nothing downsamples, so it takes any size.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers

from deblur.models.base import MODELS


@MODELS.register("conv_ae")
def build(channels: int, *, filters: Sequence[int] = (64, 32, 16), latent_filters: int = 8,
          kernel_size: int = 2, activation: str | None = None, output_activation: str = "sigmoid",
          residual: bool = False) -> keras.Model:
    """residual: predict a correction added to the input instead of the image (not in the article)."""
    inputs = keras.Input(shape=(None, None, channels), name="blurred")
    x = inputs
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, kernel_size, padding="same", activation=activation, name=f"enc{i}")(x)
    x = layers.Conv2D(latent_filters, kernel_size, padding="same", activation=activation, name="latent")(x)
    for i, f in enumerate(reversed(filters)):
        x = layers.Conv2DTranspose(f, kernel_size, padding="same", activation=activation, name=f"dec{i}")(x)
    if residual:
        correction = layers.Conv2DTranspose(channels, 1, padding="same", name="correction")(x)
        outputs = layers.Add(name="restored")([inputs, correction])
    else:
        outputs = layers.Conv2DTranspose(channels, 1, padding="same", activation=output_activation,
                                         name="restored")(x)
    return keras.Model(inputs, outputs, name="conv_ae")
