"""What every data source returns: sharp images (and real blurred twins, when a dataset has them)
split into train, validation and test, with nothing shared between the splits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deblur.core.errors import ConfigError, DataError
from deblur.core.registry import Registry
from deblur.core.settings import DataConfig
from deblur.data.store import ImageStore
from deblur.imaging.imageio import convert_channels, resize

Images = list[np.ndarray] | np.ndarray | ImageStore


@dataclass
class ImageSet:
    """One split. `sharp[i]` is HxWxC uint8; `blurred[i]`, if present, is its real blurred twin.

    The images are a list, a stacked array, or an `ImageStore` (read from disk on demand); every
    method here works on all three without decoding a stored image.
    """

    sharp: Images
    names: list[str]
    blurred: Images | None = None

    def __post_init__(self) -> None:
        if self.blurred is not None and len(self.blurred) != len(self.sharp):
            raise ValueError("blurred and sharp lists differ in length")
        if len(self.names) != len(self.sharp):
            raise ValueError("names and images differ in length")

    def __len__(self) -> int:
        return len(self.sharp)

    def subset(self, indices: Sequence[int]) -> ImageSet:
        idx = list(indices)
        blurred = None if self.blurred is None else _pick(self.blurred, idx)
        return ImageSet(sharp=_pick(self.sharp, idx), names=[self.names[i] for i in idx], blurred=blurred)

    def map(self, fn: Callable[[np.ndarray], np.ndarray],
            shape_fn: Callable[[tuple[int, int, int]], tuple[int, int, int]] | None = None) -> ImageSet:
        """Apply `fn` to every image (sharp and blurred alike), keeping a stacked array stacked; a
        store applies it lazily, as each image is read (`shape_fn` gives the new shapes)."""
        def apply(images: Images) -> Images:
            if isinstance(images, ImageStore):
                return images.map(fn, shape_fn)
            out = [fn(im) for im in images]
            if out and all(o.shape == out[0].shape for o in out):
                return np.stack(out)
            return out

        if len(self) == 0:
            return self
        return ImageSet(sharp=apply(self.sharp), names=self.names,
                        blurred=None if self.blurred is None else apply(self.blurred))

    def shapes(self) -> list[tuple[int, int, int]]:
        """(h, w, c) of every sharp image, from headers for a store."""
        if isinstance(self.sharp, np.ndarray):
            return [tuple(self.sharp.shape[1:])] * len(self.sharp)
        if isinstance(self.sharp, ImageStore):
            return self.sharp.shapes()
        return [tuple(im.shape) for im in self.sharp]

    @property
    def streamed(self) -> bool:
        """Whether the images are read from disk on demand rather than held in memory."""
        return isinstance(self.sharp, ImageStore)

    def in_memory(self) -> ImageSet:
        """Every stored image decoded now (data.in_memory: true): lists, as sources returned before streaming."""
        def load(images: Images) -> Images:
            return list(images) if isinstance(images, ImageStore) else images

        return ImageSet(sharp=load(self.sharp), names=self.names,
                        blurred=None if self.blurred is None else load(self.blurred))

    @property
    def uniform_size(self) -> tuple[int, int] | None:
        """(H, W) if every image has the same size, else None."""
        if isinstance(self.sharp, np.ndarray):
            return tuple(self.sharp.shape[1:3])
        sizes = {s[:2] for s in self.shapes()}
        return sizes.pop() if len(sizes) == 1 else None

    @property
    def min_size(self) -> tuple[int, int]:
        shapes = self.shapes()
        return (min(s[0] for s in shapes), min(s[1] for s in shapes))


def _pick(images: Images, idx: list[int]) -> Images:
    if isinstance(images, np.ndarray):
        return images[idx]
    if isinstance(images, ImageStore):
        return images.subset(idx)
    return [images[i] for i in idx]


@dataclass
class Splits:
    train: ImageSet
    val: ImageSet
    test: ImageSet
    channels: int
    description: str
    paired: bool = False  # True when the blur is real (pairs), False when it is synthesised

    def get(self, split: str) -> ImageSet:
        return {"train": self.train, "val": self.val, "test": self.test}[split]


@dataclass(frozen=True)
class Source:
    """A registered data source.

    `load(path, seed=..., val_split=..., test_split=..., **options)` returns `Splits`;
    `options` is a function whose keyword parameters (names, types, defaults) define the options a
    config may set under `data.options`, so the config loader can check them before anything runs.
    """

    load: Callable[..., Splits]
    options: Callable[..., None]
    path: str  # "required", "optional" or "none"
    summary: str

    def check_path(self, path: str | None) -> None:
        if self.path == "required" and not path:
            raise ConfigError("data.path: this data source needs a path to the dataset")
        if self.path == "none" and path:
            raise ConfigError("data.path: this data source takes no path (remove it or set it to null)")


SOURCES: Registry[Source] = Registry("data source")


def split_indices(n: int, val_split: float, test_split: float, seed: int) -> tuple[list[int], ...]:
    """A deterministic shuffle-and-cut split: the same seed always gives the same three lists.

    Each non-zero fraction gets at least one item, so a tiny dataset still has a test set.
    """
    order = np.random.default_rng(seed).permutation(n).tolist()
    n_test = max(1, round(n * test_split)) if test_split > 0 and n >= 3 else 0
    n_val = max(1, round(n * val_split)) if val_split > 0 and n >= 3 else 0
    if n - n_test - n_val < 1:
        raise DataError(f"only {n} items: too few to split into train, validation and test")
    test = sorted(order[:n_test])
    val = sorted(order[n_test:n_test + n_val])
    train = sorted(order[n_test + n_val:])
    return train, val, test


def split_groups(groups: Sequence[str], val_split: float, test_split: float,
                 seed: int) -> tuple[list[int], list[int], list[int]]:
    """Split item indices so that every item of a group (a scene, a sequence) lands in one split.

    Near-duplicates across splits (the motion and defocus shot of one scene, neighbouring frames of
    one video) would let a model be scored on what it trained on.
    """
    keys = sorted(set(groups))
    parts = split_indices(len(keys), val_split, test_split, seed)
    where = {keys[k]: s for s, part in enumerate(parts) for k in part}
    out: tuple[list[int], list[int], list[int]] = ([], [], [])
    for i, g in enumerate(groups):
        out[where[g]].append(i)
    return out


def finalize(splits: Splits, channels: int | None, size: tuple[int, int] | None) -> Splits:
    """Apply the config's channel count and resize to every split, identically."""
    target = channels or splits.channels

    def fix(im: np.ndarray) -> np.ndarray:
        im = convert_channels(im, target)
        return resize(im, size) if size else im

    def fixed_shape(shape: tuple[int, int, int]) -> tuple[int, int, int]:
        return (*(size or shape[:2]), target)

    return Splits(train=splits.train.map(fix, fixed_shape), val=splits.val.map(fix, fixed_shape),
                  test=splits.test.map(fix, fixed_shape),
                  channels=target, description=splits.description, paired=splits.paired)


def check_sizes(images: ImageSet, crop: tuple[int, int] | None, key: str, batched: bool) -> None:
    """Fail before training starts, naming the smallest image, rather than mid-epoch.

    Whole images of different sizes can be scored one by one, but not batched for training.
    """
    if len(images) == 0:
        return
    if crop is None:
        if batched and images.uniform_size is None:
            raise ConfigError(f"{key}: the images differ in size; set {key} (or data.resize) so they can be batched")
        return
    small = images.min_size
    if small[0] < crop[0] or small[1] < crop[1]:
        raise DataError(f"{key}: {crop[0]}x{crop[1]} is larger than the smallest image ({small[0]}x{small[1]}); "
                        f"lower {key} or set data.resize")


def resolve_path(path: str | None, what: str) -> Path:
    if not path:
        raise ConfigError(f"data.path: set it to the {what}")
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError(f"{p}: not found (data.path should point to the {what})")
    return p


def describe_counts(name: str, splits: Splits, extra: str = "") -> str:
    return (f"{name}{extra}: {len(splits.train)} train, {len(splits.val)} val, "
            f"{len(splits.test)} test images")


def load_splits(data_cfg: DataConfig, seed: int) -> Splits:
    """Load the configured source and apply channels and resize; the single entry point for data."""
    from deblur.core.schema import as_size  # a leaf module: data never imports deblur.config

    source = SOURCES.get(data_cfg.source, "data.source")
    splits = source.load(data_cfg.path, seed=seed, val_split=data_cfg.val_split,
                         test_split=data_cfg.test_split, **data_cfg.options)
    if len(splits.train) == 0:
        raise DataError(f"{splits.description}: no training images")
    if data_cfg.in_memory:  # decode everything now, as before streaming
        splits = Splits(splits.train.in_memory(), splits.val.in_memory(), splits.test.in_memory(),
                        channels=splits.channels, description=splits.description, paired=splits.paired)
    return finalize(splits, data_cfg.channels, as_size(data_cfg.resize, "data.resize"))
