"""One evaluation's job, built once before scoring starts: the fixed split, the models and their
engines, the baselines' tuned settings, the metric options and the journal being written or
continued; and the checks made before any model runs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from deblur.core.errors import DeblurError, arg
from deblur.data.degrade import PARAM_NAMES, describe, kernel_array, make
from deblur.evaluation import baselines as bl
from deblur.imaging.metrics import PSNR_CAP_DB

if TYPE_CHECKING:
    from deblur.data.evalset import EvalSet
    from deblur.evaluation.resume import Resumption
    from deblur.restore.engines import Engine

TUNE_ITEMS = 48  # validation items used to tune each baseline's parameter

METRIC_CARD = {
    "quantization": "clip to [0, 1], round to 8 bits before scoring",
    "psnr": f"10*log10(1/MSE) in [0, 1], per image, capped at {PSNR_CAP_DB:g} dB; "
            "psnr_of_mean_mse = 10*log10(1/mean MSE)",
    "ssim": "Wang et al. 2004, scikit-image structural_similarity(gaussian_weights=True, sigma=1.5, "
            "use_sample_covariance=False, data_range=1.0), mean over channels",
    "mse": "mean squared error on [0, 1] intensities, per image",
    "aggregation": "mean of per-image values",
}


@dataclass(frozen=True)
class MetricOptions:
    """Scoring conventions beyond the card's defaults; both are recorded in every report."""

    y_channel: bool = False
    crop_border: int = 0

    def card(self) -> dict[str, Any]:
        return {**METRIC_CARD, "color": "Y (BT.601, as rgb2ycbcr)" if self.y_channel else "RGB (or gray)",
                "crop_border": self.crop_border}



@dataclass(frozen=True)
class EvalJob:
    """Everything one scoring pass needs, whichever way the images arrived; never changed once built."""

    batches: EvalSet  # the fixed split: every pass gives the same batches
    names: list[str]
    specs: list[dict[str, Any]]
    paired: bool
    models: dict[str, Any]
    engines: dict[str, Engine]  # each Keras model wrapped once, not once per batch: restoring runs on these
    options: MetricOptions
    resumption: Resumption  # the journal rows are written to (if any), and the interrupted run it continues
    baselines: dict[str, Any]  # name -> tuned setting
    align: bool = False

    @cached_property
    def variant_labels(self) -> list[tuple[str, str]]:
        """One (kind, label) per degradation variant, computed once rather than for every scored item."""
        return [(s["kind"], describe(s)) for s in self.specs]

    def label(self, variant: int) -> tuple[str, str]:
        """(kind, description) of a variant's degradation; real pairs have no synthetic one."""
        return ("real", "real") if self.paired else self.variant_labels[variant]


def engines(models: dict[str, Any]) -> dict[str, Engine]:
    """Each model by label, wrapped once in the engine that restores with it."""
    from deblur.restore.engines import as_engine

    return {label: as_engine(m) for label, m in models.items()}


SPLITS = ("test", "val")  # never "train": scores on the images a model learnt from would flatter it


def check_split(split: str) -> str:
    """`split` if it is one deblur scores on (test or val), else a DeblurError naming the argument."""
    if split not in SPLITS:
        raise DeblurError(f"{arg('split')}: {split!r} is not allowed; choose test or val")
    return split


def check_options(options: MetricOptions) -> MetricOptions:
    """Refuse a negative crop border, before any model is loaded."""
    if options.crop_border < 0:
        raise DeblurError(f"{arg('crop_border')} {options.crop_border}: must be 0 or more")
    return options


def check_scorable(size: tuple[int, int], options: MetricOptions, what: str, fix: str) -> None:
    """Refuse, before any model runs, items too small for SSIM's window once --crop-border is taken off."""
    from deblur.imaging.metrics import SSIM_WIN

    h, w = size
    c = check_options(options).crop_border
    if min(h, w) < SSIM_WIN:
        raise DeblurError(f"{what} is {w}x{h}, smaller than {SSIM_WIN}x{SSIM_WIN}, the window of SSIM; {fix}")
    if min(h, w) - 2 * c < SSIM_WIN:
        most = (min(h, w) - SSIM_WIN) // 2
        left = f"{max(0, w - 2 * c)}x{max(0, h - 2 * c)}"
        raise DeblurError(f"{arg('crop_border')} {c}: leaves {left} pixels of {what} ({w}x{h}), less than the "
                          f"{SSIM_WIN}x{SSIM_WIN} SSIM needs; use {arg('crop_border')} {most} or less")


def kernels(specs: list[dict[str, Any]], paired: bool) -> Callable[[int, dict[str, float]], np.ndarray | None]:
    """The true kernel of an item, by variant and drawn parameters; None for real pairs."""
    degs = [make(s) for s in specs]
    cache: dict[tuple, np.ndarray] = {}

    def kernel(variant: int, params: dict[str, float]) -> np.ndarray | None:
        if paired:
            return None
        # exact values: a camera-shake path seed 1e-7 away draws another trajectory
        key = (variant, *(params[p] for p in PARAM_NAMES if not math.isnan(params[p])))
        if key not in cache:
            cache[key] = kernel_array(degs[variant], params)
        return cache[key]

    return kernel


def batch_items(batch: dict[str, np.ndarray]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(position in the batch, index, variant, tile and drawn parameters) of each item of a batch."""
    for k in range(len(batch["sharp"])):
        yield k, {"index": int(batch["index"][k]), "variant": int(batch["variant"][k]), "tile": int(batch["tile"][k]),
                  "params": {p: float(batch[p][k]) for p in PARAM_NAMES}}


def tune_baselines(names: list[str], batches: Iterable[dict[str, np.ndarray]] | None, specs: list[dict[str, Any]],
                   paired: bool) -> dict[str, Any]:
    """Pick each baseline's setting on validation items (never on the test split)."""
    kernel = kernels(specs, paired)
    found = []
    for batch in batches or []:
        for k, info in batch_items(batch):
            found.append((batch["blurred"][k], batch["sharp"][k], kernel(info["variant"], info["params"])))
        if len(found) >= TUNE_ITEMS:
            break
    return {name: bl.tune(name, found[:TUNE_ITEMS]) for name in names}


@dataclass
class BatchesFrom:
    """The split from one batch on, with its length for the progress bar."""

    evalset: EvalSet
    first: int

    def __len__(self) -> int:
        return max(0, len(self.evalset) - self.first)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self.evalset.from_batch(self.first)
