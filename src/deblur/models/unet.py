"""U-Net (Ronneberger et al. 2015) as the CIFAR-10 report (Nankai, 2021) used it for deblurring.

Contracting path: two 3x3 convolutions with ReLU per level, then 2x2 max-pooling; filters double
per level. Expansive path: 2x2 stride-2 transposed convolution, concatenation with the skip, two
3x3 convolutions. The report trained it with MAE, Adam 1e-3, ReduceLROnPlateau(0.2, 4) and early
stopping (configs/cifar10_unet.yaml). Inputs must be divisible by 2**depth; `deblur predict` pads.

`residual: true` predicts a correction added to the input (output = input + f(input)), so an
untrained model starts near the identity instead of at grey: it learns far faster. With
`identity_init: true` the correction layer starts at zero as well, so the untrained model is exactly
the identity and training moves it away from "leave the photo alone" only where that lowers the
loss (NAFNet's zero-initialised skip scales do the same).
"""

from __future__ import annotations

import keras
from keras import layers

from deblur.models.base import MODELS


def _block(x: keras.KerasTensor, filters: int, convs: int, name: str) -> keras.KerasTensor:
    for j in range(convs):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_conv{j}")(x)
    return x


@MODELS.register("unet")
def build(channels: int, *, depth: int = 4, base_filters: int = 32, convs_per_level: int = 2,
          output_activation: str = "sigmoid", residual: bool = False, identity_init: bool = False) -> keras.Model:
    from deblur.core.limits import check_model_size

    if identity_init and not residual:
        raise ValueError("identity_init needs residual: true (it zeroes the correction added to the input)")
    # each level's convolutions hold about 9 x filters^2 weights per conv, down and up; filters double per level
    check_model_size(sum(2 * convs_per_level * 9 * (base_filters * 2**level) ** 2 for level in range(depth + 1)),
                     f"unet of depth {depth} from {base_filters} filters")
    inputs = keras.Input(shape=(None, None, channels), name="blurred")
    x, skips = inputs, []
    for level in range(depth):
        x = _block(x, base_filters * 2**level, convs_per_level, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = _block(x, base_filters * 2**depth, convs_per_level, "bottom")
    for level in reversed(range(depth)):
        f = base_filters * 2**level
        x = layers.Conv2DTranspose(f, 2, strides=2, padding="same", name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _block(x, f, convs_per_level, f"up{level}")
    if residual:
        init = "zeros" if identity_init else "glorot_uniform"  # Keras's default, kept for older configs
        correction = layers.Conv2D(channels, 1, padding="same", kernel_initializer=init, name="correction")(x)
        outputs = layers.Add(name="restored")([inputs, correction])
    else:
        outputs = layers.Conv2D(channels, 1, padding="same", activation=output_activation, name="restored")(x)
    return keras.Model(inputs, outputs, name="unet")
