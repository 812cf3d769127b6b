"""Data sources, one module each; importing this package registers them all."""

from deblur.data.base import SOURCES
from deblur.data.sources import cifar10, combined, fashion_mnist, folder, kaggle_blur, pairs, samples

__all__ = ["SOURCES", "cifar10", "combined", "fashion_mnist", "folder", "kaggle_blur", "pairs", "samples"]
