"""The Keras input pipeline: `keras.utils.PyDataset`s that run on every backend and need no TensorFlow.

The host does only what must happen per image: pick an image, a crop and a flip, slice it out (with
the kernel's margin each side) and draw the blur's uniform numbers. The blur itself is applied on
the device by `deblur.data.on_device.Degrade`, batched. Every draw is keyed by (seed, batch number),
so the batches are the same whatever the number of worker threads or the order they finish in.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import keras
import numpy as np

from deblur.core.errors import DataError
from deblur.core.schema import as_size
from deblur.core.settings import DataConfig
from deblur.data.base import ImageSet, check_sizes
from deblur.data.degrade import N_UNIFORMS, train_degradations
from deblur.data.on_device import margin_of
from deblur.data.skips import SKIPS, failed_label
from deblur.data.store import shape_of


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 1) - 1))


def _window(image: np.ndarray, top: int, left: int, h: int, w: int, m: int) -> np.ndarray:
    """image[top - m: top + h + m, left - m: left + w + m], reflected (as BORDER_REFLECT_101) where outside."""
    H, W = image.shape[:2]
    t, b = max(0, top - m), min(H, top + h + m)
    lft, r = max(0, left - m), min(W, left + w + m)
    pads = ((t - (top - m), top + h + m - b), (lft - (left - m), left + w + m - r), (0, 0))
    part = image[t:b, lft:r]
    return np.pad(part, pads, mode="reflect") if any(p for pair in pads[:2] for p in pair) else part


class TrainBatches(keras.utils.PyDataset):
    """Training batches: x = {"image", "u", "variant"} for `Degrade`, y = the sharp crop.

    The stream never ends (Keras takes `steps_per_epoch` from `steps`), so batch number `i` alone
    fixes its content: epoch `i // steps` is a fresh shuffle of every (image, variant, repeat).
    """

    def __init__(self, images: ImageSet, data_cfg: DataConfig, seed: int, paired: bool,
                 steps_per_epoch: int | None = None, workers: int | None = None) -> None:
        super().__init__(workers=workers or default_workers(), use_multiprocessing=False)
        self.crop = as_size(data_cfg.crop, "data.crop")
        check_sizes(images, self.crop, "data.crop", batched=True)
        self.images, self.seed, self.paired, self.flip = images, seed, paired, data_cfg.flip
        self.degs = [] if paired else train_degradations(data_cfg)
        self.variants = max(1, len(self.degs))
        self.margin = margin_of(self.degs)
        self.batch = data_cfg.batch_size
        self.count = len(images) * self.variants * data_cfg.crops_per_image
        self.full_epochs = steps_per_epoch is None
        self.steps = steps_per_epoch or math.ceil(self.count / self.batch)
        self.channels = int(shape_of(images.sharp, 0)[-1])
        self._orders: dict[int, np.ndarray] = {}

    @property
    def num_batches(self) -> None:
        return None  # endless: `steps` batches make an epoch

    def _order(self, epoch: int) -> np.ndarray:
        """Epoch `epoch`'s shuffled elements (image * variants + variant), each `crops_per_image` times."""
        cached = self._orders.get(epoch)
        if cached is None:
            order = np.random.default_rng([self.seed, 1, epoch]).permutation(self.count)
            cached = order % (len(self.images) * self.variants)
            self._orders = {epoch: cached}  # one epoch kept; a thread racing here only recomputes
        return cached

    def _elements(self, i: int) -> np.ndarray:
        if self.full_epochs:  # each epoch is one pass; its last batch may be short
            epoch, b = divmod(i, self.steps)
            return self._order(epoch)[b * self.batch:(b + 1) * self.batch]
        positions = np.arange(i * self.batch, (i + 1) * self.batch)
        passes = positions // self.count
        return np.array([self._order(int(p))[q] for p, q in zip(passes, positions % self.count, strict=True)])

    def _read(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(sharp, the image crops are cut from) of image `k`, or of the next readable one: an image on
        disk that cannot be read any more is skipped (named once, counted), never a crash mid-run."""
        n, sharps, blurreds = len(self.images), self.images.sharp, self.images.blurred
        for j in ((k + d) % n for d in range(n)):
            try:
                sharp = sharps[j]
                return sharp, (blurreds[j] if self.paired else sharp)  # type: ignore[index]
            except DataError as exc:
                SKIPS.record(failed_label(exc, [sharps, blurreds], j), str(exc))
        raise DataError("no image of the training set can be read any more")

    def __getitem__(self, i: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        rng = np.random.default_rng([self.seed, 2, i])
        elements = self._elements(i)
        m = self.margin
        windows, targets = [], []
        for e in elements:
            k = int(e) // self.variants
            sharp, source = self._read(k)
            h, w = self.crop or source.shape[:2]
            top = int(rng.integers(0, source.shape[0] - h + 1))
            left = int(rng.integers(0, source.shape[1] - w + 1))
            flip = self.flip and rng.random() < 0.5
            win = _window(source, top, left, h, w, m)
            target = sharp[top:top + h, left:left + w]
            if flip:
                win, target = win[:, ::-1], target[:, ::-1]
            windows.append(win)
            targets.append(target)
        n = len(elements)
        # with real twins there are no synthetic degradations: variant 0 is then Degrade's "as given"
        variant = np.zeros(n, np.int32) if self.paired else (elements % self.variants).astype(np.int32)
        x = {"image": np.stack(windows).astype(np.float32) / 255.0,
             "u": rng.random((n, N_UNIFORMS), dtype=np.float32), "variant": variant}
        return x, np.stack(targets).astype(np.float32) / 255.0


class PairBatches(keras.utils.PyDataset):
    """Fixed (blurred, sharp) batches, e.g. validation, fed through `Degrade` unchanged ("as given")."""

    def __init__(self, pairs: Sequence[tuple[np.ndarray, np.ndarray]], margin: int, as_given: int) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.pairs, self.margin, self.as_given = pairs, margin, as_given

    @property
    def num_batches(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        blurred, sharp = self.pairs[i]
        m, n = self.margin, len(blurred)
        image = np.pad(blurred, ((0, 0), (m, m), (m, m), (0, 0)), mode="reflect") if m else blurred
        return ({"image": image, "u": np.zeros((n, N_UNIFORMS), np.float32),
                 "variant": np.full(n, self.as_given, np.int32)}, sharp)
