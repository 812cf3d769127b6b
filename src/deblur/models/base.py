"""The model registry and what every caller needs to know about a built model."""

from __future__ import annotations

from collections.abc import Callable

import keras

from deblur.core.registry import Registry

Builder = Callable[..., keras.Model]
MODELS: Registry[Builder] = Registry("model")


def required_multiple(model: keras.Model) -> int:
    """The factor that input height and width must be divisible by, read from the layers.

    The product of every pooling size and convolution stride is an upper bound that is exact for
    encoder-decoders whose downsampling steps are chained, as in every model deblur ships. It needs
    no metadata in the checkpoint, so any `.keras` file can be padded correctly.
    """
    factor = 1
    for layer in _walk(model):
        if isinstance(layer, keras.layers.MaxPooling2D | keras.layers.AveragePooling2D):
            factor *= int(layer.pool_size[0]) if layer.strides is None else int(layer.strides[0])
        elif isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.Conv2DTranspose):
            factor *= int(layer.strides[0])
    return factor


def fixed_input_size(model: keras.Model) -> tuple[int, int] | None:
    """(H, W) for models that only take one size (dense bottlenecks), else None."""
    h, w = model.input_shape[1:3]
    return (int(h), int(w)) if h is not None and w is not None else None


def _walk(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer)
        else:
            yield layer
