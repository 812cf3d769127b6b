"""What every engine is: a callable on image batches plus the facts the restore loop needs.

An engine runs one model on N x H x W x C float32 batches in [0, 1] and returns the same shape. It
does not pad or resize: `deblur.predict.restore_batch` pads to `multiple` (or resizes to
`fixed_size`) first, the same way for every runtime, so all engines restore images identically.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from deblur.errors import DeblurError
from deblur.exported import CHANNELS, FIXED_SIZE, MULTIPLE, TILE_SIZE, read_sidecar

# An export without its sidecar (made by other tools, or copied without it) does not say how much its
# downsampling divides H and W, and an exported graph cannot be walked like Keras layers. Padding to 16
# is right for every model deblur ships with depth up to 4 (the built-in model needs 8), and padding
# more than needed only costs a few border pixels, cropped off again; padding less would fail.
DEFAULT_MULTIPLE = 16


class Engine(ABC):
    """A loaded model on one runtime. `__call__` takes shapes that fit: H and W multiples of
    `multiple`, or exactly `fixed_size` when that is set."""

    name: str  # the runtime: keras, onnx, openvino, litert, saved_model
    channels: int  # 1 or 3
    multiple: int  # H and W must be multiples of this
    fixed_size: tuple[int, int] | None  # (H, W) of a model that only takes one size (resized to it), else None
    source: Path  # the file or folder it was loaded from

    @abstractmethod
    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """N x H x W x C float32 in [0, 1] -> the restored batch, same shape, float32."""

    def __repr__(self) -> str:
        size = f", fixed_size={self.fixed_size}" if self.fixed_size else ""
        return f"<{type(self).__name__} {self.name} {self.source} channels={self.channels} " \
               f"multiple={self.multiple}{size}>"


def require(module: str, engine: str, extra: str | None) -> ModuleType:
    """Import a runtime, or say in one line what installs it (deblur's extra for it, if it has one)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        how = f'pip install "deblur[{extra}]"' if extra else f"pip install {package}"
        raise DeblurError(f"the {engine} engine needs {package}, which is not installed: {how}") from None


@dataclass(frozen=True)
class ExportFacts:
    """channels, multiple and fixed size of an exported model: its sidecar's, else its runtime's shapes."""

    channels: int
    multiple: int
    fixed_size: tuple[int, int] | None
    static_size: tuple[int, int] | None  # the one H x W a convolutional export runs at (tiled to it), if any


def export_facts(path: Path, input_shape: list[Any]) -> ExportFacts:
    """Combine the sidecar (when there is one) with the runtime's input shape (N, H, W, C; a dimension
    that is not a positive int is dynamic). Refuses what is not an image model. The sidecar's
    fixed_size marks a fixed-size model (resized to it); without it a static H x W is a tile size."""
    if len(input_shape) != 4 or not _static(input_shape[3]) or int(input_shape[3]) not in (1, 3):
        raise DeblurError(f"{path}: not an image restoration model (its input is {input_shape}; deblur needs "
                          "N x H x W x 1 or 3)")
    channels = int(input_shape[3])
    h, w = input_shape[1:3]
    static = (int(h), int(w)) if _static(h) and _static(w) else None
    meta = read_sidecar(path) or {}
    multiple = meta.get(MULTIPLE)
    multiple = int(multiple) if isinstance(multiple, int) and multiple > 0 else DEFAULT_MULTIPLE
    fixed_size = _size(meta.get(FIXED_SIZE))  # a fixed-size model: images are resized to it
    # a static shape without fixed_size is a convolutional model exported at one tile size: tiled to it
    static = static or _size(meta.get(TILE_SIZE))
    if meta.get(CHANNELS, channels) != channels:
        raise DeblurError(f"{path}: its sidecar says {meta[CHANNELS]} channels but the model takes {channels}; "
                          "export it again")
    return ExportFacts(channels, multiple, fixed_size, static)


def _size(value: Any) -> tuple[int, int] | None:
    ok = isinstance(value, list | tuple) and len(value) == 2 and all(_static(v) for v in value)
    return (int(value[0]), int(value[1])) if ok else None


def _static(dim: Any) -> bool:
    return isinstance(dim, int | np.integer) and int(dim) > 0


def run_in_fixed_tiles(run, batch: np.ndarray, size: tuple[int, int], batch_size: int | None) -> np.ndarray:
    """Run an engine that accepts one H x W only (a static-shape export of a convolutional model) on
    any size: each image is padded up to the tile if smaller, then restored on a grid of such tiles.

    Neighbouring tiles overlap by twice a margin and each keeps only its inner part there (image
    borders are kept whole), so every output pixel comes from a tile that saw context around it.
    A dynamic engine passes its batch's own size and runs once.
    """
    th, tw = size
    h, w = batch.shape[1:3]
    if (h, w) == (th, tw):
        return _in_chunks(run, batch, batch_size)
    ph, pw = max(0, th - h), max(0, tw - w)
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "edge"
        batch = np.pad(batch, ((0, 0), (0, ph), (0, pw), (0, 0)), mode=mode)
    hp, wp = batch.shape[1:3]
    out = np.empty_like(batch, dtype=np.float32)
    for y, (y0, y1) in _grid(hp, th):
        for x, (x0, x1) in _grid(wp, tw):
            tile = _in_chunks(run, batch[:, y:y + th, x:x + tw], batch_size)
            out[:, y0:y1, x0:x1] = tile[:, y0 - y:y1 - y, x0 - x:x1 - x]
    return out[:, :h, :w]


def _grid(length: int, tile: int) -> list[tuple[int, tuple[int, int]]]:
    """Tile starts along one axis, each with the span of the output it keeps."""
    margin = min(16, tile // 4)
    step = tile - 2 * margin
    starts = [*range(0, length - tile, step), length - tile]
    return [(s, (0 if s == 0 else s + margin, length if s + tile == length else s + tile - margin))
            for s in starts]


def _in_chunks(run, batch: np.ndarray, batch_size: int | None) -> np.ndarray:
    """Feed a static batch size: chunks of it, the last one filled up with copies and cut back."""
    if batch_size is None or len(batch) == batch_size:
        return run(batch)
    out = []
    for i in range(0, len(batch), batch_size):
        chunk = batch[i:i + batch_size]
        fill = batch_size - len(chunk)
        full = np.concatenate([chunk, np.repeat(chunk[-1:], fill, axis=0)]) if fill else chunk
        out.append(run(full)[:len(chunk)])
    return np.concatenate(out)
