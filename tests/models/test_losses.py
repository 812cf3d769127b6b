"""deblur.models.losses: restoration losses have their textbook values."""

import math

import numpy as np
import pytest
from keras import ops

from deblur.models.losses import LOSSES


def _loss(name, a, b):
    return float(ops.convert_to_numpy(LOSSES.get(name)()(a, b)))


def test_restoration_losses_have_their_textbook_values():
    ref = np.zeros((2, 8, 8, 3), np.float32)
    assert _loss("charbonnier", ref, ref) == pytest.approx(1e-3, rel=1e-4)  # sqrt(0 + eps^2)
    assert _loss("charbonnier", ref, ref + 0.5) == pytest.approx(math.sqrt(0.25 + 1e-6), rel=1e-5)
    assert _loss("psnr", ref, ref + 0.1) == pytest.approx(-20.0, abs=1e-3)  # MSE 0.01 -> -20 dB
    assert _loss("mae", ref, ref + 0.5) == pytest.approx(0.5)
