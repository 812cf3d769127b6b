"""Architecture sweep for the built-in model: validation PSNR against inference cost.

Each candidate (NAFNet and U-Net family, a few widths and depths) is trained by `deblur.train` (what
the `deblur train` command runs) on the same data, blur mix and seed, for the same number of epochs (the
same training patches; a wall-clock budget would be unfair on a machine whose load varies), from
scratch. Its best validation PSNR (the training-time metric, on the same fixed validation tiles for
every candidate) is then set against its inference time per megapixel at 1024x1024, measured for
all candidates in this one process, one after the other, on this machine. The curve is drawn to
docs/figures/arch_sweep.png and the table written to docs/arch_sweep.md.

    python scripts/sweep_arch.py --epochs 3             # trains into runs/sweep/<name>, resumable
    python scripts/sweep_arch.py --report               # timing, table and figure only

Protocol: configs/default_model.yaml's blur mix (camera shake, motion, Gaussian, defocus, none, with
Poisson-Gaussian noise and JPEG) on the scikit-image sample photos (validation: rocket, astronaut),
96x96 crops, 8 per photo and blur per epoch, Adam 1e-3 constant, seed 42, no initial weights.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "default_model.yaml"
RUNS = ROOT / "runs" / "sweep"
FIGURE = ROOT / "docs" / "figures" / "arch_sweep.png"
TABLE = ROOT / "docs" / "arch_sweep.md"

# name -> model settings (every key a keyword of the model's builder)
CANDIDATES: dict[str, dict] = {
    "nafnet_w16": {"type": "nafnet", "width": 16, "enc_blocks": [1, 1, 2], "middle_blocks": 2, "dec_blocks": [1, 1, 1]},
    "nafnet_w24": {"type": "nafnet", "width": 24, "enc_blocks": [1, 1, 2], "middle_blocks": 2, "dec_blocks": [1, 1, 1]},
    "nafnet_w24_deep": {"type": "nafnet", "width": 24, "enc_blocks": [2, 2, 2], "middle_blocks": 4,
                        "dec_blocks": [1, 1, 1]},
    "nafnet_w32": {"type": "nafnet", "width": 32, "enc_blocks": [1, 1, 2], "middle_blocks": 2,
                   "dec_blocks": [1, 1, 1]},
    "unet_d3_f16": {"type": "unet", "depth": 3, "base_filters": 16, "residual": True, "identity_init": True},
    "unet_d3_f24": {"type": "unet", "depth": 3, "base_filters": 24, "residual": True, "identity_init": True},
}
BUILT_IN = "nafnet_w24"
PROTOCOL_SETS = [
    "data.options.parts=[{source: samples, options: {val_images: [rocket, astronaut], "
    "test_images: [chelsea, coffee]}}]",
    "data.crops_per_image=8", "train.init_from=null", "train.lr_schedule=constant", "train.learning_rate=0.001",
    "train.reduce_lr.enabled=false", "train.early_stopping.enabled=false", "train.evaluate_after=false",
]


def _model_sets(settings: dict) -> list[str]:
    return [f"model={json.dumps(settings)}"]


def train(name: str, epochs: int) -> None:
    """Train (or resume) one candidate; a failed training is said and left for the next run to resume."""
    import deblur

    run = RUNS / name
    sets = [*PROTOCOL_SETS, *_model_sets(CANDIDATES[name]), f"train.epochs={epochs}",
            "train.time_limit_minutes=null", f"name=sweep_{name}"]
    resume = (run / "history.csv").exists()
    cmd = ["deblur", "train", "-c", str(CONFIG), "--run-dir", str(run), "--no-eval",
           *(x for s in sets for x in ("--set", s)), *(["--resume"] if resume else [])]
    print("$", " ".join(cmd[1:]), flush=True)
    try:
        deblur.train(CONFIG, overrides=sets, run_dir=run, resume=resume, evaluate_after=False, command=shlex.join(cmd))
    except deblur.DeblurError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)


def best_val_psnr(name: str) -> tuple[float, int, float]:
    """Best validation PSNR, epochs trained and training seconds of a candidate's run."""
    path = RUNS / name / "history.csv"
    if not path.exists():
        return math.nan, 0, math.nan
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    values = [float(r["val_psnr"]) for r in rows if r.get("val_psnr") not in (None, "", "nan")]
    seconds = float(rows[-1]["train_seconds"]) if rows else math.nan
    return (max(values) if values else math.nan), len(rows), seconds


def ms_per_megapixel(settings: dict, size: int = 1024, repeats: int = 3) -> tuple[float, int]:
    from deblur.models import MODELS

    kwargs = {k: v for k, v in settings.items() if k != "type"}
    model = MODELS.get(settings["type"])(3, **kwargs)
    x = np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32)
    model.predict_on_batch(x)  # build and trace
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(x)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times)) / (size * size / 1e6), int(model.count_params())


def plot(rows: list[dict]) -> np.ndarray:
    """Validation PSNR (y) against ms per megapixel (x), one labelled point per candidate (OpenCV)."""
    import cv2

    h, w, left, right, top, bottom = 420, 640, 70, 30, 40, 50
    img = np.full((h, w, 3), 255, np.uint8)
    pts = [r for r in rows if math.isfinite(r["val_psnr"])]
    if not pts:
        return img
    xs, ys = [r["ms_per_mp"] for r in pts], [r["val_psnr"] for r in pts]
    x0, x1 = min(xs) * 0.9, max(xs) * 1.1
    y0, y1 = min(ys) - 0.2, max(ys) + 0.2
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.rectangle(img, (left, top), (w - right, h - bottom), (0, 0, 0), 1)
    cv2.putText(img, "validation PSNR (dB) vs inference cost (ms per megapixel, 1024x1024, CPU)", (8, 22), font,
                0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for value, y in ((y1, top), (y0, h - bottom)):
        cv2.putText(img, f"{value:.2f}", (8, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for value, x in ((x0, left), (x1, w - right - 40)):
        cv2.putText(img, f"{value:.0f}", (x, h - bottom + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for r in pts:
        px = round(left + (w - left - right) * (r["ms_per_mp"] - x0) / (x1 - x0))
        py = round(top + (h - top - bottom) * (1 - (r["val_psnr"] - y0) / (y1 - y0)))
        colour = (214, 39, 40) if r["name"] == BUILT_IN else (31, 119, 180)
        cv2.circle(img, (px, py), 5, colour, -1)
        cv2.putText(img, r["name"], (px + 7, py - 6), font, 0.4, colour, 1, cv2.LINE_AA)
    return img


def report(epochs: int) -> None:
    import cv2

    rows = []
    for name, settings in CANDIDATES.items():
        psnr, done, seconds = best_val_psnr(name)
        ms, params = ms_per_megapixel(settings)
        rows.append({"name": name, "val_psnr": psnr, "epochs": done, "train_seconds": seconds, "ms_per_mp": ms,
                     "params": params, "settings": settings})
        print(f"{name:<16} {params:>10,} params  {ms:>7.0f} ms/MP  val PSNR {psnr:.3f} dB after {done} epochs "
              f"({seconds:.0f} s)", flush=True)
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(FIGURE), plot(rows)[..., ::-1])
    lines = ["# Architecture sweep for the built-in model", "",
             f"Each candidate trained for {epochs} epochs (the same training patches for all) by `python "
             f"scripts/sweep_arch.py --epochs {epochs}`, from scratch, with configs/default_model.yaml's blur mix "
             "on the "
             "scikit-image sample photos (validation: rocket, astronaut; seed 42). Validation PSNR is the "
             "training-time metric, best epoch, on the same validation tiles for all; ms per megapixel is "
             "`predict_on_batch` at 1024x1024, median of 3 after a warm-up, all measured in one process.", "",
             "| model | parameters | ms per MP | best val PSNR (dB) | epochs | training s |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(rows, key=lambda r: r["ms_per_mp"]):
        mark = " (built-in)" if r["name"] == BUILT_IN else ""
        lines.append(f"| {r['name']}{mark} | {r['params']:,} | {r['ms_per_mp']:.0f} | {r['val_psnr']:.3f} | "
                     f"{r['epochs']} | {r['train_seconds']:.0f} |")
    lines += ["", f"![sweep](figures/{FIGURE.name})", "",
              f"Hardware: {os.cpu_count()} CPU cores; Keras backend {os.environ.get('KERAS_BACKEND', 'tensorflow')}."]
    TABLE.write_text("\n".join(lines) + "\n")
    (RUNS / "sweep.json").write_text(json.dumps(rows, indent=1))
    print(f"wrote {TABLE} and {FIGURE}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="training epochs per candidate (the same for all)")
    parser.add_argument("--report", action="store_true", help="only time the candidates and write the table")
    parser.add_argument("--only", nargs="*", default=None, help="candidates to train (default: all)")
    args = parser.parse_args()
    if not args.report:
        for name in args.only or CANDIDATES:
            train(name, args.epochs)
    report(args.epochs)


if __name__ == "__main__":
    main()
