"""What every engine is: a callable on image batches plus the facts the restore loop needs.

An engine runs one model on N x H x W x C float32 batches in [0, 1] and returns the same shape. It
does not pad or resize: `deblur.restore.predict.restore_batch` pads to `multiple` (or resizes to
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

from deblur.core.errors import DeblurError
from deblur.restore.exported import CHANNELS, FIXED_SIZE, MULTIPLE, read_sidecar

# An export without its sidecar (made by other tools, or copied without it) does not say how much its
# downsampling divides H and W, and an exported graph cannot be walked like Keras layers. Padding to 16
# is right for every model deblur ships with depth up to 4 (the built-in model needs 8), and padding
# more than needed only costs a few border pixels, cropped off again; padding less would fail.
DEFAULT_MULTIPLE = 16
MAX_MULTIPLE = 1024  # a U-Net of depth 10: beyond any model deblur builds


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
    from deblur.core.privacy import after_import, silence_telemetry

    silence_telemetry()  # before the runtime is imported: it may import its usage reporting with it
    try:
        imported = importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        how = f'pip install "deblur[{extra}]"' if extra else f"pip install {package}"
        raise DeblurError(f"the {engine} engine needs {package}, which is not installed: {how}") from None
    after_import(importlib.import_module(module.split(".")[0]))
    return imported


@dataclass(frozen=True)
class ExportFacts:
    """channels, multiple and fixed size of an exported model: its sidecar's, else its runtime's shapes."""

    channels: int
    multiple: int
    fixed_size: tuple[int, int] | None


def export_facts(path: Path, input_shape: list[Any]) -> ExportFacts:
    """Combine the sidecar (when there is one) with the runtime's input shape (N, H, W, C; a dimension
    that is not a positive int is dynamic). Refuses what is not an image model, and an input fixed at
    one H x W unless the sidecar's fixed_size says the model itself takes only that size (resized to
    it): deblur pads and tiles images to any size, so it runs exports with dynamic H and W only."""
    if len(input_shape) != 4 or not _static(input_shape[3]) or int(input_shape[3]) not in (1, 3):
        raise DeblurError(f"{path}: not an image restoration model (its input is {input_shape}; deblur needs "
                          "N x H x W x 1 or 3)")
    channels = int(input_shape[3])
    meta = read_sidecar(path) or {}
    multiple = meta.get(MULTIPLE)
    multiple = int(multiple) if isinstance(multiple, int) and multiple > 0 else DEFAULT_MULTIPLE
    fixed_size = _size(meta.get(FIXED_SIZE))  # a fixed-size model: images are resized to it
    h, w = input_shape[1:3]
    if not 1 <= multiple <= MAX_MULTIPLE:  # every image would be padded to a multiple of it
        raise DeblurError(f"{path}: its sidecar says a size multiple of {multiple:,}, which no image model needs "
                          f"(deblur's go up to {MAX_MULTIPLE}); export it again with `deblur export`")
    if fixed_size is not None and (h, w) != fixed_size:
        # a dynamic model told it is fixed-size had every image squeezed to that size (1x1) and back
        raise DeblurError(f"{path}: its sidecar says the model takes only {fixed_size[1]}x{fixed_size[0]} images, but "
                          f"its input is {_dim(w)}x{_dim(h)}; export it again with `deblur export`")
    if fixed_size is None and (_static(h) or _static(w)):
        raise DeblurError(f"{path}: its input size is fixed at {_dim(h)}x{_dim(w)}; deblur runs exports with "
                          "dynamic height and width: re-export it with `deblur export`")
    if meta.get(CHANNELS, channels) != channels:
        raise DeblurError(f"{path}: its sidecar says {meta[CHANNELS]} channels but the model takes {channels}; "
                          "export it again")
    return ExportFacts(channels, multiple, fixed_size)


def _dim(value: Any) -> str:
    return str(int(value)) if _static(value) else "?"


def _size(value: Any) -> tuple[int, int] | None:
    ok = isinstance(value, list | tuple) and len(value) == 2 and all(_static(v) for v in value)
    return (int(value[0]), int(value[1])) if ok else None


def _static(dim: Any) -> bool:
    return isinstance(dim, int | np.integer) and int(dim) > 0
