"""deblur: train, evaluate and run image-deblurring networks with Keras 3.

Importing the package is cheap on purpose: TensorFlow and Keras are imported by the modules that
need them, so `deblur --help` answers at once. `Restorer` (the Python API, `deblur.api`) and
`load_model` (a checkpoint as a Keras model, `deblur.restore.loading`) are imported on first use, as are
the workflows, one per command (`deblur.train`, `evaluate`, `compare`, `predict`, `export`,
`benchmark_formats`: `deblur.api.workflows`) and `DeblurError`, what they raise for a mistake. Load a
checkpoint in your own code with `deblur.load_model(path)` (or `import deblur.models` before
`keras.saving.load_model`: that import registers deblur's layers with Keras).
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers only: at run time each name is imported on first use (_LAZY)
    from deblur.api import Restorer, estimate_kernel
    from deblur.api.workflows import benchmark_formats, compare, evaluate, export, predict, train
    from deblur.core.errors import DeblurError
    from deblur.restore.loading import load_model

try:
    __version__ = version("deblur")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

# name -> module it lives in, imported when first asked for
_LAZY = {"Restorer": "deblur.api", "estimate_kernel": "deblur.api", "load_model": "deblur.restore.loading",
         "DeblurError": "deblur.core.errors",
         **dict.fromkeys(("train", "evaluate", "compare", "predict", "export", "benchmark_formats"),
                         "deblur.api.workflows")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deblur' has no attribute {name!r}")


__all__ = ["DeblurError", "Restorer", "__version__", "benchmark_formats", "compare", "estimate_kernel", "evaluate",
           "export", "load_model", "predict", "train"]
