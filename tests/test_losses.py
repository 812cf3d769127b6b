import math

import numpy as np
import pytest
from keras import ops

from deblur.models.losses import LOSSES
from deblur.training.schedules import WarmupCosine


def _loss(name, a, b):
    return float(ops.convert_to_numpy(LOSSES.get(name)()(a, b)))


def test_restoration_losses_have_their_textbook_values():
    ref = np.zeros((2, 8, 8, 3), np.float32)
    assert _loss("charbonnier", ref, ref) == pytest.approx(1e-3, rel=1e-4)  # sqrt(0 + eps^2)
    assert _loss("charbonnier", ref, ref + 0.5) == pytest.approx(math.sqrt(0.25 + 1e-6), rel=1e-5)
    assert _loss("psnr", ref, ref + 0.1) == pytest.approx(-20.0, abs=1e-3)  # MSE 0.01 -> -20 dB
    assert _loss("mae", ref, ref + 0.5) == pytest.approx(0.5)


def test_warmup_cosine_schedule():
    schedule = WarmupCosine(1e-3, total_steps=100, warmup_steps=10, floor=1e-6)
    values = [float(ops.convert_to_numpy(schedule(s))) for s in (0, 9, 10, 55, 100, 200)]
    assert values[0] == pytest.approx(1e-4) and values[1] == pytest.approx(1e-3)
    assert values[2] == pytest.approx(1e-3) and values[3] == pytest.approx((1e-3 + 1e-6) / 2, rel=1e-3)
    assert values[4] == pytest.approx(1e-6) and values[5] == pytest.approx(1e-6)
    assert WarmupCosine.from_config(schedule.get_config()).get_config() == schedule.get_config()
