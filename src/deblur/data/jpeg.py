"""JPEG re-compression as tensor operations: the lossy part of baseline JPEG, on any Keras backend.

Real blurred photos reach a deblurring model as JPEGs, whose 8x8 block artefacts and lost fine
detail a model must not mistake for image content. Encoding through a codec library would take
every image off the device (and off the graph of tf.data), so this module reproduces the steps of
baseline JPEG that lose information, the way libjpeg performs them, with `keras.ops`:
RGB -> YCbCr (JFIF), 4:2:0 chroma subsampling (2x2 box average), 8x8 DCT per block, division by
the IJG quantisation tables scaled for the quality, rounding, and back (chroma up by repetition),
then 8-bit rounding, with libjpeg's "fancy" (triangle-filter) chroma upsampling on decoding. The
entropy coding that follows in a real file is lossless and is skipped. Tests compare this module
with OpenCV's encoder and decoder (libjpeg), which round the DCT in integers where this does not.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from keras import ops

# ITU T.81 Annex K tables (the IJG defaults, quality 50)
_LUMA = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float32).reshape(8, 8)
_CHROMA = np.array([
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99,
    47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32, np.float32).reshape(8, 8)
_RGB_TO_YCC = np.array([[0.299, 0.587, 0.114],
                        [-0.168736, -0.331264, 0.5],
                        [0.5, -0.418688, -0.081312]], np.float32)
_YCC_TO_RGB = np.array([[1.0, 0.0, 1.402],
                        [1.0, -0.344136, -0.714136],
                        [1.0, 1.772, 0.0]], np.float32)


def _dct_matrix() -> np.ndarray:
    k, n = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    d = np.cos((2 * n + 1) * k * math.pi / 16) * np.sqrt(2 / 8)
    d[0] /= np.sqrt(2)
    return d.astype(np.float32)


_DCT = _dct_matrix()


def tables(quality: Any, base: np.ndarray) -> Any:
    """IJG quantisation tables for per-image qualities [B] (1-100): shape [B, 8, 8]."""
    q = ops.clip(ops.round(quality), 1.0, 100.0)
    scale = ops.where(q < 50.0, 5000.0 / q, 200.0 - 2.0 * q)[..., None, None]
    return ops.clip(ops.floor((ops.convert_to_tensor(base) * scale + 50.0) / 100.0), 1.0, 255.0)


def _quantise_plane(plane: Any, table: Any) -> Any:
    """One BxHxW plane (H, W multiples of 8, values level-shifted) through DCT, quantisation, IDCT."""
    b, h, w = ops.shape(plane)
    blocks = ops.reshape(plane, (b, h // 8, 8, w // 8, 8))
    d = ops.convert_to_tensor(_DCT)
    coef = ops.einsum("ij,bhjwk,lk->bhiwl", d, blocks, d)
    t = table[:, None, :, None, :]
    coef = ops.round(coef / t) * t
    back = ops.einsum("ji,bhjwk,kl->bhiwl", d, coef, d)
    return ops.reshape(back, (b, h, w))


def _upsample(plane: Any, axis: int) -> Any:
    """Double a BxHxW plane along `axis` (1 or 2) with libjpeg's "fancy" triangle filter: each new
    sample is 3/4 of its nearest source sample and 1/4 of the next nearest (edge samples repeated)."""
    pad = [[0, 0], [0, 0], [0, 0]]
    pad[axis] = [1, 1]
    padded = ops.pad(plane, pad, mode="symmetric")  # a one-sample mirror repeats the edge sample
    if axis == 1:
        centre, before, after = padded[:, 1:-1], padded[:, :-2], padded[:, 2:]
    else:
        centre, before, after = padded[:, :, 1:-1], padded[:, :, :-2], padded[:, :, 2:]
    pair = ops.stack([0.75 * centre + 0.25 * before, 0.75 * centre + 0.25 * after], axis=axis + 1)
    b, h, w = ops.shape(plane)
    return ops.reshape(pair, (b, 2 * h, w) if axis == 1 else (b, h, 2 * w))


def _extend(x: Any, before: Any, after: Any, axis: int) -> Any:
    """Pad a BxHxWxC batch along `axis` (1 or 2) by repeating its edge rows or columns, as libjpeg
    fills partial blocks. Counts may be tensors (sizes inside tf.data) and may be zero."""
    first = x[:, :1] if axis == 1 else x[:, :, :1]
    last = x[:, -1:] if axis == 1 else x[:, :, -1:]
    return ops.concatenate([ops.repeat(first, before, axis=axis), x, ops.repeat(last, after, axis=axis)], axis=axis)


def compress(images: Any, quality: Any, origin: tuple[Any, Any] = (0, 0)) -> Any:
    """BxHxWxC images in [0, 1] (C = 1 or 3) as after a JPEG round trip at `quality` ([B] or scalar).

    `origin` (row, column) is where the 16-pixel block grid starts, modulo 16: a photo's grid starts
    at its corner, and a training crop cut from a larger blurred window keeps the photo's grid only
    if the window's grid starts where the crop will.
    """
    b, h, w, c = ops.shape(images)
    quality = ops.broadcast_to(ops.cast(quality, "float32"), (b,))
    top, left = (16 - origin[0] % 16) % 16, (16 - origin[1] % 16) % 16
    x = _extend(images * 255.0, top, (-(top + h)) % 16, axis=1)
    x = _extend(x, left, (-(left + w)) % 16, axis=2)
    if c == 1:
        out = _quantise_plane(x[..., 0] - 128.0, tables(quality, _LUMA)) + 128.0
        out = out[..., None]
    else:
        ycc = ops.matmul(x, ops.transpose(ops.convert_to_tensor(_RGB_TO_YCC))) - ops.convert_to_tensor(
            np.array([128.0, 0.0, 0.0], np.float32))
        y = _quantise_plane(ycc[..., 0], tables(quality, _LUMA))
        chroma = []
        for i in (1, 2):
            small = ops.average_pool(ycc[..., i:i + 1], 2, strides=2, padding="valid")[..., 0]
            small = _quantise_plane(small, tables(quality, _CHROMA))
            chroma.append(_upsample(_upsample(small, 1), 2))
        ycc = ops.stack([y + 128.0, *chroma], axis=-1)  # Y back to 0-255; Cb, Cr stay centred on 0
        out = ops.matmul(ycc, ops.transpose(ops.convert_to_tensor(_YCC_TO_RGB)))
    out = out[:, top:top + h, left:left + w, :]
    return ops.round(ops.clip(out, 0.0, 255.0)) / 255.0
