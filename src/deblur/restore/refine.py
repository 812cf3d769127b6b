"""The built-in restorer's refiner stage: a network run on the deconvolved photo, on any engine.

The network (deblur.models.refiner, trained on deblur.restore.refiner_data's pairs) sees the
deconvolved photo clipped to [0, 1], as in training, and runs through the same tiling as `deblur
predict --checkpoint` (deblur.restore.predict.restore_image), so memory stays bounded on any photo
and every engine (Keras, ONNX Runtime, OpenVINO, LiteRT, SavedModel) runs it.
"""

from __future__ import annotations

import numpy as np

from deblur.restore.blind import Refiner
from deblur.restore.engines import Engine
from deblur.restore.predict import DEFAULT_OVERLAP, DEFAULT_TILE, across_channels, restore_full


def network_refiner(engine: Engine, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP) -> Refiner:
    """The refiner callable of deblur.restore.blind for a loaded network.

    It clips a float32 `deconvolved` in place and tiles it straight into the network, so a photo is
    held three times at most (the input, the deconvolution, the blended output): going through
    `restore_image`'s copies a 24 MP photo peaked at 2.5 GiB, this way at 1.9 GiB (`deblur predict`).
    """
    def refine(blurred: np.ndarray, deconvolved: np.ndarray, kernel: np.ndarray) -> np.ndarray:
        del blurred, kernel  # the network was trained on the deconvolved photo alone
        x = deconvolved if deconvolved.dtype == np.float32 else deconvolved.astype(np.float32)
        np.clip(x, 0.0, 1.0, out=x)
        return across_channels(engine, x, lambda im: restore_full(engine, im, tile, overlap))

    return refine
