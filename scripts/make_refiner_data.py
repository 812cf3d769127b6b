"""Make the refiner's training pairs (deblur.restore.refiner_data) from real photos only.

    python scripts/make_refiner_data.py --photos ../shared/data/photos --out data/refiner --draws 12

A later batch adds draws under new names (and new random draws, with another --seed), into a folder
of its own that is then merged with the first (their file names never collide):

    python scripts/make_refiner_data.py --out data/refiner-2 --seed 8 --first-draw 16 --test-draws 0

Which photos go where (nothing of the blind benchmark's test split is ever used):
  train/  the training photos of ../shared/data/photos (the `folder` source's split by seed 42, 20 %
          validation, 20 % test, as scripts/bench_blind.py splits them) and scikit-image's
          stereo_motorcycle photo (its other camera photos are held back by the samples benchmark)
          and the sharp shots of the Kaggle blur dataset's training scenes (`--kaggle`; the
          kaggle_blur source's split by seed 42, 20 % validation, 20 % test, as configs/kaggle_*.yaml
          and the Kaggle protocol of BENCHMARKS.md split them);
          the refiner's validation photos are split off this folder by photo at training
          time (data.val_split)
  test/   the photos of the blind benchmark's validation split: the refiner's own test set
Each photo gets `--draws` examples (blur, noise, JPEG, kernel source drawn per example, seeded per
photo). `--jobs` processes share the work; the output is the same for any number of jobs.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

# the colour samples that are camera photos and not held back by the samples benchmark (chelsea, coffee,
# rocket, astronaut); the others are microscope and telescope images
CAMERA_SAMPLES = ("stereo_motorcycle",)


def photo_lists(photos: Path, kaggle: Path | None = None) -> dict[str, list[tuple[str, str]]]:
    """{split: [(name, source)]}: source is a file path or `sample:<name>`."""
    from deblur.data.sources import folder

    splits = folder.load(str(photos), seed=42, val_split=0.2, test_split=0.2)
    train = [(n, str(photos / f"{n}.jpg")) for n in splits.train.names]
    train += [(f"sample_{n}", f"sample:{n}") for n in CAMERA_SAMPLES]
    if kaggle is not None:
        train += kaggle_train_scenes(kaggle)
    return {"train": train, "test": [(n, str(photos / f"{n}.jpg")) for n in splits.val.names]}


def kaggle_train_scenes(root: Path) -> list[tuple[str, str]]:
    """The sharp shot of every Kaggle training scene (one per scene: its motion and defocus pairs share it)."""
    from deblur.data.sources import kaggle_blur

    train = kaggle_blur.load(str(root), seed=42, val_split=0.2, test_split=0.2).train
    scenes = {name.rsplit("_", 1)[0] for name in train.names}  # <n>_<DEVICE>_<M|F> -> <n>_<DEVICE>
    sharp = sorted(p for p in (root / kaggle_blur.FOLDERS["S"]).iterdir() if p.stem.rsplit("_", 1)[0] in scenes)
    return [(f"kaggle_{p.stem}", str(p)) for p in sharp]


def _read(source: str) -> np.ndarray:
    from deblur.data.sources import samples
    from deblur.imaging.imageio import read_image, to_float

    image = samples.read_sample(source[7:]) if source.startswith("sample:") else read_image(source)
    image = image[:, :, :3] if image.ndim == 3 else np.repeat(image[:, :, None], 3, axis=2)
    return to_float(image)


def one_photo(job: tuple[int, str, str, Path, int, int, int]) -> str:
    from deblur.restore import refiner_data

    index, name, source, root, draws, seed, first = job
    sharp = _read(source)
    rng = np.random.default_rng([seed, index])
    t = time.perf_counter()
    kinds = []
    for d in range(draws):
        ex = refiner_data.make_example(name, sharp, rng)
        refiner_data.write_pair(root, ex, first + d)
        kinds.append(f"{ex.kind}/{ex.source}")
    return f"{name}: {draws} examples in {time.perf_counter() - t:.0f} s ({', '.join(kinds)})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=Path("../shared/data/photos"))
    ap.add_argument("--out", type=Path, default=Path("data/refiner"))
    ap.add_argument("--draws", type=int, default=12)
    ap.add_argument("--test-draws", type=int, default=4)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--first-draw", type=int, default=0, help="number of the first draw of each photo "
                    "(a later batch starts after the earlier one's, so the two can be merged)")
    ap.add_argument("--kaggle", type=Path, default=Path("../shared/data/kaggle-blur-subset"),
                    help="Kaggle blur dataset whose training scenes' sharp shots join train/ ('none': leave out)")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    if not args.photos.is_dir():
        sys.exit(f"error: {args.photos}: no such folder (the photos of ../shared/data/photos)")
    kaggle = None if str(args.kaggle) == "none" else args.kaggle
    if kaggle is not None and not kaggle.is_dir():
        sys.exit(f"error: {kaggle}: no such folder (the Kaggle blur dataset; --kaggle none leaves it out)")
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"error: {args.out} is not empty; choose another --out or remove it")
    jobs = []
    for split, items in photo_lists(args.photos, kaggle).items():
        draws = args.draws if split == "train" else args.test_draws
        seed = args.seed if split == "train" else args.seed + 1
        if draws > 0:
            jobs += [(i, name, src, args.out / split, draws, seed, args.first_draw)
                     for i, (name, src) in enumerate(items)]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for n, line in enumerate(pool.map(one_photo, jobs), 1):
            print(f"{n}/{len(jobs)} {line}", flush=True)


if __name__ == "__main__":
    main()
