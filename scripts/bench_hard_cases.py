"""The built-in restorer on blur that no single kernel explains, and on night shots: never worse than the input.

Made from the test photos of ../shared/data/photos (the split scripts/bench_blind.py uses: never
trained on, never tuned on; `--split train+val` makes them from the training and validation photos
instead, which triage's thresholds are set on), seeded, five cases per photo:
  subject   a sharp subject (a feathered ellipse, a third of the frame) on a defocused background
            (disk, radius 6 px): the portrait-mode look, and the opposite of one blur everywhere
  moving    one moving object: a feathered rectangle a quarter of the frame, linear motion 25 px at 20
            degrees, the rest sharp
  rotation  the camera turned about the optical axis during the exposure: the mean of the photo
            rotated by -1.5 to +1.5 degrees about its centre (the blur grows from 0 at the centre
            to 20-30 px at the corners)
  night     a night shot: the photo darkened (linear light x 0.12), twelve point lights that
            saturate after the blur, camera shake (Boracchi and Foi, 21 px), read noise 0.01, JPEG 90
  night_sharp  the same night shot without blur (the sharp control: it should come back untouched)
Scored as scripts/bench_blind.py scores (RGB, 8-bit, interior, best over integer shifts up to 3 px).
The target (issue 18): never worse than the input, for the restorer with and without its refiner.

    python scripts/bench_hard_cases.py --data ../shared/data/photos
writes docs/hard_cases.md, docs/hard_cases.json and one figure per case (docs/figures/hard_*.jpg).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from bench_blind import aligned_mse, psnr

CASES = ("subject", "moving", "rotation", "night", "night_sharp")


def _feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma)[..., None]


def _filter(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return cv2.filter2D(image, -1, kernel[::-1, ::-1].astype(np.float32), borderType=cv2.BORDER_REFLECT)


def _jpeg(image: np.ndarray, quality: int = 90) -> np.ndarray:
    ok, buf = cv2.imencode(".jpg", (np.clip(image, 0, 1) * 255).round().astype(np.uint8)[..., ::-1],
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0


def make_case(case: str, sharp: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(degraded photo, its reference): the reference is the sharp photo, or the sharp night shot."""
    from deblur.restore import kernels as K

    h, w = sharp.shape[:2]
    if case == "subject":
        mask = np.zeros((h, w), np.uint8)
        cv2.ellipse(mask, (w // 2, h // 2), (int(w * 0.3), int(h * 0.38)), 0, 0, 360, 1, -1)
        m = _feather(mask, 8)
        return m * sharp + (1 - m) * _filter(sharp, K.disk(6, 13)), sharp
    if case == "moving":
        mask = np.zeros((h, w), np.uint8)
        top, left = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
        mask[top:top + h // 2, left:left + w // 2] = 1
        m = _feather(mask, 6)
        return m * _filter(sharp, K.line(25, 20, 27)) + (1 - m) * sharp, sharp
    if case == "rotation":
        centre = (w / 2, h / 2)
        frames = [cv2.warpAffine(sharp, cv2.getRotationMatrix2D(centre, a, 1.0), (w, h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT) for a in np.linspace(-1.5, 1.5, 21)]
        return np.mean(frames, axis=0).astype(np.float32), sharp
    # night: darken in linear light, add point lights that saturate, blur (or not), noise, JPEG
    linear = sharp ** 2.2 * 0.12
    for _ in range(12):
        y, x = int(rng.integers(10, h - 10)), int(rng.integers(10, w - 10))
        cv2.circle(linear, (x, y), int(rng.integers(1, 4)), (8.0, 7.0, 5.0), -1)
    ref = np.clip(linear, 0, 1) ** (1 / 2.2)
    if case == "night":
        from keras import ops

        from deblur.data import degrade

        deg = degrade.make({"kind": "shake", "size": 21.0})
        u = rng.uniform(size=4).astype(np.float32)
        p = deg.params(ops.convert_to_tensor(u))
        kernel = degrade.kernel_array(deg, {k: float(ops.convert_to_numpy(v)) for k, v in p.items()})
        linear = _filter(linear, kernel)
    out = np.clip(linear, 0, 1) ** (1 / 2.2) + rng.normal(0, 0.01, linear.shape).astype(np.float32)
    return _jpeg(out), ref.astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/photos"))
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--split", choices=("test", "train+val"), default="test",
                    help="the photos the cases are made from: the test photos (the benchmark), or the training and "
                         "validation photos (what triage's thresholds are set on: --split train+val --seed 900)")
    ap.add_argument("--out", type=Path, default=Path("docs"))
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"error: {args.data}: no such folder (the photos of ../shared/data/photos)")
    from deblur.api import builtin_restorer
    from deblur.data.sources import folder
    from deblur.imaging.imageio import read_image, to_float
    from deblur.restore.blind import BlindRestorer

    restorer, refiner = BlindRestorer(), builtin_restorer().refiner
    splits = folder.load(str(args.data), seed=42, val_split=0.2, test_split=0.2)
    names = splits.test.names if args.split == "test" else list(splits.train.names) + list(splits.val.names)
    rows, figures = [], {}
    for i, name in enumerate(names):
        sharp = to_float(read_image(args.data / f"{name}.jpg"))
        rng = np.random.default_rng([args.seed, i])
        for case in CASES:
            blurred, ref = make_case(case, sharp, rng)
            blurred = np.clip(blurred, 0, 1).astype(np.float32)
            t = time.perf_counter()
            out, outcome = restorer(blurred)
            row = {"photo": name, "case": case, "input": psnr(aligned_mse(blurred, ref)),
                   "without": psnr(aligned_mse(out, ref)), "reason": outcome.reason, "changed": outcome.changed,
                   "seconds": time.perf_counter() - t}
            refined = out
            if refiner is not None:
                refined = (BlindRestorer(kernel=outcome.estimate.kernel, refiner=refiner)(blurred)[0]
                           if outcome.changed and outcome.estimate is not None else blurred)
                row["with"] = psnr(aligned_mse(refined, ref))
            rows.append(row)
            print(f"{name[:14]:14s} {case:11s} in {row['input']:.2f} without {row['without']:.2f} "
                  f"with {row.get('with', float('nan')):.2f}  {outcome.reason}", flush=True)
            if case not in figures or row["changed"]:
                figures[case] = (blurred, out, refined)
    write(args, rows, figures)


def write(args: argparse.Namespace, rows: list[dict], figures: dict) -> None:
    (args.out / "figures").mkdir(parents=True, exist_ok=True)
    lines = ["# The built-in restorer on blur no single kernel explains, and on night shots", "",
             f"`python scripts/bench_hard_cases.py --data {args.data} --seed {args.seed} --split {args.split}` "
             f"({time.strftime('%Y-%m-%d')}): "
             + "the cases are in the script's docstring, made from the "
             + ("test photos of the photos folder (never trained or tuned on). " if args.split == "test" else
                "training and validation photos of the photos folder (what the thresholds are set on). ")
             + "PSNR (dB) as in [blind_benchmark.md](blind_benchmark.md): RGB, 8-bit, interior, best "
             "over integer shifts up to 3 px. *Without* is `deblur predict --no-refiner`, *with* is `deblur predict`.",
             "", "| case | n | input | without refiner | worst gain | with refiner | worst gain | changed | "
             "never worse than the input (target) |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for case in CASES:
        sel = [r for r in rows if r["case"] == case]
        worst = min(r["without"] - r["input"] for r in sel)
        has = "with" in sel[0]
        worst_with = min(r["with"] - r["input"] for r in sel) if has else worst
        ok = min(worst, worst_with) >= -0.005  # 8-bit rounding of an unchanged photo costs nothing; allow none
        lines.append(f"| {case} | {len(sel)} | {np.mean([r['input'] for r in sel]):.2f} | "
                     f"{np.mean([r['without'] for r in sel]):.2f} | {worst:+.2f} | "
                     + (f"{np.mean([r['with'] for r in sel]):.2f} | {worst_with:+.2f}" if has else "- | -")
                     + f" | {sum(r['changed'] for r in sel)}/{len(sel)} | {'met' if ok else '**missed**'} |")
    lines += ["", "| photo | case | input | without | with | what it did |", "| --- | --- | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r['photo']} | {r['case']} | {r['input']:.2f} | {r['without']:.2f} | "
                     + (f"{r['with']:.2f}" if "with" in r else "-") + f" | {r['reason']} |")
    lines += ["", "Figures (input | without refiner | with refiner), one per case:", ""]
    for case, (blurred, out, refined) in figures.items():
        gap = np.ones((blurred.shape[0], 6, 3), np.float32)
        fig = np.concatenate([blurred, gap, out, gap, refined], axis=1)
        scale = min(1.0, 1800 / fig.shape[1])
        fig = cv2.resize(fig, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        name = f"hard_{case}.jpg"
        cv2.imwrite(str(args.out / "figures" / name), (np.clip(fig, 0, 1) * 255).round().astype(np.uint8)[..., ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 85])
        lines.append(f"- {case}: [figures/{name}](figures/{name})")
    (args.out / "hard_cases.md").write_text("\n".join(lines) + "\n")
    (args.out / "hard_cases.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n".join(lines[:12]))


if __name__ == "__main__":
    main()
