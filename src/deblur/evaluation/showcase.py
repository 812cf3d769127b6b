"""The gallery of an evaluation: its best, median and worst items, restored again for the picture."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from deblur.evaluation.evaljob import BatchesFrom, batch_items
from deblur.imaging.metrics import psnr

if TYPE_CHECKING:
    from deblur.evaluation.evaljob import EvalJob
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
    from deblur.imaging.align import estimate

    model_label = next(iter(job.models))
    order = sorted(range(len(rows)), key=lambda i: rows[i][f"psnr_{model_label}"] - rows[i]["psnr_input"])
    picks = {"worst": order[0], "median": order[len(order) // 2], "best": order[-1]}
    wanted = {(rows[i]["image"], rows[i]["tile"], rows[i]["degradation"]): title for title, i in picks.items()}
    found: dict[str, tuple] = {}
    for first in sorted({batches[i] for i in picks.values()}):
        batch = next(iter(BatchesFrom(job.batches, first)))
        for k, info in batch_items(batch):
            key = (job.names[info["index"]], info["tile"], job.label(info["variant"])[1])
            if key in wanted:
                blurred, sharp = batch["blurred"][k], batch["sharp"][k]
                restored = restore(job.engines[model_label], blurred[None])[0]
                if job.align and (a := estimate(blurred, sharp)) is not None:
                    blurred, restored, sharp = (a.crop(a.warp(blurred)), a.crop(a.warp(restored)), a.crop(sharp))
                found[wanted[key]] = (blurred, restored, sharp, key)
    lines = []
    for title in ("best", "median", "worst"):
        if title in found:
            blurred, restored, sharp, key = found[title]
            lines.append((f"{title} gain by {labels[model_label]}: {key[0]} (tile {key[1]})", blurred, restored, sharp,
                          psnr(sharp, blurred), psnr(sharp, restored)))
    return gallery(lines) if lines else None
