"""Scoring checkpoints on a fixed split, always beside the blurred input and classical baselines.

A model's PSNR means little alone: on CIFAR-10 with sigma ~ U(0, 3) the blurred input already
scores about 28 dB (mean of per-image PSNR), and a mean over such a range is dominated by the
nearly unblurred images. Every report therefore carries the input's own scores, the gain, classical
baselines (Wiener and Richardson-Lucy with the true kernel, unsharp masking), and a breakdown by
blur strength and kind.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deblur import __version__
from deblur.config import DataConfig, RunConfig, to_dict
from deblur.core import owned
from deblur.core.errors import DeblurError, arg
from deblur.core.owned import check_replaceable
from deblur.data.base import ImageSet
from deblur.data.degrade import PARAM_NAMES, describe, kernel_array, make, spec_list
from deblur.evaluation import baselines as bl
from deblur.evaluation.evaljournal import Journal, Partial, Resumed, check, normalized
from deblur.imaging.imageio import atomic_write_bytes, atomic_write_text, encode_png
from deblur.imaging.metrics import PSNR_CAP_DB, is_finite, psnr, score_image, summarize

if TYPE_CHECKING:
    from deblur.data.evalset import EvalSet
    from deblur.restore.engines import Engine

REPORT_NAMES = ("metrics.json", "per_image.csv")  # written by every evaluation (gallery.png, curves.png not always)
PICTURE_NAMES = ("gallery.png", "curves.png")
TUNE_ITEMS = 48  # validation items used to tune each baseline's parameter
DEFAULT_BASELINES = "identity,wiener"  # synthetic blur: the true kernel is known
PAIRS_BASELINES = "identity,unsharp"  # real blur: no kernel, so only blind methods can run
PAIRS_SEED = 0

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


@dataclass
class Evaluation:
    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    gallery: np.ndarray | None = None
    curves: np.ndarray | None = None
    partial: Path | None = None  # the journal, removed once the final reports are written
    replace_reports: bool = False  # the user allowed replacing earlier reports (--overwrite, when the run began)

    def table(self) -> str:
        return format_table(self.summary)

    def failures(self) -> list[str]:
        """One line per model whose output held NaN or inf: such a model failed and has no score."""
        return failure_lines(self.summary)


def failure_lines(summary: dict[str, Any]) -> list[str]:
    labels = summary["labels"]
    return [f"{labels.get(m, m)} produced non-finite output (NaN/inf) on {f['nonfinite_items']} of {f['items']} "
            "items: it failed" for m, f in summary.get("failed", {}).items()]


def model_name(model: Any) -> str:
    """The architecture a loaded model calls itself (deblur's builders name it: unet, nafnet, ...).

    It comes from the checkpoint, so it is cut to a short run of plain characters before it is printed.
    """
    name = re.sub(r"[^A-Za-z0-9_.+-]", "", str(getattr(model, "name", "") or ""))[:40]
    return name or type(model).__name__


def json_safe(value: Any) -> Any:
    """Plain data for json.dumps(allow_nan=False): NaN and inf (no score) become null, as JSON has no NaN."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass
class _Job:
    """Everything one scoring pass needs, whichever way the images arrived."""

    batches: EvalSet  # the fixed split: every pass gives the same batches
    names: list[str]
    specs: list[dict[str, Any]]
    paired: bool
    models: dict[str, Any]
    baselines: dict[str, Any] = field(default_factory=dict)  # name -> tuned setting
    options: MetricOptions = field(default_factory=MetricOptions)
    align: bool = False
    partial: Partial | None = None  # where rows are journaled as they are scored; None: nowhere
    fingerprint: dict[str, Any] = field(default_factory=dict)  # what the journal's rows depend on
    resumed: Resumed | None = None  # an interrupted run's journal being continued
    replace_reports: bool = False

    def __post_init__(self) -> None:
        from deblur.restore.engines import as_engine

        # One (kind, label) per degradation variant, computed once rather than for every scored item.
        self.variant_labels = [(s["kind"], describe(s)) for s in self.specs]
        # each Keras model wrapped once, not once per batch: restoring runs on these
        self.engines: dict[str, Engine] = {label: as_engine(m) for label, m in self.models.items()}

    def label(self, variant: int) -> tuple[str, str]:
        """(kind, description) of a variant's degradation; real pairs have no synthetic one."""
        return ("real", "real") if self.paired else self.variant_labels[variant]


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


def restore_items(engine: Engine, blurred: np.ndarray) -> np.ndarray:
    """Restore a batch; large single images go tile by tile so memory stays bounded."""
    from deblur.restore.predict import DEFAULT_TILE, across_channels, restore_batch, restore_full

    if blurred.shape[0] == 1 and blurred.shape[1] * blurred.shape[2] > DEFAULT_TILE**2:
        return across_channels(engine, blurred[0], lambda x: restore_full(engine, x))[None]
    return across_channels(engine, blurred, lambda x: restore_batch(engine, x))


def _kernels(job: _Job) -> Callable[[int, dict[str, float]], np.ndarray | None]:
    degs = [make(s) for s in job.specs]
    cache: dict[tuple, np.ndarray] = {}

    def kernel(variant: int, params: dict[str, float]) -> np.ndarray | None:
        if job.paired:
            return None
        # exact values: a camera-shake path seed 1e-7 away draws another trajectory
        key = (variant, *(params[p] for p in PARAM_NAMES if not math.isnan(params[p])))
        if key not in cache:
            cache[key] = kernel_array(degs[variant], params)
        return cache[key]

    return kernel


def _items(batch: dict[str, np.ndarray]) -> Iterator[tuple[int, dict[str, Any]]]:
    for k in range(len(batch["sharp"])):
        yield k, {"index": int(batch["index"][k]), "variant": int(batch["variant"][k]), "tile": int(batch["tile"][k]),
                  "params": {p: float(batch[p][k]) for p in PARAM_NAMES}}


def tune_baselines(names: list[str], batches: Iterable[dict[str, np.ndarray]] | None, job: _Job) -> dict[str, Any]:
    """Pick each baseline's setting on validation items (never on the test split)."""
    kernel = _kernels(job)
    items = []
    for batch in batches or []:
        for k, info in _items(batch):
            items.append((batch["blurred"][k], batch["sharp"][k], kernel(info["variant"], info["params"])))
        if len(items) >= TUNE_ITEMS:
            break
    return {name: bl.tune(name, items[:TUNE_ITEMS]) for name in names}


def model_digest(model: Any) -> str:
    """sha256 of a model's architecture and weights: what its scores depend on, wherever its file lies."""
    from keras import ops

    h = hashlib.sha256(type(model).__name__.encode())
    with contextlib.suppress(Exception):  # a model Keras cannot describe is known by its weights alone
        h.update(json.dumps(model.get_config(), sort_keys=True, default=str).encode())
    for w in getattr(model, "weights", []):
        value = np.ascontiguousarray(ops.convert_to_numpy(getattr(w, "value", w)))  # torch: detached
        h.update(f"{getattr(w, 'path', w.name)}:{value.dtype}:{value.shape};".encode())
        h.update(value.tobytes())
    return h.hexdigest()


def _fingerprint(job: _Job, baselines: list[str], data: dict[str, Any]) -> dict[str, Any]:
    """Everything a journaled row depends on; a resumed run must match it in every entry."""
    import keras

    names = hashlib.sha256("\n".join(job.names).encode("utf-8", "surrogateescape")).hexdigest()
    return {**data, "image_names": names, "items": job.batches.items, "batch": job.batches.batch,
            "models": {label: model_digest(m) for label, m in job.models.items()},
            "metric_options": asdict(job.options), "baselines": baselines, "align": job.align,
            "backend": keras.backend.backend(), "deblur_version": __version__}


def _take_over(job: _Job, partial: Partial | None, fingerprint: dict[str, Any]) -> bool:
    """Check the output folder before any work; whether an interrupted run's journal is being continued.

    Earlier reports are refused now, not after the whole split has been scored. A resumed run may
    replace them if the run it continues was allowed to (--overwrite when it began).
    """
    if partial is None:
        return False
    job.partial, job.fingerprint = partial, normalized(fingerprint)
    job.resumed = check(partial, fingerprint, len(job.batches))
    job.replace_reports = partial.overwrite or bool(job.resumed and job.resumed.header.get("replace_reports"))
    journaled = job.resumed is not None
    if job.resumed is not None and job.resumed.last < 0:
        # no batch was committed: no chain proves the header's state (its baselines' settings), and there is
        # nothing to take over; start again, with a new header (an edited state gave another report, rc 0)
        job.resumed = None
    folder = partial.path.parent
    existing = [folder / n for n in REPORT_NAMES if (folder / n).exists()]
    if existing and not job.replace_reports:
        if partial.resume and not journaled:
            raise DeblurError(f"--resume: {folder} holds the reports of a finished evaluation, not an interrupted "
                              "one; pass --overwrite (without --resume) to score again")
        raise DeblurError(f"{existing[0]} already exists; pass --overwrite to replace it, or --output DIR")
    check_replaceable([folder / n for n in (*REPORT_NAMES, *PICTURE_NAMES)], legacy=legacy_report)
    if job.resumed is None:
        return False
    stored = job.resumed.header.get("state", {}).get("baselines", {})
    for name, value in stored.items():  # the grid's own value: JSON turned its tuples into lists
        grid = bl.BASELINES.get(name).grid
        job.baselines[name] = next((g for g in grid if normalized(g) == value), value)
    return True


@dataclass
class _From:
    """The split from one batch on, with its length for the progress bar."""

    evalset: EvalSet
    first: int

    def __len__(self) -> int:
        return max(0, len(self.evalset) - self.first)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self.evalset.from_batch(self.first)


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


def _score_item(job: _Job, kernel: Callable, info: dict[str, Any], blurred: np.ndarray, sharp: np.ndarray,
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
        scores = score_image(sharp, image, job.options.y_channel, job.options.crop_border)
        if method in failed:  # warping may have moved the bad values out of the overlap
            scores = dict.fromkeys(scores, math.nan)
        row.update({f"{metric}_{method}": v for metric, v in scores.items()})
    if failed:
        row["failed"] = ";".join(failed)
    return {"batch": batch, "size": list(sharp.shape[:2]), "row": row, "failed": failed}


def _skipped(job: _Job) -> list[tuple[str, str]]:
    """(label, reason) of the images the split could not read, as the data store reports them."""
    return [(str(label), str(reason)) for label, reason in getattr(job.batches, "skipped", None) or []]


def _score(job: _Job, progress: Callable[[Iterable], Iterable] | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score the split batch by batch, holding one batch of images at a time.

    With a journal each batch's records are on disk before the next batch starts; a resumed run
    counts the journal's records first and scores from the first batch they do not cover.
    """
    kernel = _kernels(job)
    tally = _Tally()
    resumed = job.resumed
    first = resumed.batches if resumed else 0
    for record in resumed.records if resumed else []:
        tally.add(record)
    # seconds and megapixels per model, of this run's batches only; the first batch (graph tracing,
    # warm-up) is kept apart and only used when it is the only one
    timing = {label: {"first": [0.0, 0.0], "rest": [0.0, 0.0]} for label in job.models}
    committed = 0  # of this run's skipped images, how many the journal holds
    journal = (Journal(job.partial.path, job.fingerprint, {"baselines": job.baselines}, job.replace_reports, resumed)
               if job.partial else contextlib.nullcontext())
    remaining = _From(job.batches, first)
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
                       for k, info in _items(batch)]
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
            raise DeblurError(f"--resume: {job.partial.path if job.partial else 'the journal'} and this run scored "
                              f"{counted} items of the split's {items}; pass --overwrite (without --resume) to score "
                              "again")
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


def _ms_per_mp(timing: dict[str, list[float]]) -> float | None:
    """Milliseconds per megapixel; None when this run restored nothing (it resumed after the last batch)."""
    seconds, megapixels = timing["rest"] if timing["rest"][1] else timing["first"]
    return 1000.0 * seconds / megapixels if megapixels else None


def _means(rows: list[dict[str, Any]], method: str) -> dict[str, float]:
    return summarize([{k: r[f"{k}_{method}"] for k in ("psnr", "ssim", "mse")} for r in rows])


def breakdown(rows: list[dict[str, Any]], methods: list[str], specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Scores by blur kind (when several) and by strength bins (sigma 0-1, 1-2, ...), per method."""
    groups: dict[str, list[dict[str, Any]]] = {}
    kinds = sorted({r["kind"] for r in rows})
    if len(kinds) > 1:
        for kind in kinds:
            groups[f"kind {kind}"] = [r for r in rows if r["kind"] == kind]
    degs = {s["kind"]: make(s) for s in specs}
    for kind, deg in sorted(degs.items()):
        if deg.strength is None:
            continue
        param, width = deg.strength
        chosen = [r for r in rows if r["kind"] == kind and param in r]
        bins: dict[int, list[dict[str, Any]]] = {}
        for r in chosen:
            bins.setdefault(int(r[param] // width), []).append(r)
        for b in sorted(bins):
            groups[f"{param} {b * width:g}-{(b + 1) * width:g}"] = bins[b]
    return [{"group": name, "n": len(members),
             "psnr": {m: _means(members, m)["psnr"] for m in methods},
             "psnr_of_mean_mse": {m: _means(members, m)["psnr_of_mean_mse"] for m in methods},
             "ssim": {m: _means(members, m)["ssim"] for m in methods}}
            for name, members in groups.items()]


def _summary(job: _Job, rows: list[dict[str, Any]], extra: dict[str, Any], protocol: dict[str, Any],
             labels: dict[str, str], notes: list[str]) -> dict[str, Any]:
    failed = extra["nonfinite"]
    # a failed model has no score, so it is listed last, after every model that has one
    methods = ["input", *job.baselines, *(m for m in job.models if m not in failed), *failed]
    sizes = extra["sizes"]
    protocol = {**protocol, "scored_items": len(rows), "item_size": list(sizes.pop()) if len(sizes) == 1 else None}
    summary: dict[str, Any] = {
        "protocol": protocol,
        "metric_card": job.options.card(),
        "labels": labels,
        "methods": {m: _means(rows, m) for m in methods},
        "baseline_settings": {b: s for b, s in job.baselines.items()},
        "models": {label: {"architecture": model_name(job.models[label]),
                           "parameters": int(job.models[label].count_params()),
                           "ms_per_megapixel": _ms_per_mp(extra["timing"][label])}
                   for label in methods if label in job.models},
        "failed": {label: {"nonfinite_items": n, "items": len(rows)} for label, n in failed.items()},
        "notes": notes,
        "deblur_version": __version__,
    }
    summary["gain"] = {m: {k: v - summary["methods"]["input"][k] for k, v in summary["methods"][m].items()}
                       for m in methods if m != "input"}
    summary["breakdown"] = breakdown(rows, methods, job.specs) if not job.paired else []
    summary["skipped_unreadable"] = [{"image": label, "reason": reason} for label, reason in extra["skipped"].items()]
    if job.resumed is not None:
        before = extra["resumed_items"]
        summary["resumed"] = {"items_scored_before": before, "items_scored_now": len(extra["batches"]) - before}
        notes.append(f"resumed: {before} items were scored by the interrupted run; the time per megapixel is "
                     "measured on the items scored after the resume only")
    if extra["alignment"] is not None:
        a = extra["alignment"]
        summary["alignment"] = {"aligned": a["aligned"], "failed": len(a["failed"]), "failed_images": a["failed"],
                                "unaligned_psnr_input": float(np.mean(a["unaligned_psnr_input"])),
                                "aligned_psnr_input": summary["methods"]["input"]["psnr"]}
    return summary


def _gallery(job: _Job, rows: list[dict[str, Any]], batches: list[int], labels: dict[str, str]) -> np.ndarray | None:
    """Best, median and worst items by the first model's PSNR gain, fetched again from the fixed split.

    Ranked by gain over the blurred input rather than by PSNR, which would only pick the easiest and
    the hardest images, not where the model helps most and least. Only the (at most three) batches
    holding them are made again, not the split up to the last one.
    """
    from deblur.evaluation.report import gallery
    from deblur.imaging.align import estimate

    model_label = next(iter(job.models))
    order = sorted(range(len(rows)), key=lambda i: rows[i][f"psnr_{model_label}"] - rows[i]["psnr_input"])
    picks = {"worst": order[0], "median": order[len(order) // 2], "best": order[-1]}
    wanted = {(rows[i]["image"], rows[i]["tile"], rows[i]["degradation"]): title for title, i in picks.items()}
    found: dict[str, tuple] = {}
    for first in sorted({batches[i] for i in picks.values()}):
        batch = next(iter(_From(job.batches, first)))
        for k, info in _items(batch):
            key = (job.names[info["index"]], info["tile"], job.label(info["variant"])[1])
            if key in wanted:
                blurred, sharp = batch["blurred"][k], batch["sharp"][k]
                restored = restore_items(job.engines[model_label], blurred[None])[0]
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


def _run(job: _Job, protocol: dict[str, Any], labels: dict[str, str], notes: list[str],
         progress: Callable[[Iterable], Iterable] | None, with_gallery: bool, history: Path | None) -> Evaluation:
    rows, extra = _score(job, progress)
    summary = _summary(job, rows, extra, protocol, labels, notes)
    evaluation = Evaluation(rows=rows, summary=summary, partial=job.partial.path if job.partial else None,
                            replace_reports=job.replace_reports)
    if with_gallery and next(iter(job.models)) not in summary["failed"]:  # no best/worst for a model with no score
        evaluation.gallery = _gallery(job, rows, extra["batches"], labels)
    if history is not None and history.is_file():
        from deblur.evaluation.report import curves, read_history

        columns = read_history(history)
        if columns:  # an unreadable history.csv costs the report its curves, never the scores
            evaluation.curves = curves(columns)
    return evaluation


def _model_labels(models: dict[str, Any]) -> dict[str, str]:
    """Display names; a lone model is named by what its checkpoint holds, not by the config it is scored with."""
    labels = {"input": "blurred input"}
    for b in bl.BASELINES.names():
        labels[b] = f"{b} ({'true kernel' if bl.BASELINES.get(b).needs_kernel else 'blind'})"
    for label, model in models.items():
        labels[label] = f"model ({model_name(model)})" if label == "model" else label
    return labels


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

    job = _Job(batches=EvalSet(images, cfg.data, cfg.seed, split, splits.paired), names=images.names,
               specs=specs, paired=splits.paired, models=models, options=options or MetricOptions())
    tile = job.batches.tile
    check_scorable(tile or images.min_size, job.options, "a data.eval_crop tile" if tile else "the smallest image",
                   "use a larger data.eval_crop" if tile else "set data.eval_crop or data.resize")
    scored = {"data": to_dict(cfg)["data"], "seed": cfg.seed, "split": split}
    # before tuning: a resumed run reuses the settings the interrupted one tuned
    resumed = _take_over(job, partial, _fingerprint(job, names, scored) if partial else {})
    if names:
        val = EvalSet(splits.val, cfg.data, cfg.seed, "val", splits.paired) if len(splits.val) else None
        if val is None:
            notes.append("no validation images: baselines use the middle of their parameter grid")
        if not resumed:
            job.baselines = tune_baselines(names, val, job)
    protocol = {"dataset": splits.description, "source": cfg.data.source, "split": split,
                "degradation": "real blurred twins" if splits.paired else [describe(s) for s in specs],
                "seed": cfg.seed, "eval_crop": cfg.data.eval_crop, "resize": cfg.data.resize, "images": len(images),
                "checkpoint": checkpoint}
    evaluation = _run(job, protocol, _model_labels(models), notes, progress, gallery, history)
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

    job = _Job(batches=EvalSet(images, data_cfg, PAIRS_SEED, "test", paired=True), names=images.names,
               specs=[], paired=True, models=models, options=options or MetricOptions(), align=align)
    check_scorable(images.min_size, job.options, "the smallest pair", "score larger images")
    resumed = _take_over(job, partial, _fingerprint(job, names, {"dataset": description}) if partial else {})
    if names:
        notes.append("blind baselines use the middle of their parameter grid: a pairs folder has no validation split")
        if not resumed:
            job.baselines = tune_baselines(names, None, job)
    protocol = {"dataset": description, "source": "pairs", "split": "all pairs", "degradation": "real blurred twins",
                "seed": None, "eval_crop": None, "resize": None, "images": len(images), "checkpoint": checkpoint,
                "aligned": align}
    return _run(job, protocol, _model_labels(models), notes, progress, gallery, None)


# --------------------------------------------------------------------------------------------------
# Presentation


def _cell(value: float | None, spec: str) -> str:
    """A number for the table; a missing or non-finite one (a failed method) as a dash."""
    return format(value, spec) if value is not None and math.isfinite(value) else "—"


def format_table(summary: dict[str, Any]) -> str:
    p, labels = summary["protocol"], summary["labels"]
    deg = p["degradation"] if isinstance(p["degradation"], str) else "; ".join(p["degradation"])
    size = f"{p['item_size'][1]}x{p['item_size'][0]}" if p["item_size"] else "various sizes"
    card = summary["metric_card"]
    seed = f", seed {p['seed']}" if p.get("seed") is not None else ""
    out = [f"{p['split']} split: {p['dataset']}",
           f"  {p['scored_items']} items of {size} from {p['images']} images, blur: {deg}{seed}",
           f"  scored on {card['color']}, 8-bit, crop border {card['crop_border']}, PSNR capped at {PSNR_CAP_DB:g} dB"]
    width = max(24, *(len(labels.get(m, m)) + 2 for m in summary["methods"]))
    out.append(f"  {'':<{width}}{'PSNR dB':>9}{'SSIM':>9}{'MSE':>10}{'PSNR(mean MSE)':>16}{'gain dB':>9}")
    failed = summary.get("failed", {})
    for method, s in summary["methods"].items():
        if method in failed:
            out.append(f"  {labels.get(method, method):<{width}}   FAILED: non-finite output (NaN/inf) on "
                       f"{failed[method]['nonfinite_items']} of {failed[method]['items']} items, no score")
            continue
        gain = f"{_cell(summary['gain'][method]['psnr'], '+.2f'):>9}" if method in summary["gain"] else f"{'':>9}"
        out.append(f"  {labels.get(method, method):<{width}}{_cell(s['psnr'], '.2f'):>9}{_cell(s['ssim'], '.4f'):>9}"
                   f"{_cell(s['mse'], '.5f'):>10}{_cell(s['psnr_of_mean_mse'], '.2f'):>16}{gain}")
    if summary.get("breakdown"):
        methods = list(summary["methods"])
        out.append("  mean PSNR (dB) by group:")
        out.append(f"  {'':<16}{'n':>6}" + "".join(f"{m[:15]:>16}" for m in methods))
        for g in summary["breakdown"]:
            out.append(f"  {g['group']:<16}{g['n']:>6}" + "".join(f"{_cell(g['psnr'][m], '.2f'):>16}" for m in methods))
    if "alignment" in summary:
        a = summary["alignment"]
        out.append(f"  alignment: {a['aligned']} pairs aligned, {a['failed']} could not be aligned"
                   + (f" ({', '.join(a['failed_images'])})" if a["failed_images"] else "")
                   + f"; blurred input PSNR {a['unaligned_psnr_input']:.2f} dB unaligned vs "
                     f"{a['aligned_psnr_input']:.2f} dB aligned (overlap only)")
    for label, m in summary["models"].items():
        speed = (f"{m['ms_per_megapixel']:.0f} ms per megapixel on this machine" if m["ms_per_megapixel"] is not None
                 else "not timed (every item was scored before the resume)")
        out.append(f"  {labels.get(label, label)}: {m['parameters']:,} parameters, {speed}")
    for note in summary.get("notes", []):
        out.append(f"  note: {note}")
    if summary.get("skipped_unreadable"):
        skipped = summary["skipped_unreadable"]
        out.append(f"  skipped {len(skipped)} unreadable images: "
                   + "; ".join(f"{s['image']} ({s['reason']})" for s in skipped[:10])
                   + (f"; and {len(skipped) - 10} more (metrics.json lists them)" if len(skipped) > 10 else ""))
    for line in failure_lines(summary):
        out.append(f"  -> {line}")
    for label in summary["models"]:
        g = summary["gain"][label]["psnr"]
        if label in failed or not math.isfinite(g):  # a model with no score neither improves nor is ranked
            continue
        verdict = "improves on the blurred input" if g > 0 else "is WORSE than the blurred input (PSNR gain <= 0)"
        out.append(f"  -> {labels.get(label, label)} {verdict}")
    return "\n".join(out)


def write_reports(evaluation: Evaluation, output_dir: Path, overwrite: bool) -> list[Path]:
    """Write metrics.json, per_image.csv and the pictures, refusing to replace earlier reports unless asked."""
    targets = {"metrics": output_dir / "metrics.json", "rows": output_dir / "per_image.csv",
               "gallery": output_dir / "gallery.png", "curves": output_dir / "curves.png"}
    if evaluation.gallery is None:
        targets.pop("gallery")
    if evaluation.curves is None:
        targets.pop("curves")
    existing = [t for t in targets.values() if t.exists()]
    if existing and not (overwrite or evaluation.replace_reports):
        raise DeblurError(f"{existing[0]} already exists; pass --overwrite to replace it, or --output DIR")
    check_replaceable(targets.values(), legacy=legacy_report)  # again: the folder may have changed while scoring
    # JSON has no NaN: a failed method's scores are written as null (and named under "failed")
    atomic_write_text(targets["metrics"],
                      json.dumps(json_safe(evaluation.summary), indent=2, default=str, allow_nan=False) + "\n")
    buf = io.StringIO()
    fields = list(dict.fromkeys(k for r in evaluation.rows for k in r))
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    for r in evaluation.rows:
        # an empty cell for a score that does not exist (NaN): "nan" would read as a number to some tools
        writer.writerow({k: ((f"{v:.6g}" if math.isfinite(v) else "") if isinstance(v, float) else v)
                         for k, v in r.items()})
    atomic_write_text(targets["rows"], buf.getvalue())
    for key in ("gallery", "curves"):
        if key in targets:
            atomic_write_bytes(targets[key], encode_png(getattr(evaluation, key)))
    owned.record(output_dir, targets.values())  # what a later --overwrite may replace
    if evaluation.partial is not None and evaluation.partial.parent == output_dir:
        evaluation.partial.unlink(missing_ok=True)  # every row is in per_image.csv now
    return list(targets.values())


def legacy_report(path: Path) -> bool:
    """A report of a deblur from before the ledger (deblur.core.owned): its folder has no ledger and a
    metrics.json that deblur wrote (a JSON object with deblur's summary keys)."""
    from deblur.core.safefile import UnsafeFile, read_json

    if os.path.lexists(path.parent / owned.LEDGER):
        return False
    try:
        data = read_json(path.parent / "metrics.json", what="metrics.json")
    except (OSError, UnsafeFile):
        return False
    return isinstance(data, dict) and {"protocol", "metric_card", "methods", "deblur_version"} <= data.keys()
