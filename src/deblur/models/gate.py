"""A do-no-harm gate: a restorer's correction is applied only where it is large enough to be one.

A blind deblurring network cannot be certain that a photo is blurred. Trained on the mean squared
error it hedges, and on a sharp or barely blurred photo it still adds a faint correction of its own:
sharpening halos, texture, a little noise. On a sharp photo that is pure loss (the previous built-in
model took a sharp photo from 60 dB to 37 dB), and no amount of training drives it exactly to zero.

`ResidualGate` wraps a trained restorer f: with x the input and r = f(x) - x the correction, the
output is x + g * r, where g in [0, 1] grows linearly with the local root-mean-square of r (over a
WINDOW x WINDOW neighbourhood, all channels) from 0 at `low` to 1 at `high`. A sharp region draws a
correction at the network's noise level and comes back unchanged, bit for bit; a blurred one draws
a large correction and gets all of it. Because g is local and smooth, it does not depend on how an
image is cut into tiles, and a photo with a sharp subject and a blurred background gets each
treated as it is. The two thresholds are calibrated on the validation split (`calibrate`), never on
the test split.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import keras
import numpy as np
from keras import ops

WINDOW = 33  # pixels: about a blur kernel's reach, so g follows the blur, not single edges


def local_rms(r: Any) -> Any:
    """Root-mean-square of a BxHxWxC correction over WINDOW x WINDOW neighbourhoods (BxHxWx1).

    A separable box filter (two 1-D average pools, borders averaged over the pixels inside the
    image): a few operations per pixel, against thousands for the network it gates.
    """
    energy = ops.mean(ops.square(r), axis=-1, keepdims=True)
    energy = ops.average_pool(energy, (WINDOW, 1), strides=1, padding="same")
    energy = ops.average_pool(energy, (1, WINDOW), strides=1, padding="same")
    return ops.sqrt(ops.maximum(energy, 0.0))


def gate_weight(rms: Any, low: float, high: float, xp: Any = ops) -> Any:
    """g in [0, 1]: 0 up to `low`, 1 from `high`, linear between (a step when they are equal).

    `xp` is `keras.ops` in the layer, NumPy where calibration evaluates ~100 threshold pairs.
    """
    if high <= low:
        return xp.where(rms >= high, 1.0, 0.0)
    return xp.clip((rms - low) / (high - low), 0.0, 1.0)


@keras.saving.register_keras_serializable(package="deblur")
class ResidualGate(keras.layers.Layer):
    """(input, restored) -> input + g * (restored - input), g from the correction's local RMS."""

    def __init__(self, low: float = 0.0, high: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not (0.0 <= low <= high and math.isfinite(high)):
            raise ValueError(f"ResidualGate needs 0 <= low <= high, got low={low}, high={high}")
        self.low, self.high = float(low), float(high)

    def call(self, x: Any, restored: Any) -> Any:
        r = restored - x
        if self.high == 0.0:  # no gate
            return restored
        return x + ops.cast(gate_weight(local_rms(r), self.low, self.high), r.dtype) * r

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "low": self.low, "high": self.high}


def gated(restorer: keras.Model, low: float, high: float) -> keras.Model:
    """The restorer behind a `ResidualGate`; the weights are shared, the architecture is unchanged."""
    x = keras.Input(restorer.input_shape[1:], name="blurred")
    out = ResidualGate(low, high, name="gate")(x, restorer(x))
    return keras.Model(x, out, name=restorer.name)


GRID = (0.0, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.007, 0.01, 0.014, 0.02, 0.03, 0.05)


def calibrate(restorer: Any, batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]],
              score: Callable[[np.ndarray, np.ndarray], float], tolerance: float = 0.1,
              grid: Iterable[float] = GRID) -> dict[str, Any]:
    """Thresholds (low, high) for the gate, chosen on validation items.

    `batches` are (blurred, sharp, protected) validation batches, `protected` marking the items that
    must come back unharmed (the unblurred ones). Among the threshold pairs whose protected items lose
    at most `tolerance` dB of mean score against their input, the pair with the best mean score over
    all items wins; if none qualifies, the pair that harms the protected items least. `score(output,
    sharp)` scores one image (deblur's PSNR). Outputs are computed once; items may differ in size.
    """
    items = []
    for blurred, sharp, protected in batches:
        restored = np.asarray(restorer.predict_on_batch(blurred), np.float32)
        r = restored - blurred
        rms = np.asarray(ops.convert_to_numpy(local_rms(ops.convert_to_tensor(r))))
        items += [(blurred[k], sharp[k], r[k], rms[k], bool(protected[k])) for k in range(len(blurred))]
    if not items:
        raise ValueError("calibrate: no validation items")
    base = [score(x, y) for x, y, _, _, _ in items]
    guarded = [i for i, it in enumerate(items) if it[4]]
    floor = float(np.mean([base[i] for i in guarded])) - tolerance if guarded else -math.inf
    grid = sorted(set(grid))
    pairs = [(low, high) for i, low in enumerate(grid) for high in grid[i:] if high > 0] + [(0.0, 0.0)]
    results = []
    for low, high in pairs:
        scores = []
        for x, y, r, rms, _ in items:
            g = gate_weight(rms, low, high, np)  # (0, 0): 1 everywhere, the ungated output
            scores.append(score((x + g * r).astype(np.float32), y))
        kept = float(np.mean([scores[i] for i in guarded])) if guarded else math.inf
        results.append({"low": low, "high": high, "score": float(np.mean(scores)), "protected": kept})
    ungated = next(r for r in results if r["high"] == 0.0)
    allowed = [r for r in results if r["protected"] >= floor]
    best = max(allowed, key=lambda r: r["score"]) if allowed else max(results, key=lambda r: r["protected"])
    return {**best, "ungated": ungated["score"], "ungated_protected": ungated["protected"],
            "input": float(np.mean(base)), "input_protected": floor + tolerance, "met": bool(allowed)}
