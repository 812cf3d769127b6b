"""The gallery of an evaluation: its best, median and worst items, restored again for the picture (and run
again through the blind restorer when it is a baseline, for its output and the kernel it estimated)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from deblur.evaluation import baselines as bl
from deblur.evaluation.evaljob import BatchesFrom, batch_items, kernels
from deblur.imaging.metrics import psnr

if TYPE_CHECKING:
    from deblur.evaluation.evaljob import EvalJob
    from deblur.evaluation.report import BlindShown
    from deblur.restore.engines import Engine


def pick_gallery(job: EvalJob, rows: list[dict[str, Any]], batches: list[int], labels: dict[str, str],
                 restore: Callable[[Engine, np.ndarray], np.ndarray]) -> np.ndarray | None:
    """Best, median and worst items by the first model's PSNR gain, fetched again from the fixed split.

    Ranked by gain over the blurred input rather than by PSNR, which would only pick the easiest and
    the hardest images, not where the model helps most and least. Only the (at most three) batches
    holding them are made again, not the split up to the last one. `restore` is the scorer's own
    restoring function (deblur.evaluation.evaluate.restore_items).
    """
    from deblur.evaluation.report import gallery

    model_label = next(iter(job.models))
    order = sorted(range(len(rows)), key=lambda i: rows[i][f"psnr_{model_label}"] - rows[i]["psnr_input"])
    picks = {"worst": order[0], "median": order[len(order) // 2], "best": order[-1]}
    wanted = {(rows[i]["image"], rows[i]["tile"], rows[i]["degradation"]): title for title, i in picks.items()}
    # the first blind-restorer baseline asked for (in --baselines order): its kernel is worth a picture
    blind_name = next((b for b in job.baselines if b in bl.BLIND_RESTORERS), None)
    kernel = kernels(job.specs, job.paired)
    found: dict[str, tuple] = {}
    for first in sorted({batches[i] for i in picks.values()}):
        batch = next(iter(BatchesFrom(job.batches, first)))
        for k, info in batch_items(batch):
            key = (job.names[info["index"]], info["tile"], job.label(info["variant"])[1])
            if key in wanted:
                blurred, sharp = batch["blurred"][k], batch["sharp"][k]
                restored = restore(job.engines[model_label], blurred[None])[0]
                shown = None if blind_name is None else _blind_shown(job, blind_name, blurred, sharp,
                                                                     kernel(info["variant"], info["params"]))
                found[wanted[key]] = (*_aligned(job, blurred, restored, sharp), key, shown)
    lines, blind = [], []
    for title in ("best", "median", "worst"):
        if title in found:
            blurred, restored, sharp, key, shown = found[title]
            lines.append((f"{title} gain by {labels[model_label]}: {key[0]} (tile {key[1]})", blurred, restored, sharp,
                          psnr(sharp, blurred), psnr(sharp, restored)))
            blind.append(shown)
    if not lines:
        return None
    # without a blind-restorer baseline the call is the one it always was: such galleries stay byte-identical
    return gallery(lines) if blind_name is None else gallery(lines, [s for s in blind if s is not None])


def _aligned(job: EvalJob, blurred: np.ndarray, restored: np.ndarray,
             sharp: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blurred, restored, sharp) registered on the sharp image when the job aligns pairs, as scored."""
    from deblur.imaging.align import estimate

    if job.align and (a := estimate(blurred, sharp)) is not None:
        return a.crop(a.warp(blurred)), a.crop(a.warp(restored)), a.crop(sharp)
    return blurred, restored, sharp


def _blind_shown(job: EvalJob, name: str, blurred: np.ndarray, sharp: np.ndarray,
                 true: np.ndarray | None) -> BlindShown:
    """The blind restorer run again on one gallery item with its tuned setting, for its output and kernel.

    Run here, for at most three items, rather than kept from scoring: scoring holds no images (nor
    Outcomes) past its batch, and the baseline's output is recomputed the same way it was scored.
    """
    from deblur.evaluation.report import BlindShown

    out, outcome = bl.blind_outcome(name, blurred, job.baselines[name])
    out = np.clip(out, 0.0, 1.0)  # as baselines.apply hands it to scoring
    _, out, aligned_sharp = _aligned(job, blurred, out, sharp)
    estimated = outcome.estimate.kernel if outcome.changed and outcome.estimate is not None else None
    return BlindShown(name, out, psnr(aligned_sharp, out), outcome.changed, estimated, true)
