"""The registered models as `deblur models` lists them: parameters and speed measured on this machine."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelInfo:
    name: str
    parameters: int
    ms_per_megapixel: float  # median of 3 calls after a warm-up, on 256x256 or the model's fixed size
    summary: str  # the first line of its module's docstring


def describe_models(channels: int = 3) -> list[ModelInfo]:
    """Build each registered model with its default settings and time it on this machine's CPU/GPU."""
    import numpy as np

    from deblur.models import MODELS, fixed_input_size

    out = []
    for name in MODELS:
        builder = MODELS.get(name)
        model = builder(channels=channels)
        size = fixed_input_size(model) or (256, 256)
        x = np.random.default_rng(0).random((1, *size, channels)).astype("float32")
        model(x, training=False)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            model(x, training=False)
            times.append(time.perf_counter() - start)
        ms_per_mp = 1000 * sorted(times)[1] / (size[0] * size[1] / 1e6)
        doc = (sys.modules[builder.__module__].__doc__ or "").strip().splitlines()[0]
        out.append(ModelInfo(name, int(model.count_params()), ms_per_mp, doc))
    return out
