"""Before/after figures of genuinely blurred photos with the built-in restorer, kernels beside them.

For every photo of ../shared/data/real-blur (real camera shake, real blurred images with a published
method's kernel, dynamic scenes whose blur no single kernel explains, real defocus): the photo, what
`deblur predict --no-refiner` makes of it, what `deblur predict` makes of it (the refiner after the
deconvolution; left out when the install ships no refiner), and the kernel it used (for the `dwdn_*`
photos also the kernel their authors estimated). Written as docs/figures/blind_<name>.jpg (long side
at most 1800 px, JPEG 85, to keep the repository small) and a table of what the restorer said, docs/blind_figures.md.

    python scripts/blind_figures.py --data ../shared/data/real-blur
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from deblur.imaging.imageio import read_image
from deblur.restore.blind import BlindRestorer
from deblur.restore.kernels import load as load_kernel
from deblur.restore.kernels import to_image


def panel(kernel: np.ndarray | None, size: int, label: str) -> np.ndarray:
    box = np.full((size, size, 3), 32, np.uint8)
    if kernel is not None:
        pic = cv2.resize(to_image(kernel, 1), (size - 8, size - 8), interpolation=cv2.INTER_NEAREST)
        box[4:-4, 4:-4] = pic[..., None]
    cv2.putText(box, label, (4, size - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 200, 0), 1, cv2.LINE_AA)
    return box


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/real-blur"))
    ap.add_argument("--out", type=Path, default=Path("docs"))
    args = ap.parse_args()
    (args.out / "figures").mkdir(parents=True, exist_ok=True)
    from deblur.api import builtin_restorer

    restorer = BlindRestorer()
    refiner = builtin_restorer().refiner
    rows = ["# The built-in restorer on genuinely blurred photos", "",
            "`python scripts/blind_figures.py --data ../shared/data/real-blur`: each figure shows the photo, the "
            "result without the refiner (`--no-refiner`), the result with it (`deblur predict`), the kernel the "
            "restorer used and, where the photo's source published one, that method's kernel. No sharp reference "
            "exists, so there is no score: look at them.", "",
            "| photo | what it is | what the restorer did | seconds | figure |", "| --- | --- | --- | ---: | --- |"]
    kinds = {"selfdeblur": "real camera shake (Lai et al. 2016)", "dwdn": "real blur, published kernel (DWDN)",
             "deepdeblur": "dynamic scene (GoPro): blur varies", "restormer": "real defocus"}
    for src in sorted(args.data.glob("*.png")):
        image = read_image(src)
        t = time.perf_counter()
        out, outcome = restorer(image)
        seconds = time.perf_counter() - t
        results = [out]
        if refiner is not None:  # the same estimate, then the refiner: what `deblur predict` writes
            results.append(BlindRestorer(kernel=outcome.estimate.kernel, refiner=refiner)(image)[0]
                           if outcome.changed and outcome.estimate is not None else image)
        h = image.shape[0]
        size = max(96, min(200, h // 3))
        used = outcome.estimate.kernel if outcome.changed and outcome.estimate is not None else None
        panels = [panel(used, size, "deblur")]
        published = args.data / "kernels" / f"{src.stem}_kernel.png"
        if published.exists():
            panels.append(panel(load_kernel(published), size, "published"))
        column = np.concatenate(panels, axis=0)
        column = np.pad(column, ((0, max(0, h - column.shape[0])), (0, 0), (0, 0)))[:h]
        gap = np.full((h, 6, 3), 255, np.uint8)
        fig = np.concatenate([image[..., :3], *[p for r in results for p in (gap, r[..., :3])], gap, column], axis=1)
        scale = min(1.0, 1800 / max(fig.shape[:2]))
        if scale < 1:
            fig = cv2.resize(fig, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        name = f"blind_{src.stem}.jpg"
        cv2.imwrite(str(args.out / "figures" / name), fig[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
        kind = next((v for k, v in kinds.items() if src.stem.startswith(k)), "")
        rows.append(f"| {src.name} | {kind} | {outcome.reason} | {seconds:.1f} | [figure](figures/{name}) |")
        print(rows[-1], flush=True)
    (args.out / "blind_figures.md").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
