"""The sidecar file that describes an exported model: its name and keys, shared by writer and readers.

`deblur export` writes it next to every export (`<file>.deblur.json`, or `deblur.json` inside a
SavedModel folder); the engine loader reads it to know the channels, padding multiple and any fixed
model size without opening the Keras checkpoint again. Both sides import the names from here, so
they cannot drift apart. A missing sidecar is allowed (an export made by other tools).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SIDECAR_SUFFIX = ".deblur.json"
SIDECAR_IN_FOLDER = "deblur.json"

# Keys of the sidecar's JSON object.
FORMAT = "format"  # "saved_model" | "onnx" | "openvino" | "litert"
CHANNELS = "channels"  # 1 or 3: the number of image channels the model takes and returns
MULTIPLE = "multiple"  # height and width must be padded to a multiple of this
FIXED_SIZE = "fixed_size"  # [height, width] of a fixed-size MODEL (dense bottleneck: images are resized), else null
SOURCE_SHA256 = "source_sha256"  # sha256 of the .keras checkpoint it was exported from
DEBLUR_VERSION = "deblur_version"
KERAS_VERSION = "keras_version"
MAX_DIFF_LEVELS = "max_diff_levels"  # the export check's largest difference from Keras after 8-bit rounding
# {relative path: sha256} of every file the export wrote (a SavedModel's, relative to its folder): what
# `deblur export --overwrite` may replace; a file not listed, or changed since, is the user's
FILES = "files"

SIDECAR_KEYS = (FORMAT, CHANNELS, MULTIPLE, FIXED_SIZE, SOURCE_SHA256, DEBLUR_VERSION, KERAS_VERSION, MAX_DIFF_LEVELS,
                FILES)


def sidecar_path(export: Path) -> Path:
    """Where the sidecar of `export` lives: inside a folder export, next to a file export."""
    export = Path(export)
    if export.is_dir():
        return export / SIDECAR_IN_FOLDER
    return export.with_name(export.name + SIDECAR_SUFFIX)


def read_sidecar(export: Path) -> dict[str, Any] | None:
    """The sidecar of `export` as a dict, or None when it has none, or it is not a small regular file
    holding a JSON object (a FIFO there is never opened for a blocking read; see deblur.core.safefile)."""
    from deblur.core.safefile import UnsafeFile, read_json

    path = sidecar_path(export)
    try:
        data = read_json(path, what="export sidecar")
    except (OSError, UnsafeFile):
        return None
    return data if isinstance(data, dict) else None
