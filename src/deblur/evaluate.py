"""Scoring a checkpoint on a fixed split, always beside the blurred input's own score.

A model's PSNR means little alone: on CIFAR-10 with sigma ~ U(0, 3) the blurred input already
scores about 25 dB. Every row and every summary therefore carries the input's numbers and the gain.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deblur import __version__
from deblur.config import RunConfig, to_dict
from deblur.data.degrade import PARAM_NAMES, describe
from deblur.errors import DeblurError
from deblur.imageio import atomic_write_text
from deblur.metrics import PSNR_CAP_DB, score_image, summarize
from deblur.predict import restore_batch

METRIC_CARD = {
    "quantization": "clip to [0, 1], round to 8 bits before scoring",
    "psnr": f"10*log10(1/MSE) on all channels in [0, 1], per image, capped at {PSNR_CAP_DB:g} dB; "
            "psnr_of_mean_mse = 10*log10(1/mean MSE)",
    "ssim": "Wang et al. 2004, scikit-image structural_similarity(gaussian_weights=True, sigma=1.5, "
            "use_sample_covariance=False, data_range=1.0), mean over channels",
    "mse": "mean squared error on [0, 1] intensities, per image",
    "color": "RGB (or gray), crop border 0",
    "aggregation": "mean of per-image values",
}


@dataclass
class Evaluation:
    rows: list[dict[str, Any]]
    summary: dict[str, Any]

    def table(self) -> str:
        return format_table(self.summary)


def evaluate(model, cfg: RunConfig, split: str = "test",
             progress: Callable[[Iterable, int], Iterable] | None = None,
             checkpoint: str | None = None) -> Evaluation:
    """Score `model` and the blurred input on `split` of the dataset that `cfg` describes."""
    from deblur.data.base import load_splits
    from deblur.data.pipeline import eval_dataset

    splits = load_splits(cfg.data, cfg.seed)
    images = splits.get(split)
    if len(images) == 0:
        raise DeblurError(f"the {split} split of {splits.description} is empty; "
                          f"set data.{'val' if split == 'val' else 'test'}_split above 0")
    ds = eval_dataset(images, cfg.data, cfg.seed, split, splits.paired)
    specs = cfg.data.degradation if isinstance(cfg.data.degradation, list) else [cfg.data.degradation]
    batches: Iterable = ds.as_numpy_iterator()
    if progress is not None:
        batches = progress(batches, len(images))
    rows: list[dict[str, Any]] = []
    sizes: set[tuple[int, int]] = set()
    for batch in batches:
        sizes.add((int(batch["sharp"].shape[1]), int(batch["sharp"].shape[2])))
        restored = restore_batch(model, batch["blurred"])
        for k in range(len(batch["sharp"])):
            idx, variant = int(batch["index"][k]), int(batch["variant"][k])
            row: dict[str, Any] = {"image": images.names[idx], "tile": int(batch["tile"][k]),
                                   "degradation": "real" if splits.paired else describe(specs[variant])}
            row.update({p: float(batch[p][k]) for p in PARAM_NAMES})
            inp = score_image(batch["sharp"][k], batch["blurred"][k])
            out = score_image(batch["sharp"][k], restored[k])
            row.update({f"{m}_input": v for m, v in inp.items()})
            row.update(out)
            rows.append(row)
    if not rows:
        raise DeblurError(f"nothing to score in the {split} split (are the images smaller than data.eval_crop?)")
    used = [p for p in PARAM_NAMES if any(not math.isnan(r[p]) for r in rows)]
    for r in rows:
        for p in PARAM_NAMES:
            if p not in used:
                del r[p]
    protocol = {
        "dataset": splits.description,
        "source": cfg.data.source,
        "split": split,
        "degradation": "real blurred twins" if splits.paired else [describe(s) for s in specs],
        "seed": cfg.seed,
        "eval_crop": cfg.data.eval_crop,
        "resize": cfg.data.resize,
        "images": len(images),
        "scored_items": len(rows),
        "item_size": list(sizes.pop()) if len(sizes) == 1 else None,
    }
    summary = {
        "protocol": protocol,
        "metric_card": METRIC_CARD,
        "checkpoint": checkpoint,
        "model": {"type": cfg.model.type, "parameters": int(model.count_params())},
        "blurred_input": _means(rows, "_input"),
        "restored": _means(rows, ""),
        "deblur_version": __version__,
        "config": to_dict(cfg),
    }
    summary["gain"] = {k: summary["restored"][k] - summary["blurred_input"][k] for k in summary["restored"]}
    return Evaluation(rows=rows, summary=summary)


def _means(rows: list[dict[str, Any]], suffix: str) -> dict[str, float]:
    renamed = [{k: r[k + suffix] for k in ("psnr", "ssim", "mse")} for r in rows]
    return summarize(renamed)


def format_table(summary: dict[str, Any]) -> str:
    p = summary["protocol"]
    deg = p["degradation"] if isinstance(p["degradation"], str) else "; ".join(p["degradation"])
    size = f"{p['item_size'][1]}x{p['item_size'][0]}" if p["item_size"] else "various sizes"
    head = (f"{p['split']} split: {p['dataset']}\n"
            f"  {p['scored_items']} items of {size} from {p['images']} images, blur: {deg}, seed {p['seed']}\n")
    lines = [f"  {'':<16}{'PSNR dB':>9}{'SSIM':>9}{'MSE':>10}{'PSNR(mean MSE)':>16}"]
    for label, key in (("blurred input", "blurred_input"), (f"model ({summary['model']['type']})", "restored")):
        s = summary[key]
        lines.append(f"  {label:<16}{s['psnr']:>9.2f}{s['ssim']:>9.4f}{s['mse']:>10.5f}{s['psnr_of_mean_mse']:>16.2f}")
    g = summary["gain"]
    lines.append(f"  {'gain':<16}{g['psnr']:>+9.2f}{g['ssim']:>+9.4f}{g['mse']:>+10.5f}{g['psnr_of_mean_mse']:>+16.2f}")
    verdict = ("the model improves on the blurred input" if g["psnr"] > 0 else
               "the model is WORSE than the blurred input (PSNR gain <= 0)")
    return head + "\n".join(lines) + f"\n  -> {verdict}"


def write_reports(evaluation: Evaluation, output_dir: Path, overwrite: bool) -> list[Path]:
    """Write metrics.json and per_image.csv, refusing to replace earlier reports unless asked."""
    targets = [output_dir / "metrics.json", output_dir / "per_image.csv"]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise DeblurError(f"{existing[0]} already exists; pass --overwrite to replace it, or --output DIR")
    atomic_write_text(targets[0], json.dumps(evaluation.summary, indent=2) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(evaluation.rows[0]))
    writer.writeheader()
    for r in evaluation.rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write_text(targets[1], buf.getvalue())
    return targets
