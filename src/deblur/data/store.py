"""Images read from disk on demand: a dataset of any size, never decoded all at once.

An `ImageStore` is a read-only sequence of HxWxC uint8 images. `store[i]` decodes image `i` when
asked (a `DataError` naming the file when it cannot); `shape(i)` and `label(i)` answer without
decoding, so listing a dataset, splitting it and checking crop sizes read headers only. A store is
what `ImageSet.sharp` / `.blurred` hold for file-based sources (folder, pairs, kaggle) and for packed
shards; small array datasets stay NumPy arrays.

A new kind of store subclasses `ImageStore` and implements `__len__`, `read`, `shape` and `label`;
`map` (lazy per-image transforms, e.g. `finalize`'s channels + resize) and `subset` come for free.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import overload

import numpy as np

from deblur.imaging.imageio import read_image

Shape = tuple[int, int, int]
PROBE_THREADS = 8


def to_uint8_rgb(image: np.ndarray) -> np.ndarray:
    """Training runs on 8-bit data: 16-bit files are scaled down, alpha is dropped."""
    if image.dtype == np.uint16:
        image = (image.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    return image[:, :, :3] if image.shape[2] == 4 else image


class ImageStore(Sequence[np.ndarray], abc.ABC):
    """A sequence of images decoded on demand (see the module docstring)."""

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def read(self, i: int) -> np.ndarray:
        """Image `i` as HxWxC uint8 (C = 1 or 3); a DataError naming the file if unreadable."""

    @abc.abstractmethod
    def shape(self, i: int) -> Shape:
        """(h, w, c) of `self[i]`, without decoding it."""

    @abc.abstractmethod
    def label(self, i: int) -> str:
        """What names image `i` in a message: its file path, or a shard and index."""

    @overload
    def __getitem__(self, i: int) -> np.ndarray: ...
    @overload
    def __getitem__(self, i: slice) -> ImageStore: ...

    def __getitem__(self, i: int | slice) -> np.ndarray | ImageStore:
        if isinstance(i, slice):
            return self.subset(range(len(self))[i])
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"image {i} of {n}")
        return self.read(int(i) % n)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self.read(i) for i in range(len(self)))

    def shapes(self) -> list[Shape]:
        return [self.shape(i) for i in range(len(self))]

    def subset(self, indices: Sequence[int]) -> ImageStore:
        return SubsetStore(self, list(indices))

    def map(self, fn: Callable[[np.ndarray], np.ndarray],
            shape_fn: Callable[[Shape], Shape] | None = None) -> ImageStore:
        """`fn` applied to each image when it is read; `shape_fn` gives the new shape from the old one
        (without it, `shape` decodes the image to find out)."""
        return MappedStore(self, fn, shape_fn)


class FileStore(ImageStore):
    """Image files, read by `deblur.imaging.imageio.read_image` when asked; shapes from their headers."""

    def __init__(self, paths: Sequence[str | Path], shapes: Sequence[Shape] | None = None) -> None:
        self.paths = [Path(p) for p in paths]
        self._shapes: list[Shape | None] = list(shapes) if shapes is not None else [None] * len(self.paths)

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, i: int) -> np.ndarray:
        return to_uint8_rgb(read_image(self.paths[i]))

    def shape(self, i: int) -> Shape:
        known = self._shapes[i]
        if known is None:
            from deblur.data.headers import probe

            known = probe(self.paths[i])
            if known is None:  # a header only the decoder understands (some TIFFs): decode this one
                known = tuple(self.read(i).shape)
            self._shapes[i] = known
        return known

    def label(self, i: int) -> str:
        return str(self.paths[i])

    def shapes(self) -> list[Shape]:
        """Every shape, the unknown ones probed by a few threads (file opens wait on the disk, not the CPU)."""
        missing = [i for i, s in enumerate(self._shapes) if s is None]
        if len(missing) > 1:
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(PROBE_THREADS) as pool:
                list(pool.map(self.shape, missing))
        return [self.shape(i) for i in range(len(self))]


class SubsetStore(ImageStore):
    def __init__(self, base: ImageStore, indices: list[int]) -> None:
        self.base, self.indices = base, indices

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, i: int) -> np.ndarray:
        return self.base.read(self.indices[i])

    def shape(self, i: int) -> Shape:
        return self.base.shape(self.indices[i])

    def label(self, i: int) -> str:
        return self.base.label(self.indices[i])

    def subset(self, indices: Sequence[int]) -> ImageStore:
        return SubsetStore(self.base, [self.indices[i] for i in indices])  # no chains of wrappers

    def shapes(self) -> list[Shape]:
        every = self.base.shapes()  # in one go: a FileStore probes its headers in parallel
        return [every[j] for j in self.indices]


class MappedStore(ImageStore):
    def __init__(self, base: ImageStore, fn: Callable[[np.ndarray], np.ndarray],
                 shape_fn: Callable[[Shape], Shape] | None) -> None:
        self.base, self.fn, self.shape_fn = base, fn, shape_fn

    def __len__(self) -> int:
        return len(self.base)

    def read(self, i: int) -> np.ndarray:
        return self.fn(self.base.read(i))

    def shape(self, i: int) -> Shape:
        if self.shape_fn is None:
            return tuple(self.read(i).shape)
        return self.shape_fn(self.base.shape(i))

    def label(self, i: int) -> str:
        return self.base.label(i)

    def subset(self, indices: Sequence[int]) -> ImageStore:
        return MappedStore(self.base.subset(indices), self.fn, self.shape_fn)

    def shapes(self) -> list[Shape]:
        if self.shape_fn is None:
            return super().shapes()
        return [self.shape_fn(shape) for shape in self.base.shapes()]


class ChainStore(ImageStore):
    """Images picked from several stores, in order: a `combined` source's parts as one set."""

    def __init__(self, refs: Sequence[tuple[ImageStore, int]]) -> None:
        self.refs = list(refs)

    def __len__(self) -> int:
        return len(self.refs)

    def read(self, i: int) -> np.ndarray:
        store, j = self.refs[i]
        return store.read(j)

    def shape(self, i: int) -> Shape:
        store, j = self.refs[i]
        return store.shape(j)

    def label(self, i: int) -> str:
        store, j = self.refs[i]
        return store.label(j)


class ArrayStore(ImageStore):
    """Images already in memory (a list or a stacked array), seen through the store interface."""

    def __init__(self, images: Sequence[np.ndarray] | np.ndarray) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def read(self, i: int) -> np.ndarray:
        return self.images[i]

    def shape(self, i: int) -> Shape:
        return tuple(self.images[i].shape)

    def label(self, i: int) -> str:
        return f"image {i}"


def shape_of(images: Sequence[np.ndarray] | np.ndarray | ImageStore, i: int) -> Shape:
    """(h, w, c) of image `i` of a list, an array or a store, decoding nothing."""
    if isinstance(images, ImageStore):
        return images.shape(i)
    return tuple(images[i].shape)


def label_of(images: Sequence[np.ndarray] | np.ndarray | ImageStore, i: int) -> str:
    return images.label(i) if isinstance(images, ImageStore) else f"image {i}"
