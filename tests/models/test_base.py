from pathlib import Path

import keras
import numpy as np
import pytest

from deblur.models import MODELS, fixed_input_size, required_multiple
from deblur.restore.engines import as_engine
from deblur.restore.loading import load_model
from deblur.restore.predict import restore_batch

TINY = {
    "nafnet": {"width": 4, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1]},
    "refiner": {"width": 4, "enc_blocks": [1, 1], "middle_blocks": 1, "dec_blocks": [1, 1]},
    "unet": {"depth": 2, "base_filters": 4},
    "conv_ae": {"filters": [8, 4], "latent_filters": 2},
    "dense_ae": {"input_size": [16, 16], "filters": [4, 8], "latent_dim": 8},
}


def test_every_registered_model_has_a_tiny_setting():
    assert set(MODELS.names()) == set(TINY)


@pytest.mark.parametrize("name", sorted(TINY))
@pytest.mark.parametrize("channels", [1, 3])
def test_model_trains_and_round_trips(name, channels, tmp_path: Path, rng):
    keras.utils.set_random_seed(0)
    model = MODELS.get(name)(channels=channels, **TINY[name])
    sharp = rng.random((8, 16, 16, channels)).astype(np.float32)
    blurred = (sharp + np.roll(sharp, 1, axis=1) + np.roll(sharp, 1, axis=2)) / 3
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="mse")
    losses = model.fit(blurred, sharp, epochs=12, batch_size=8, verbose=0).history["loss"]
    assert losses[-1] < losses[0]
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = load_model(path)  # safe mode, no custom_objects
    np.testing.assert_allclose(loaded.predict(blurred, verbose=0), model.predict(blurred, verbose=0), atol=1e-6)


def test_report_faithful_parameter_counts():
    gnr = MODELS.get("dense_ae")(3, input_size=[256, 448], filters=[8, 16, 32], latent_dim=128)
    assert gnr.count_params() == 14_758_819  # as printed in the GNR638 report
    assert fixed_input_size(gnr) == (256, 448)


def test_padding_multiple_and_any_size_prediction(rng):
    unet = MODELS.get("unet")(3, depth=3, base_filters=4, residual=True)
    assert required_multiple(unet) == 8 and fixed_input_size(unet) is None
    odd = rng.random((1, 37, 29, 3)).astype(np.float32)
    out = restore_batch(as_engine(unet), odd)
    assert out.shape == odd.shape
    assert required_multiple(MODELS.get("conv_ae")(1)) == 1


def test_residual_unet_starts_near_identity(rng):
    keras.utils.set_random_seed(0)
    unet = MODELS.get("unet")(3, depth=2, base_filters=4, residual=True)
    x = rng.random((1, 16, 16, 3)).astype(np.float32)
    assert np.abs(restore_batch(as_engine(unet), x) - x).mean() < 0.2


def test_identity_init_unet_is_exactly_the_identity_until_trained(rng):
    unet = MODELS.get("unet")(3, depth=2, base_filters=4, residual=True, identity_init=True)
    x = rng.random((2, 16, 16, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(unet.predict_on_batch(x)), x)


def test_models_too_large_for_memory_are_refused_before_any_weight_is_made():
    from deblur.core.errors import ConfigError

    with pytest.raises(ConfigError, match="parameters, more than this machine"):
        MODELS.get("unet")(3, depth=40, base_filters=2)
    with pytest.raises(ConfigError, match="parameters, more than this machine"):
        MODELS.get("nafnet")(3, width=16, enc_blocks=[1] * 20, dec_blocks=[1] * 20)
    assert MODELS.get("nafnet")(3, width=24).count_params() == 972_243  # the built-in model's size passes
