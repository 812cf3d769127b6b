"""Training losses by name (`train.loss`); Keras's own where Keras has one.

`charbonnier` (a smooth L1, sqrt(d^2 + eps^2)) and `psnr` (NAFNet's: the mean over images of
10*log10(MSE), so every image counts in decibels rather than in squared error) are the two
restoration losses Keras does not ship; both are small `keras.ops` functions, registered so that a
compiled checkpoint still reloads.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
from keras import ops

from deblur.core.registry import Registry

LOSSES: Registry[Callable[[], keras.losses.Loss]] = Registry("loss")


@keras.saving.register_keras_serializable(package="deblur")
class Charbonnier(keras.losses.Loss):
    def __init__(self, epsilon: float = 1e-3, name: str = "charbonnier", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        return ops.mean(ops.sqrt(ops.square(y_pred - y_true) + self.epsilon**2), axis=(1, 2, 3))

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="deblur")
class PSNRLoss(keras.losses.Loss):
    """-PSNR per image (up to a constant): 10*log10(MSE + 1e-8), averaged over the batch."""

    def __init__(self, name: str = "psnr_loss", **kwargs) -> None:
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        mse = ops.mean(ops.square(y_pred - y_true), axis=(1, 2, 3))
        return 10.0 / math.log(10.0) * ops.log(mse + 1e-8)


LOSSES.register("mse")(lambda: keras.losses.MeanSquaredError(name="mse"))
LOSSES.register("mae")(lambda: keras.losses.MeanAbsoluteError(name="mae"))
LOSSES.register("charbonnier")(Charbonnier)
LOSSES.register("psnr")(PSNRLoss)
