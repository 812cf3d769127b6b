"""Scoring checkpoints on a fixed split, always beside the blurred input and classical baselines.

A model's PSNR means little alone: on CIFAR-10 with sigma ~ U(0, 3) the blurred input already
scores about 28 dB (mean of per-image PSNR), and a mean over such a range is dominated by the
nearly unblurred images. Every report therefore carries the input's own scores, the gain, classical
baselines (Wiener and Richardson-Lucy with the true kernel, unsharp masking), and a breakdown by
blur strength and kind.

The work is split by job: evaljob.py builds what one pass scores, resume.py decides whether an
interrupted run's journal is continued, summary.py sums the rows up, showcase.py picks the gallery
and results.py shows and writes the reports; this module scores.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deblur.config import DataConfig, RunConfig, to_dict
from deblur.core.errors import DeblurError
from deblur.data.base import ImageSet
from deblur.data.degrade import PARAM_NAMES, describe, spec_list
from deblur.evaluation import baselines as bl
from deblur.evaluation.evaljob import (
    BatchesFrom,
    EvalJob,
    MetricOptions,
    batch_items,
    check_scorable,
    check_split,
    engines,
    kernels,
    tune_baselines,
)
from deblur.evaluation.evaljournal import Journal, Partial
from deblur.evaluation.results import Evaluation, failure_lines, format_table, json_safe, write_reports
from deblur.evaluation.resume import fingerprint, take_over
from deblur.evaluation.showcase import pick_gallery
from deblur.evaluation.summary import model_labels, summarize_run
from deblur.imaging.metrics import is_finite, psnr, score_image

if TYPE_CHECKING:
    from deblur.restore.engines import Engine

DEFAULT_BASELINES = "identity,wiener"  # synthetic blur: the true kernel is known
PAIRS_BASELINES = "identity,unsharp"  # real blur: no kernel, so only blind methods can run
PAIRS_SEED = 0

# with the names callers and tests import from here, where they were defined before the split
__all__ = ["DEFAULT_BASELINES", "PAIRS_BASELINES", "Evaluation", "MetricOptions", "check_split", "evaluate",
           "evaluate_pairs", "failure_lines", "format_table", "json_safe", "restore_items", "write_reports"]


def restore_items(engine: Engine, blurred: np.ndarray) -> np.ndarray:
    """Restore a batch; large single images go tile by tile so memory stays bounded."""
    from deblur.restore.predict import DEFAULT_TILE, across_channels, restore_batch, restore_full

    if blurred.shape[0] == 1 and blurred.shape[1] * blurred.shape[2] > DEFAULT_TILE**2:
        return across_channels(engine, blurred[0], lambda x: restore_full(engine, x))[None]
    return across_channels(engine, blurred, lambda x: restore_batch(engine, x))



@dataclass
class _Tally:
    """What scoring accumulates: small rows and counts, never images (a split may be thousands of photos)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)  # the number of each row's batch in the split
    sizes: set[tuple[int, int]] = field(default_factory=set)
    nonfinite: dict[str, int] = field(default_factory=dict)  # scored items whose restored output held NaN or inf
    aligned: int = 0
    unaligned: list[str] = field(default_factory=list)  # pairs that could not be aligned

    def add(self, record: dict[str, Any]) -> None:
        """Count one item's record, freshly scored or read back from the journal."""
        if "unaligned" in record:
            self.unaligned.append(record["unaligned"])
            return
        row = record["row"]
        self.aligned += "unaligned_psnr_input" in row
        self.sizes.add((record["size"][0], record["size"][1]))
        for label in record.get("failed", []):
            self.nonfinite[label] = self.nonfinite.get(label, 0) + 1
        self.rows.append(row)
        self.batches.append(record["batch"])


def _score_item(job: EvalJob, kernel: Callable, info: dict[str, Any], blurred: np.ndarray, sharp: np.ndarray,
                restored: dict[str, np.ndarray], batch: int) -> dict[str, Any]:
    """The journal record of one item: its row of scores, or the name of a pair that could not be aligned."""
    from deblur.imaging.align import estimate

    name = job.names[info["index"]]
    outputs = {"input": blurred, **restored}
    # tested on the raw output: alignment and quantisation must not hide a NaN or an inf
    failed = [label for label in job.models if not is_finite(outputs[label])]
    for b, setting in job.baselines.items():
        outputs[b] = bl.apply(b, blurred, kernel(info["variant"], info["params"]), setting)
    kind, description = job.label(info["variant"])
    row: dict[str, Any] = {"image": name, "tile": info["tile"], "kind": kind, "degradation": description,
                           **info["params"]}
    if job.align:
        found = estimate(blurred, sharp)
        if found is None:
            return {"batch": batch, "unaligned": name}
        row["unaligned_psnr_input"] = psnr(sharp, blurred)
        outputs = {m: found.crop(found.warp(x)) for m, x in outputs.items()}
        sharp = found.crop(sharp)
    for method, image in outputs.items():
        scores = score_image(sharp, image, job.options.y_channel, job.options.crop_border,
                             job.options.shift)
        if method in failed:  # warping may have moved the bad values out of the overlap
            scores = dict.fromkeys(scores, math.nan)
        row.update({f"{metric}_{method}": v for metric, v in scores.items()})
    if failed:
        row["failed"] = ";".join(failed)
    return {"batch": batch, "size": list(sharp.shape[:2]), "row": row, "failed": failed}


def _skipped(job: EvalJob) -> list[tuple[str, str]]:
    """(label, reason) of the images the split could not read, as the data store reports them."""
    return [(str(label), str(reason)) for label, reason in getattr(job.batches, "skipped", None) or []]


def _score(job: EvalJob,
           progress: Callable[[Iterable], Iterable] | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score the split batch by batch, holding one batch of images at a time.

    With a journal each batch's records are on disk before the next batch starts; a resumed run
    counts the journal's records first and scores from the first batch they do not cover.
    """
    kernel = kernels(job.specs, job.paired)
    tally = _Tally()
    resumed = job.resumption.resumed
    first = resumed.batches if resumed else 0
    for record in resumed.records if resumed else []:
        tally.add(record)
    # seconds and megapixels per model, of this run's batches only; the first batch (graph tracing,
    # warm-up) is kept apart and only used when it is the only one
    timing = {label: {"first": [0.0, 0.0], "rest": [0.0, 0.0]} for label in job.models}
    committed = 0  # of this run's skipped images, how many the journal holds
    resumption = job.resumption
    journal = (Journal(resumption.partial.path, resumption.fingerprint, {"baselines": job.baselines},
                       resumption.replace_reports, resumed) if resumption.partial else contextlib.nullcontext())
    remaining = BatchesFrom(job.batches, first)
    with journal:
        for n_batch, batch in enumerate(progress(remaining) if progress else remaining):
            # the batch's number in the split: batches of unreadable images only are not yielded at all
            number = getattr(job.batches, "next_batch", first + n_batch + 1) - 1
            restored = {}
            for label, engine in job.engines.items():
                start = time.perf_counter()
                restored[label] = restore_items(engine, batch["blurred"])
                slot = timing[label]["first" if n_batch == 0 else "rest"]
                slot[0] += time.perf_counter() - start
                slot[1] += float(np.prod(batch["blurred"].shape[:3])) / 1e6
            records = [_score_item(job, kernel, info, batch["blurred"][k], batch["sharp"][k],
                                   {label: restored[label][k] for label in job.models}, number)
                       for k, info in batch_items(batch)]
            del restored, batch  # the next batch's images replace these, never join them
            for record in records:
                tally.add(record)
            if isinstance(journal, Journal):
                skipped = _skipped(job)
                journal.commit(number, records, skipped[committed:])
                committed = len(skipped)
    rows = tally.rows
    if resumed is not None:
        # what the journal and this run scored must be the split, each item once (the journal's own
        # checks make this hold; a report on 12 of 128 items, or on 136, is never written)
        counted, items = len(rows) + len(tally.unaligned), getattr(job.batches, "items", None)
        if isinstance(items, int) and (counted > items or (counted < items and not _skipped(job)
                                                           and not resumed.skipped)):
            journal_name = resumption.partial.path if resumption.partial else "the journal"
            raise DeblurError(f"--resume: {journal_name} and this run scored {counted} items of the split's {items}; "
                              "pass --overwrite (without --resume) to score again")
    if not rows:
        raise DeblurError("nothing could be scored (no items, or no pair could be aligned)")
    used = [p for p in PARAM_NAMES if any(not math.isnan(r[p]) for r in rows)]
    for r in rows:
        for p in PARAM_NAMES:
            if p not in used:
                del r[p]
    unaligned_psnr = [r["unaligned_psnr_input"] for r in rows if "unaligned_psnr_input" in r]
    alignment = {"aligned": tally.aligned, "failed": tally.unaligned, "unaligned_psnr_input": unaligned_psnr}
    unread = {label: reason for label, reason in [*(resumed.skipped if resumed else []), *_skipped(job)]}  # once each
    extra = {"sizes": tally.sizes, "timing": timing, "alignment": alignment if job.align else None,
             "nonfinite": {label: tally.nonfinite[label] for label in job.models if tally.nonfinite.get(label)},
             "batches": tally.batches,
             "resumed_items": len(resumed.records) if resumed else 0, "skipped": unread}
    return rows, extra


def _run(job: EvalJob, protocol: dict[str, Any], labels: dict[str, str], notes: list[str],
         progress: Callable[[Iterable], Iterable] | None, with_gallery: bool, history: Path | None) -> Evaluation:
    rows, extra = _score(job, progress)
    summary = summarize_run(job, rows, extra, protocol, labels, notes)
    partial = job.resumption.partial
    evaluation = Evaluation(rows=rows, summary=summary, partial=partial.path if partial else None,
                            replace_reports=job.resumption.replace_reports)
    if with_gallery and next(iter(job.models)) not in summary["failed"]:  # no best/worst for a model with no score
        evaluation.gallery = pick_gallery(job, rows, extra["batches"], labels, restore_items)
    if history is not None and history.is_file():
        from deblur.evaluation.report import curves, read_history

        columns = read_history(history)
        if columns:  # an unreadable history.csv costs the report its curves, never the scores
            evaluation.curves = curves(columns)
    return evaluation


def evaluate(models: dict[str, Any] | Any, cfg: RunConfig, split: str = "test", *, baselines: str = DEFAULT_BASELINES,
             options: MetricOptions | None = None, progress: Callable[[Iterable], Iterable] | None = None,
             checkpoint: str | None = None, gallery: bool = True, history: Path | None = None,
             partial: Partial | None = None) -> Evaluation:
    """Score one model (or several, by label) and the baselines on `split` of the dataset `cfg` names.

    With `partial`, rows are journaled there as they are scored, and an interrupted run's journal
    is continued if `partial.resume` (see deblur.evaluation.evaljournal).
    """
    from deblur.data.base import load_splits
    from deblur.data.evalset import EvalSet

    check_split(split)
    models = models if isinstance(models, dict) else {"model": models}
    splits = load_splits(cfg.data, cfg.seed)
    images = splits.get(split)
    if len(images) == 0:
        raise DeblurError(f"the {split} split of {splits.description} is empty; set data.{split}_split above 0")
    specs = spec_list(cfg.data)
    names, notes = bl.parse(baselines, splits.paired)

    batches = EvalSet(images, cfg.data, cfg.seed, split, splits.paired)
    wrapped, options = engines(models), options or MetricOptions()
    tile = batches.tile
    check_scorable(tile or images.min_size, options, "a data.eval_crop tile" if tile else "the smallest image",
                   "use a larger data.eval_crop" if tile else "set data.eval_crop or data.resize")
    scored = {"data": to_dict(cfg)["data"], "seed": cfg.seed, "split": split}
    # before tuning: a resumed run reuses the settings the interrupted one tuned
    resumption = take_over(partial, fingerprint(batches, images.names, models, options, False, names, scored)
                           if partial else {}, len(batches))
    settings = resumption.baselines
    if names:
        val = EvalSet(splits.val, cfg.data, cfg.seed, "val", splits.paired) if len(splits.val) else None
        if val is None:
            notes.append("no validation images: baselines use the middle of their parameter grid")
        if resumption.resumed is None:
            settings = tune_baselines(names, val, specs, splits.paired)
    job = EvalJob(batches=batches, names=images.names, specs=specs, paired=splits.paired, models=models,
                  engines=wrapped, options=options, resumption=resumption, baselines=settings)
    protocol = {"dataset": splits.description, "source": cfg.data.source, "split": split,
                "degradation": "real blurred twins" if splits.paired else [describe(s) for s in specs],
                "seed": cfg.seed, "eval_crop": cfg.data.eval_crop, "resize": cfg.data.resize, "images": len(images),
                "checkpoint": checkpoint}
    evaluation = _run(job, protocol, model_labels(models), notes, progress, gallery, history)
    evaluation.summary["config"] = to_dict(cfg)
    return evaluation


def evaluate_pairs(models: dict[str, Any] | Any, images: ImageSet, description: str, *, align: bool = False,
                   baselines: str = PAIRS_BASELINES, options: MetricOptions | None = None,
                   progress: Callable[[Iterable], Iterable] | None = None, checkpoint: str | None = None,
                   gallery: bool = True, partial: Partial | None = None) -> Evaluation:
    """Score on a folder of real (blurred, sharp) pairs, whole images, optionally registered first;
    `partial` journals the rows as `evaluate` does."""
    from deblur.data.evalset import EvalSet

    models = models if isinstance(models, dict) else {"model": models}
    data_cfg = DataConfig(source="pairs", eval_batch_size=1)
    names, notes = bl.parse(baselines, paired=True)

    batches = EvalSet(images, data_cfg, PAIRS_SEED, "test", paired=True)
    wrapped, options = engines(models), options or MetricOptions()
    check_scorable(images.min_size, options, "the smallest pair", "score larger images")
    resumption = take_over(partial, fingerprint(batches, images.names, models, options, align, names,
                                                {"dataset": description}) if partial else {}, len(batches))
    settings = resumption.baselines
    if names:
        notes.append("blind baselines use the middle of their parameter grid: a pairs folder has no validation split")
        if resumption.resumed is None:
            settings = tune_baselines(names, None, [], True)
    job = EvalJob(batches=batches, names=images.names, specs=[], paired=True, models=models, engines=wrapped,
                  options=options, resumption=resumption, baselines=settings, align=align)
    protocol = {"dataset": description, "source": "pairs", "split": "all pairs", "degradation": "real blurred twins",
                "seed": None, "eval_crop": None, "resize": None, "images": len(images), "checkpoint": checkpoint,
                "aligned": align}
    return _run(job, protocol, model_labels(models), notes, progress, gallery, None)
