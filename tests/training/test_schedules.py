"""deblur.training.schedules: the warm-up cosine schedule."""

import pytest
from keras import ops

from deblur.training.schedules import WarmupCosine


def test_warmup_cosine_schedule():
    schedule = WarmupCosine(1e-3, total_steps=100, warmup_steps=10, floor=1e-6)
    values = [float(ops.convert_to_numpy(schedule(s))) for s in (0, 9, 10, 55, 100, 200)]
    assert values[0] == pytest.approx(1e-4) and values[1] == pytest.approx(1e-3)
    assert values[2] == pytest.approx(1e-3) and values[3] == pytest.approx((1e-3 + 1e-6) / 2, rel=1e-3)
    assert values[4] == pytest.approx(1e-6) and values[5] == pytest.approx(1e-6)
    assert WarmupCosine.from_config(schedule.get_config()).get_config() == schedule.get_config()
