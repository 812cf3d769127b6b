"""The do-no-harm gate: sharp inputs come back bit for bit, real corrections pass, thresholds from validation."""

from __future__ import annotations

import numpy as np
import pytest
from keras import ops

from deblur.imaging.metrics import psnr, quantize
from deblur.models import MODELS
from deblur.models.gate import ResidualGate, calibrate, gated, local_rms
from deblur.restore.loading import load_model


def _score(out, sharp):
    return psnr(quantize(sharp), quantize(out))


class _Replay:
    """A stand-in restorer that returns prepared outputs batch by batch."""

    def __init__(self, outputs):
        self.outputs = list(outputs)

    def predict_on_batch(self, _):
        return self.outputs.pop(0)


def test_gate_passes_large_corrections_and_drops_small_ones(rng):
    x = rng.random((3, 40, 40, 3)).astype(np.float32)
    r = np.stack([np.full((40, 40, 3), v, np.float32) for v in (0.001, 0.01, 0.005)])
    out = np.asarray(ResidualGate(0.002, 0.008)(x, x + r))
    np.testing.assert_array_equal(out[0], x[0])  # below low: the input, unchanged
    np.testing.assert_allclose(out[1], x[1] + r[1], atol=1e-6)  # above high: the whole correction
    np.testing.assert_allclose(out[2], x[2] + 0.5 * r[2], atol=1e-6)  # halfway: half of it
    np.testing.assert_allclose(np.asarray(ResidualGate(0.0, 0.0)(x, x + r)), x + r, atol=1e-7)  # no gate
    with pytest.raises(ValueError):
        ResidualGate(0.01, 0.001)


def test_gate_is_local_and_does_not_depend_on_tiling(rng):
    """A sharp half stays exact while a corrected half gets its correction, in one image or in two tiles."""
    x = rng.random((1, 64, 128, 3)).astype(np.float32)
    r = np.zeros_like(x)
    r[:, :, 80:] = 0.02  # a strong correction on the right, none on the left
    gate = ResidualGate(0.002, 0.008)
    whole = np.asarray(gate(x, x + r))
    np.testing.assert_array_equal(whole[:, :, :40], x[:, :, :40])
    np.testing.assert_allclose(whole[:, :, 100:], (x + r)[:, :, 100:], atol=1e-6)
    left = np.asarray(gate(x[:, :, :64], (x + r)[:, :, :64]))
    np.testing.assert_array_equal(left[:, :, :40], whole[:, :, :40])
    rms = np.asarray(ops.convert_to_numpy(local_rms(ops.convert_to_tensor(r))))
    assert rms.shape == (1, 64, 128, 1) and rms[0, 0, 127, 0] == pytest.approx(0.02, rel=1e-5)


def test_gated_model_saves_and_loads_in_safe_mode(tmp_path, rng):
    restorer = MODELS.get("unet")(3, depth=1, base_filters=2, residual=True)
    model = gated(restorer, 0.001, 0.004)
    path = tmp_path / "gated.keras"
    model.save(path)
    again = load_model(path)
    x = rng.random((2, 8, 8, 3)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-7)
    assert again.get_layer("gate").low == pytest.approx(0.001)
    # a later training starts from it (train.init_from): the gate has no weights of its own
    assert [w.shape for w in again.weights] == [w.shape for w in restorer.weights]


def test_calibration_spares_the_protected_sharp_items(rng):
    sharp = rng.random((8, 24, 24, 3)).astype(np.float32)
    blurred = sharp.copy()
    blurred[4:] = np.clip(sharp[4:] + 0.05 * rng.standard_normal((4, 24, 24, 3)), 0, 1).astype(np.float32)
    # the "network" adds faint noise to the 4 sharp items and restores the 4 damaged ones well
    restored = sharp + 0.003 * rng.standard_normal(sharp.shape).astype(np.float32)
    protected = np.array([True] * 4 + [False] * 4)
    best = calibrate(_Replay([restored]), [(blurred, sharp, protected)], _score)
    assert best["met"] and best["ungated_protected"] < 60 and best["protected"] >= 60 - 0.1
    assert best["score"] > best["ungated"]
    gated_out = np.asarray(ResidualGate(best["low"], best["high"])(blurred, restored))
    assert all(_score(o, s) >= 59.9 for o, s in zip(gated_out[:4], sharp[:4], strict=True))
    assert np.mean([_score(o, s) for o, s in zip(gated_out[4:], sharp[4:], strict=True)]) > \
        np.mean([_score(b, s) for b, s in zip(blurred[4:], sharp[4:], strict=True)]) + 10
