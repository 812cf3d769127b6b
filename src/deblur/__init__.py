"""deblur: train, evaluate and run image-deblurring networks with Keras 3.

Importing the package is cheap on purpose: TensorFlow and Keras are imported by the modules that
need them, so `deblur --help` answers at once. `Restorer` (the Python API, `deblur.api`) and
`load_model` (a checkpoint as a Keras model, `deblur.restore.loading`) are imported on first use. Load a
checkpoint in your own code with `deblur.load_model(path)` (or `import deblur.models` before
`keras.saving.load_model`: that import registers deblur's layers with Keras).
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("deblur")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# name -> module it lives in, imported when first asked for
_LAZY = {"Restorer": "deblur.api", "estimate_kernel": "deblur.api", "load_model": "deblur.restore.loading"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deblur' has no attribute {name!r}")


__all__ = ["Restorer", "__version__", "estimate_kernel", "load_model"]
