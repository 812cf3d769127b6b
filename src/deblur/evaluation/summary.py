"""The summary of an evaluation: mean scores per method, gains over the blurred input, the breakdown
by blur kind and strength, each model's size and speed, and the labels a report shows."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import numpy as np

from deblur import __version__
from deblur.data.degrade import make
from deblur.evaluation import baselines as bl
from deblur.imaging.metrics import summarize

if TYPE_CHECKING:
    from deblur.evaluation.evaljob import EvalJob


def model_name(model: Any) -> str:
    """The architecture a loaded model calls itself (deblur's builders name it: unet, nafnet, ...).

    It comes from the checkpoint, so it is cut to a short run of plain characters before it is printed.
    """
    name = re.sub(r"[^A-Za-z0-9_.+-]", "", str(getattr(model, "name", "") or ""))[:40]
    return name or type(model).__name__



def model_labels(models: dict[str, Any]) -> dict[str, str]:
    """Display names; a lone model is named by what its checkpoint holds, not by the config it is scored with."""
    labels = {"input": "blurred input"}
    for b in bl.BASELINES.names():
        labels[b] = f"{b} ({'true kernel' if bl.BASELINES.get(b).needs_kernel else 'blind'})"
    for label, model in models.items():
        labels[label] = f"model ({model_name(model)})" if label == "model" else label
    return labels



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


def summarize_run(job: EvalJob, rows: list[dict[str, Any]], extra: dict[str, Any], protocol: dict[str, Any],
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
    if job.resumption.resumed is not None:
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

