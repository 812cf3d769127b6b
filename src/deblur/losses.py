"""Training losses by name (`train.loss`); Keras's own where Keras has one."""

from __future__ import annotations

from collections.abc import Callable

import keras

from deblur.registry import Registry

LOSSES: Registry[Callable[[], keras.losses.Loss]] = Registry("loss")
LOSSES.register("mse")(lambda: keras.losses.MeanSquaredError(name="mse"))
LOSSES.register("mae")(lambda: keras.losses.MeanAbsoluteError(name="mae"))
