"""The one place a `.keras` checkpoint is loaded: predict, eval, compare, training's init_from,
the Python API and the scripts all come through here, so every safety check applies everywhere.

A checkpoint is data from somewhere else: it is checked as a file and a zip archive (sizes declared
inside, before Keras inflates anything), loaded in safe mode (a Lambda layer would run its Python
code) with deblur's layers registered, and must map images to images of the same channels.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from deblur.core.errors import DeblurError
from deblur.core.run_marker import BEST

KERAS_SUFFIX = ".keras"


def register_layers() -> None:
    """Register deblur's custom layers (SimpleGate, ...) with Keras, so that any `.keras` file deblur
    wrote deserialises, in safe mode and without custom_objects."""
    import deblur.models  # noqa: F401 - importing the builders registers their layers


def check_checkpoint_file(path: Path) -> None:
    """Refuse what is not a `.keras` file before Keras is imported: folders (naming the run's
    best.keras when there is one), missing files, other formats."""
    if path.is_dir():
        hint = f" (its checkpoint is {path / BEST})" if (path / BEST).is_file() else ""
        raise DeblurError(f"{path}: is a folder, not a .keras checkpoint{hint}")
    if not path.is_file():
        raise DeblurError(f"{path}: checkpoint not found")
    if path.suffix != KERAS_SUFFIX or not zipfile.is_zipfile(path):
        raise DeblurError(f"{path}: not a Keras .keras checkpoint (expected a file like runs/NAME/{BEST})")


def load_model(path: str | Path):
    """Load a `.keras` checkpoint for inference, refusing anything that is not one.

    Safe mode stays on: a checkpoint is data, and Lambda layers would run code from it.
    """
    if not isinstance(path, str | os.PathLike) or isinstance(path, bytes):  # Path(123) is a raw TypeError
        raise DeblurError(f"path={path!r}: expected the path of a .keras checkpoint (str or pathlib.Path)")
    path = Path(path)
    check_checkpoint_file(path)
    from deblur.restore.checkpoints import check_archive

    check_archive(path)  # declared sizes, before Keras inflates anything
    import keras

    try:
        register_layers()
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged or foreign archive
        text = str(exc)
        if "Lambda" in text and "arbitrary code" in text:
            raise DeblurError(f"{path}: refused: it contains a Lambda layer (Python code), which deblur never "
                              "runs from a checkpoint") from None
        reason = text.splitlines()[0][:200] if text else type(exc).__name__
        raise DeblurError(f"{path}: cannot load this checkpoint ({reason})") from None
    check_image_model(model, path)
    return model


def check_image_model(model, path: Path) -> None:
    """Refuse a Keras model that does not map an image to an image of the same channels."""
    inputs, outputs = model.input_shape, model.output_shape
    ok = (isinstance(inputs, tuple) and isinstance(outputs, tuple) and len(inputs) == 4 and len(outputs) == 4
          and inputs[-1] in (1, 3) and outputs[-1] == inputs[-1])
    if not ok:
        raise DeblurError(f"{path}: not an image restoration model (it maps {inputs} to {outputs}; deblur needs "
                          "H x W x 1 or 3 images in and the same out)")
