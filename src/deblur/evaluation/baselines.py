"""Classical baselines that every learned model is shown beside.

`wiener` and `richardson_lucy` are non-blind: they are given the TRUE kernel of each image, an oracle
a blind network has no right to beat easily. `unsharp` is blind sharpening. All use scikit-image,
run in float64, one channel at a time, and have their output checked before it is trusted (its
unsharp_mask returned ~1e35 on float32 input, and garbage with channel_axis=-1). Deconvolution runs on the image
padded by reflection: FFT deconvolution assumes the image wraps around, and unpadded the Wiener
oracle fell from 26.0 dB to 12.9 dB here (PSNR of the mean MSE, 100 shared CIFAR-10 images,
sigma ~ U(0, 3)). Each method's one parameter is tuned on validation images only.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from skimage import filters, restoration

from deblur.core.errors import DeblurError
from deblur.core.registry import Registry
from deblur.imaging.metrics import psnr, quantize

if TYPE_CHECKING:
    from deblur.restore.blind import Outcome


@dataclass(frozen=True)
class Baseline:
    """A restoration method with a small grid of settings to pick from on validation images."""

    run: Callable[[np.ndarray, np.ndarray | None, Any], np.ndarray]
    grid: Sequence[Any]
    needs_kernel: bool
    summary: str


BASELINES: Registry[Baseline] = Registry("baseline")


def _per_channel(image: np.ndarray, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    return np.stack([fn(image[:, :, c]) for c in range(image.shape[2])], axis=2)


def _padded(image: np.ndarray, kernel: np.ndarray | None, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply `fn` to the image reflected outwards by one kernel size, then crop back."""
    if kernel is None:  # the baselines that pad are those that need the true kernel (Baseline.needs_kernel)
        raise DeblurError("this baseline needs the true blur kernel")
    pad = kernel.shape[0]
    h, w = image.shape[:2]
    mode: Literal["reflect", "symmetric"] = "reflect" if pad < min(h, w) else "symmetric"
    big = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode=mode)
    return fn(big)[pad:pad + h, pad:pad + w]


def _wiener(image: np.ndarray, kernel: np.ndarray | None, balance: float) -> np.ndarray:
    return _padded(image, kernel, lambda big: _per_channel(
        big, lambda ch: restoration.wiener(ch, kernel, balance, clip=False)))


def _richardson_lucy(image: np.ndarray, kernel: np.ndarray | None, iterations: int) -> np.ndarray:
    return _padded(image, kernel, lambda big: _per_channel(
        big, lambda ch: restoration.richardson_lucy(ch, kernel, num_iter=iterations, clip=False)))


def _unsharp(image: np.ndarray, kernel: np.ndarray | None, setting: tuple[float, float]) -> np.ndarray:
    # One 2-D plane at a time: scikit-image 0.26's unsharp_mask with channel_axis=-1 slices axis 0
    # (its slice_at_axis does not normalise negative axes) and returns uninitialised memory (NaN,
    # ~1e277) for the rest of the image; seen here on float64 input.
    radius, amount = setting
    return _per_channel(image, lambda ch: filters.unsharp_mask(ch, radius=radius, amount=amount))


BASELINES.register("identity")(Baseline(lambda image, kernel, setting: image, (None,), False,
                                        "the blurred input itself (always reported)"))
BASELINES.register("wiener")(Baseline(_wiener, (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1), True,
                                      "Wiener deconvolution with the true kernel (scikit-image), balance tuned"))
BASELINES.register("richardson_lucy")(Baseline(_richardson_lucy, (5, 10, 20, 40), True,
                                               "Richardson-Lucy with the true kernel (scikit-image), iterations tuned"))
def _blind(image: np.ndarray, kernel: np.ndarray | None, weight: float) -> np.ndarray:
    """The built-in restorer (`deblur.restore.blind`): blind, the true kernel is not used."""
    return blind_outcome("blind", image, weight)[0]


BASELINES.register("blind")(Baseline(_blind, (500.0, 1000.0, 2000.0), False,
                                     "the built-in blind restorer without its refiner (kernel estimation, "
                                     "deconvolution, triage), deconvolution weight tuned"))


@functools.cache
def _shipped_refiner() -> Any:
    """The shipped refiner as deblur.restore.blind's callable, loaded once (None if not shipped)."""
    from deblur.pretrained import refiner_checkpoint
    from deblur.restore.engines import KERAS, load_engine
    from deblur.restore.refine import network_refiner

    path = refiner_checkpoint()
    return None if path is None else network_refiner(load_engine(path, KERAS))


def _builtin(image: np.ndarray, kernel: np.ndarray | None, weight: float) -> np.ndarray:
    """The built-in restorer as `deblur predict` runs it: `blind`, then the shipped refiner."""
    return blind_outcome("builtin", image, weight)[0]


BLIND_RESTORERS = ("blind", "builtin")  # the baselines that run deblur.restore.blind and so estimate a kernel


def blind_outcome(name: str, image: np.ndarray, weight: float) -> tuple[np.ndarray, Outcome]:
    """The output of the `blind` or `builtin` baseline (float64, unchecked) and what the restorer did.

    The one place both baselines run the restorer, so the gallery's second run of it (for its
    estimated kernel) is the very computation that was scored.
    """
    from deblur.restore.blind import BlindRestorer, BlindSettings

    if name not in BLIND_RESTORERS:
        raise DeblurError(f"{name} is not one of the blind restorer's baselines ({', '.join(BLIND_RESTORERS)})")
    refiner = _shipped_refiner() if name == "builtin" else None
    out, outcome = BlindRestorer(BlindSettings(weight=weight), refiner=refiner)(image.astype(np.float32))
    return np.asarray(out, np.float64), outcome


BASELINES.register("builtin")(Baseline(_builtin, (500.0, 1000.0, 2000.0), False,
                                       "the built-in restorer as `deblur predict` runs it: blind, then the "
                                       "shipped refiner network; deconvolution weight tuned"))
BASELINES.register("unsharp")(Baseline(_unsharp, ((1.0, 0.5), (1.0, 1.0), (2.0, 0.5), (2.0, 1.0), (3.0, 1.0)), False,
                                       "unsharp masking (scikit-image), blind; radius and amount tuned"))


def apply(name: str, image: np.ndarray, kernel: np.ndarray | None, setting: Any) -> np.ndarray:
    """Run a baseline and check its output before it is trusted (finite, sane range), then clip."""
    out = BASELINES.get(name, "--baselines").run(np.asarray(image, np.float64), kernel, setting)
    if out.shape != image.shape or not np.all(np.isfinite(out)) or np.abs(out).max() > 1e3:
        raise DeblurError(f"baseline {name} returned unusable values (shape {out.shape}, max |x| "
                          f"{np.nanmax(np.abs(out)):.3g}); refusing to report it")
    return np.clip(out, 0.0, 1.0)


def tune(name: str, items: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]]) -> Any:
    """The grid setting with the best mean PSNR on (blurred, sharp, kernel) validation items."""
    grid = BASELINES.get(name, "--baselines").grid
    if not items:
        return grid[len(grid) // 2]
    scores = [np.mean([psnr(quantize(s), quantize(apply(name, b, k, g))) for b, s, k in items]) for g in grid]
    return grid[int(np.argmax(scores))]


def parse(names: str, paired: bool) -> tuple[list[str], list[str]]:
    """Split a comma list into baselines to run and notes about ones that cannot run here."""
    chosen, notes = [], []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name == "identity":
            continue  # the blurred input is always reported
        baseline = BASELINES.get(name, "--baselines")
        if baseline.needs_kernel and paired:
            notes.append(f"{name} skipped: it needs the true blur kernel, which real blurred photos do not have")
            continue
        chosen.append(name)
    return chosen, notes
