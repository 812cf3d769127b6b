"""The embedded sample set: real photographs that scikit-image ships inside its wheel.

It makes a fresh install train and evaluate offline with no download. The held-back images are
named (not drawn by seed) so anyone can see which photos a quick-start score is measured on.
Grayscale photos keep one channel here; the run's `data.channels` decides what the model sees.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from deblur.core.errors import DataError
from deblur.data.base import SOURCES, ImageSet, Source, Splits, describe_counts


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def read() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        if isinstance(image, tuple):  # stereo_motorcycle returns (left, right, disparity)
            image = image[0]
        return image if image.ndim == 3 else image[:, :, None]

    return read


# Real photographs only: no synthetic charts, no binary masks, no images that ship already blurred
# (`clock` is motion-blurred by design), and only one view of the stereo pair.
COLOR = ("astronaut", "chelsea", "coffee", "rocket", "stereo_motorcycle", "hubble_deep_field",
         "retina", "immunohistochemistry")
GRAY = ("camera", "moon", "coins", "brick", "grass", "gravel", "page", "text", "cell")
PHOTOS: dict[str, Callable[[], np.ndarray]] = {n: _skimage(n) for n in COLOR + GRAY}


def read_sample(name: str) -> np.ndarray:
    if name not in PHOTOS:
        raise DataError(f"unknown sample photo {name!r}; choose one of: {', '.join(sorted(PHOTOS))}")
    return np.ascontiguousarray(PHOTOS[name]())


def options(val_images: Sequence[str] = ("rocket",), test_images: Sequence[str] = ("chelsea", "coffee"),
            include_gray: bool = True) -> None:
    """val_images / test_images: photos held back from training; include_gray: train on gray photos too."""


def load(path: str | None, *, seed: int, val_split: float, test_split: float,
         val_images: Sequence[str] = ("rocket",), test_images: Sequence[str] = ("chelsea", "coffee"),
         include_gray: bool = True) -> Splits:
    del path, seed, val_split, test_split  # the split is by name, stated in the config
    for name in (*val_images, *test_images):
        if name not in PHOTOS:
            raise DataError(f"data.options: unknown sample photo {name!r}; choose from: {', '.join(sorted(PHOTOS))}")
    overlap = set(val_images) & set(test_images)
    if overlap:
        raise DataError(f"data.options: {', '.join(sorted(overlap))} is in both val_images and test_images")
    held = set(val_images) | set(test_images)
    pool = COLOR + (GRAY if include_gray else ())
    train_names = [n for n in pool if n not in held]

    def subset(names: Sequence[str]) -> ImageSet:
        return ImageSet(sharp=[read_sample(n) for n in names], names=list(names))

    splits = Splits(subset(train_names), subset(list(val_images)), subset(list(test_images)), channels=3,
                    description="")
    splits.description = describe_counts(
        "samples", splits, f" (scikit-image photos; test: {', '.join(test_images)}; val: {', '.join(val_images)})")
    return splits


SOURCES.register("samples")(Source(load=load, options=options, path="none",
                                   summary="real photographs bundled with scikit-image (offline quick start)"))
