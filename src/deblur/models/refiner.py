"""The refiner: the small network behind the built-in restorer's deconvolution (deblur.restore.blind).

It takes the deconvolved photo and returns it cleaned of what deconvolution leaves: ringing at strong
edges, amplified noise, JPEG blocks turned into patterns, the residual blur of a slightly wrong kernel
(its training pairs: deblur.restore.refiner_data). The architecture is a NAFNet (deblur.models.nafnet)
sized for the built-in restorer's speed budget on a CPU, narrower and shallower than the
end-to-end model: the deconvolution has done the deblurring, so what is left is local. Its last
convolution is zero-initialised and its output is input + correction, so an untrained refiner is the
identity on the deconvolved photo and the pipeline is safe from the first training step.

Dong, Roth and Schiele, "Deep Wiener Deconvolution: Wiener meets deep learning for image deblurring"
(NeurIPS 2020) is the precedent: an explicit deconvolution, then a learned refinement of its output.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

from deblur.models import nafnet
from deblur.models.base import MODELS


@MODELS.register("refiner")
def build(channels: int, *, width: int = 16, enc_blocks: Sequence[int] = (1, 1, 1), middle_blocks: int = 1,
          dec_blocks: Sequence[int] = (1, 1, 1)) -> keras.Model:
    """A NAFNet of `width` channels at full resolution; see deblur.models.nafnet for the blocks."""
    return nafnet.build(channels, width=width, enc_blocks=enc_blocks, middle_blocks=middle_blocks,
                        dec_blocks=dec_blocks, name="refiner")
