"""Speed and memory of the whole `deblur predict` command with the built-in restorer.

Makes camera-shaken JPEGs of 1, 12 and 24 megapixels from a photo of ../shared/data/photos (resized
up with Lanczos, then deblur's camera shake of 1/60 of the long side, read noise 0.003, JPEG 90), and
runs `deblur predict` on each in a fresh process under `/usr/bin/time -v`: wall time (the whole
command: start-up, reading, estimation, deconvolution, the refiner, writing) and peak resident
memory; then the same with `--no-refiner` (when the install ships a refiner), so its cost shows.

    python scripts/bench_blind_speed.py --photo ../shared/data/photos/Wine_by_Jakkub_Mede.jpg
Run it on an otherwise idle machine; it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

SIZES = {"1 MP": (1000, 1000), "12 MP": (4000, 3000), "24 MP": (6000, 4000)}


def shaken(photo: Path, size: tuple[int, int], out: Path) -> None:
    from deblur.restore import kernels as K

    img = cv2.imread(str(photo))
    img = cv2.resize(img, size, interpolation=cv2.INTER_LANCZOS4).astype(np.float32) / 255.0
    length = max(size) / 60
    k = K.line(length, 30.0, K.odd(length + 2)).astype(np.float32)
    img = cv2.filter2D(img, -1, k[::-1, ::-1], borderType=cv2.BORDER_REFLECT)
    img += np.random.default_rng(0).normal(0, 0.003, img.shape).astype(np.float32)
    cv2.imwrite(str(out), np.clip(img * 255, 0, 255).round().astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photo", type=Path, default=Path("../shared/data/photos/Wine_by_Jakkub_Mede.jpg"))
    args = ap.parse_args()
    from deblur.pretrained import refiner_checkpoint

    deblur = [sys.executable, "-m", "deblur"]
    variants = [[], ["--no-refiner"]] if refiner_checkpoint() is not None else [[]]
    print("| photo | command | wall s | peak RSS MiB | what predict said |\n| --- | --- | ---: | ---: | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for label, size in SIZES.items():
            src = Path(tmp) / f"{label.replace(' ', '')}.jpg"
            shaken(args.photo, size, src)
            for extra in variants:
                cmd = ["/usr/bin/time", "-v", *deblur, "predict", str(src), "-o", str(Path(tmp) / "out"),
                       "--overwrite", *extra]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    sys.exit(done.stderr[-2000:])
                wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", done.stderr)
                assert wall is not None
                seconds = int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3))
                rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
                assert rss is not None
                said = next((line for line in done.stderr.splitlines() if line.startswith("note:")), "")
                print(f"| {label} ({size[0]}x{size[1]}) | predict {' '.join(extra)} | {seconds:.1f} | "
                      f"{int(rss.group(1)) / 1024:.0f} | {said} |", flush=True)


if __name__ == "__main__":
    main()
