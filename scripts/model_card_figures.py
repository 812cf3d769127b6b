"""Before/after figures of the built-in model on real photos it never trained on, with their scores.

    python scripts/model_card_figures.py [--data ../shared/data] [--checkpoint src/deblur/pretrained/default.keras]

Each case blurs a held-back test photo (the photos split of configs/default_model.yaml, seed 42, or a
held-back sample photo) with `deblur blur`'s own operator and fixed parameters, restores the whole
photo as `deblur predict` does (512-pixel tiles), and scores blurred and restored against the sharp
original on deblur's metric card (8-bit, RGB, PSNR capped at 60 dB). The figure shows a crop as
blurred | restored | sharp. Figures go to docs/figures/default_*.png; the scores are printed and
written to docs/figures/default_model_figures.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "figures"

# (figure name, image: "photos/NAME" or "sample/NAME", blur spec for deblur.data.blur.blur_spec, seed, crop y, x, h, w)
CASES = [
    ("shake_friends", "photos/friends_by_Aitzol_Berasategi.jpg",
     {"kind": "shake", "size": 21.0, "noise": 0.003, "shot": 0.0001, "jpeg": 90.0}, 1, (300, 150, 360, 480)),
    ("shake_greentock", "photos/greentock_by_Peter_Nerlich.jpg",
     {"kind": "shake", "size": 15.0, "noise": 0.003, "jpeg": 90.0}, 4, (250, 400, 360, 480)),
    ("motion_yellowflower", "photos/YellowFlower.jpg",
     {"kind": "motion", "length": 15.0, "angle": 30.0, "noise": 0.003}, 0, (200, 400, 360, 480)),
    ("gaussian_chelsea", "sample/chelsea", {"kind": "gaussian", "sigma": 2.0}, 0, (0, 0, 300, 451)),
    ("defocus_coffee", "sample/coffee", {"kind": "defocus", "radius": 4.0, "noise": 0.003}, 0, (0, 0, 400, 600)),
    ("sharp_analogpattern", "photos/analogpattern_by_Peter_Nerlich.jpg", {"kind": "gaussian", "sigma": 0.0}, 0,
     (300, 400, 360, 480)),
]


def _load(image: str, data: Path) -> np.ndarray:
    from deblur.data.sources.samples import read_sample
    from deblur.imaging.imageio import read_image

    kind, name = image.split("/", 1)
    return read_sample(name) if kind == "sample" else read_image(data / kind / name)


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 26), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "src" / "deblur" / "pretrained" / "default.keras")
    args = parser.parse_args()
    from deblur.data.blur import blur_image, blur_spec
    from deblur.imaging.metrics import score_image
    from deblur.restore.loading import load_model
    from deblur.restore.predict import restore_image

    model = load_model(args.checkpoint)
    OUT.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, image, spec, seed, (y, x, h, w) in CASES:
        sharp = _load(image, args.data)
        params = {k: v for k, v in spec.items() if k not in ("kind", "noise", "shot", "jpeg")}
        blurred = blur_image(sharp, blur_spec(spec["kind"], spec.get("noise", 0.0), spec.get("shot", 0.0),
                                              spec.get("jpeg"), **params), seed=seed)
        restored = restore_image(model, blurred)
        s = {k: score_image(sharp / 255.0, v / 255.0) for k, v in (("blurred", blurred), ("restored", restored))}
        results[name] = {"image": image, "blur": spec, "seed": seed,
                         **{f"{k}_{m}": round(float(v[m]), 4) for k, v in s.items() for m in ("psnr", "ssim")}}
        crop = (slice(y, y + h), slice(x, x + w))
        panels = [_label(blurred[crop], f"blurred {s['blurred']['psnr']:.2f} dB"),
                  _label(restored[crop], f"restored {s['restored']['psnr']:.2f} dB"),
                  _label(sharp[crop], "sharp")]
        cv2.imwrite(str(OUT / f"default_{name}.png"), np.concatenate(panels, axis=1)[..., ::-1])
        print(f"{name}: {image} {spec} seed {seed}: PSNR {s['blurred']['psnr']:.2f} -> {s['restored']['psnr']:.2f} dB, "
              f"SSIM {s['blurred']['ssim']:.3f} -> {s['restored']['ssim']:.3f}", flush=True)
    (OUT / "default_model_figures.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
