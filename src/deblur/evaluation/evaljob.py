"""One evaluation's job, built once before scoring starts: the fixed split, the models and their
engines, the baselines' tuned settings, the metric options and the journal being written or
continued; and the checks made before any model runs."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
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


# The largest --shift: the built-in restorer searches kernels of up to restore.estimate.MAX_KERNEL (35) px,
# which can move its result by at most half that; and the search costs (2 * shift + 1)^2 passes per image.
MAX_SHIFT = 17


@dataclass(frozen=True)
class MetricOptions:
    """Scoring conventions beyond the card's defaults, recorded in every report.

    `shift` > 0 scores every method and the blurred input alike at its best integer translation of up
    to `shift` px per axis (least MSE, then PSNR, SSIM and MSE there), as Levin et al. 2009
    ("Understanding and evaluating blind deconvolution algorithms", CVPR 2009) score blind deblurring:
    a blind kernel is known only up to a translation. The scored area is then the interior with
    max(crop_border, shift) px off each side (`border`), so every shifted window lies inside the image.
    """

    y_channel: bool = False
    crop_border: int = 0
    shift: int = 0

    @property
    def border(self) -> int:
        """The pixels left out at each side of what is scored: the crop border, at least the shift."""
        return max(self.crop_border, self.shift)

    def card(self) -> dict[str, Any]:
        card = {**METRIC_CARD, "color": "Y (BT.601, as rgb2ycbcr)" if self.y_channel else "RGB (or gray)",
                "crop_border": self.crop_border}
        if self.shift:  # only when used: the reports of unshifted scoring stay as they were
            card["shift"] = (f"best integer shift up to {self.shift} px per axis (least MSE), for every method and "
                             f"the input alike (Levin et al. 2009); scored on the interior, {self.border} px in from "
                             "each border")
        return card

    def fingerprint(self) -> dict[str, Any]:
        """What the journaled scores depend on; `shift` only when used, so an unshifted run's journal
        written before it existed is still continued."""
        options = asdict(self)
        if not self.shift:
            options.pop("shift")
        return options


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
    """Refuse a negative crop border, and a shift that is not a whole number from 0 to MAX_SHIFT, before
    any model is loaded."""
    if options.crop_border < 0:
        raise DeblurError(f"{arg('crop_border')} {options.crop_border}: must be 0 or more")
    shift = options.shift
    if isinstance(shift, bool) or not isinstance(shift, int | np.integer):
        raise DeblurError(f"{arg('shift')} {shift!r}: must be a whole number of pixels, from 0 to {MAX_SHIFT}")
    if not 0 <= shift <= MAX_SHIFT:
        raise DeblurError(f"{arg('shift')} {shift}: must be from 0 to {MAX_SHIFT} pixels")
    return options


def check_scorable(size: tuple[int, int], options: MetricOptions, what: str, fix: str) -> None:
    """Refuse, before any model runs, items too small for SSIM's window once --crop-border (or the
    interior --shift scores on) is taken off."""
    from deblur.imaging.metrics import SSIM_WIN

    h, w = size
    options = check_options(options)
    c = options.border
    # the option that sets the border is the one to change
    name = "crop_border" if options.crop_border >= options.shift else "shift"
    if min(h, w) < SSIM_WIN:
        raise DeblurError(f"{what} is {w}x{h}, smaller than {SSIM_WIN}x{SSIM_WIN}, the window of SSIM; {fix}")
    if min(h, w) - 2 * c < SSIM_WIN:
        most = (min(h, w) - SSIM_WIN) // 2
        left = f"{max(0, w - 2 * c)}x{max(0, h - 2 * c)}"
        raise DeblurError(f"{arg(name)} {c}: leaves {left} pixels of {what} ({w}x{h}), less than the "
                          f"{SSIM_WIN}x{SSIM_WIN} SSIM needs; use {arg(name)} {most} or less")


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
