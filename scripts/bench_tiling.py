#!/usr/bin/env python3
"""What tiling costs: `deblur predict`'s restore with the default tiles against the whole image at once.

    python scripts/bench_tiling.py                      # built-in model, 4 images of 1024x1024, median of 5
    python scripts/bench_tiling.py --runs 1 --images 1  # a quick check that it works

Each run restores the same synthetic photos (smooth noise, seeded) with `--tile 0` and with the
tile bound (`deblur.restore.predict.DEFAULT_TILE`, `DEFAULT_OVERLAP`), alternating so that drift in the
machine's speed hits both; the first pass of each is a warm-up (Keras traces once per tile shape)
and not counted. It prints the layout `deblur.imaging.tiling.plan_layout` chooses, the pixel overhead
(pixels restored beyond the image's own) and the time overhead (tiled / whole - 1), and the pixel
overhead of the layouts for typical photo sizes. Timings need a quiet machine: nothing else running.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

PHOTO_SIZES = [(1024, 1024), (1080, 1920), (3000, 4000), (4000, 6000)]  # height x width


def photos(count: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Photo-like uint8 RGB images: noise smoothed at two scales, so the model has edges to work on."""
    import cv2

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        noise = rng.random((size, size, 3), dtype=np.float32)
        image = 0.6 * cv2.GaussianBlur(noise, (0, 0), 8) + 0.4 * cv2.GaussianBlur(noise, (0, 0), 1.5)
        image = (image - image.min()) / (image.max() - image.min())
        out.append((image * 255).round().astype(np.uint8))
    return out


def _pad(length: int, multiple: int) -> int:
    return -(-length // multiple) * multiple


def layout_summary(height: int, width: int, tile: int, overlap: int, multiple: int) -> dict[str, Any]:
    from deblur.imaging.tiling import plan_layout

    layout = plan_layout(_pad(height, multiple), _pad(width, multiple), tile, overlap, multiple)
    return {"size": f"{width}x{height}", "tiles": layout.tiles,
            "tile": f"{layout.tile_shape[1]}x{layout.tile_shape[0]}", "pixel_overhead": round(layout.overhead, 4)}


def bench(model: Any, images: list[np.ndarray], runs: int, tile: int, overlap: int) -> dict[str, float]:
    """Median seconds to restore all `images` whole and tiled, over `runs` timed passes each."""
    from deblur.restore.predict import restore_image

    def one_pass(t: int) -> float:
        start = time.perf_counter()
        for image in images:
            restore_image(model, image, t, overlap)
        return time.perf_counter() - start

    one_pass(0), one_pass(tile)  # warm-up: tracing for each input shape
    whole, tiled = [], []
    for _ in range(runs):
        whole.append(one_pass(0))
        tiled.append(one_pass(tile))
    return {"whole_s": statistics.median(whole), "tiled_s": statistics.median(tiled),
            "whole_min_s": min(whole), "tiled_min_s": min(tiled)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from deblur.restore.predict import DEFAULT_OVERLAP, DEFAULT_TILE

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=None, help="a .keras model [default: the built-in one]")
    p.add_argument("--runs", type=int, default=5, help="timed passes of each mode (median reported)")
    p.add_argument("--images", type=int, default=4, help="images per pass")
    p.add_argument("--size", type=int, default=1024, help="side of the square test images")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE, help="the tile bound, as deblur predict --tile")
    p.add_argument("--overlap", type=int, default=DEFAULT_OVERLAP)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)

    from deblur.models import required_multiple
    from deblur.pretrained import default_checkpoint
    from deblur.restore.loading import load_model

    model = load_model(args.checkpoint or default_checkpoint())
    multiple = required_multiple(model)
    times = bench(model, photos(args.images, args.size), args.runs, args.tile, args.overlap)
    megapixels = args.images * args.size**2 / 1e6
    result = {
        "model": str(args.checkpoint or "built-in"), "multiple": multiple, "runs": args.runs, "images": args.images,
        "tile": args.tile, "overlap": args.overlap,
        "layout": layout_summary(args.size, args.size, args.tile, args.overlap, multiple),
        **{k: round(v, 3) for k, v in times.items()},
        "whole_mp_per_s": round(megapixels / times["whole_s"], 3),
        "tiled_mp_per_s": round(megapixels / times["tiled_s"], 3),
        "time_overhead": round(times["tiled_s"] / times["whole_s"] - 1, 4),
        "photo_layouts": [layout_summary(h, w, args.tile, args.overlap, multiple) for h, w in PHOTO_SIZES],
    }
    lay = result["layout"]
    print(f"{args.images} images of {args.size}x{args.size}, median of {args.runs}: whole {times['whole_s']:.2f} s "
          f"({result['whole_mp_per_s']} MP/s), tiled (--tile {args.tile} --overlap {args.overlap}: {lay['tiles']} "
          f"tile(s) of {lay['tile']}) {times['tiled_s']:.2f} s ({result['tiled_mp_per_s']} MP/s)")
    print(f"time overhead {result['time_overhead']:+.1%}, pixel overhead {lay['pixel_overhead']:+.1%}")
    for row in result["photo_layouts"]:
        print(f"  {row['size']:>10}: {row['tiles']:>3} tiles of {row['tile']:>7}, pixel overhead "
              f"{row['pixel_overhead']:+.1%}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
