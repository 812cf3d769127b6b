"""deblur: train, evaluate and run image-deblurring networks with Keras 3.

Importing the package is cheap on purpose: TensorFlow and Keras are imported by the modules that
need them, so `deblur --help` answers at once.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("deblur")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
