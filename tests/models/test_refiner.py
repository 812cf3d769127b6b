"""The refiner model (deblur.models.refiner): registered, the exact identity before training."""

from __future__ import annotations

import numpy as np

from deblur.models import MODELS, required_multiple


def test_an_untrained_refiner_returns_the_deconvolved_photo_exactly() -> None:
    model = MODELS.get("refiner")(channels=3, width=8)
    x = np.random.default_rng(0).random((2, 32, 48, 3), dtype=np.float32)
    assert model.name == "refiner"
    assert np.array_equal(np.asarray(model(x)), x)
    assert required_multiple(model) == 8  # three levels of 2x downsampling: predict pads to it


def test_the_refiner_learns_a_correction_from_its_zero_start() -> None:
    import keras

    model = MODELS.get("refiner")(channels=1, width=8, enc_blocks=(1,), middle_blocks=1, dec_blocks=(1,))
    rng = np.random.default_rng(1)
    x = rng.random((8, 16, 16, 1), dtype=np.float32)
    target = 0.7 * x + 0.2  # a correction the network can express (a contrast change)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    before = float(model.evaluate(x, target, verbose=0))
    model.fit(x, target, epochs=30, verbose=0)
    assert float(model.evaluate(x, target, verbose=0)) < 0.2 * before
