"""What an evaluation gives back and how it is shown: the Evaluation, its table, and the report files
(metrics.json, per_image.csv, the pictures) written beside it, replacing only what deblur wrote."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deblur.core import owned
from deblur.core.errors import DeblurError
from deblur.core.owned import check_replaceable
from deblur.imaging.imageio import atomic_write_bytes, atomic_write_text, encode_png
from deblur.imaging.metrics import PSNR_CAP_DB

REPORT_NAMES = ("metrics.json", "per_image.csv")  # written by every evaluation (gallery.png, curves.png not always)
PICTURE_NAMES = ("gallery.png", "curves.png")


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
    if "shift" in card:  # blind scoring: said on its own line, so unshifted tables stay as they were
        out.append(f"  shift: {card['shift']}")
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
