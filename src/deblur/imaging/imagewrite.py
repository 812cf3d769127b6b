"""Writing images: PNG (16-bit, gray with alpha) and JPEG (quality 95, 4:4:4), with the EXIF and ICC
profile of the input that fit the output, always through a temporary file renamed into place."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from deblur.core import atomic
from deblur.core.errors import DeblurError
from deblur.imaging.imagemeta import EXIF_PREFIX, NO_METADATA, PNG_ICC_NAME, Metadata, encode_gray_alpha_png, icc_fits


def encode_png(image: np.ndarray) -> bytes:
    if image.ndim == 3 and image.shape[2] == 2:
        return encode_gray_alpha_png(image)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise DeblurError("could not encode PNG")
    return buf.tobytes()


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write to a temporary file beside `path` and rename it into place (see `deblur.core.atomic`).

    A crash or Ctrl-C therefore never leaves a half-written file under the final name.
    """
    atomic.atomic_write_bytes(path, payload)


def atomic_write_text(path: str | Path, text: str) -> None:
    # surrogateescape: a file name that is not UTF-8 (a lone surrogate in Python) is written as its own
    # bytes, as the file system has it, instead of failing the whole report
    atomic_write_bytes(path, text.encode("utf-8", "surrogateescape"))


def write_png(path: str | Path, image: np.ndarray) -> None:
    atomic_write_bytes(path, encode_png(image))


# Outputs of photos: 95 keeps a restored photo's detail at a third of a PNG's size, and 4:4:4 (no
# chroma subsampling) keeps colour edges as sharp as the luma that deblurring just sharpened.
JPEG_QUALITY = 95
JPEG_SUFFIX, PNG_SUFFIX = ".jpg", ".png"


def jpeg_ready(image: np.ndarray) -> bool:
    """Whether JPEG can hold `image` without loss of kind: 8 bits, gray or colour, no alpha."""
    return image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] in (1, 3)


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def encode_jpeg(image: np.ndarray, meta: Metadata = NO_METADATA) -> bytes:
    """An 8-bit gray or RGB image as a quality-95, 4:4:4 JPEG, with `meta`'s EXIF and ICC profile."""
    from PIL import Image

    if not jpeg_ready(image):
        raise DeblurError(f"a {image.dtype} image of {image.shape[2]} channel(s) cannot be written as JPEG")
    extra: dict[str, bytes] = {}
    if meta.exif:
        extra["exif"] = EXIF_PREFIX + meta.exif
    if meta.icc:
        extra["icc_profile"] = meta.icc
    buf = io.BytesIO()
    pixels = image[:, :, 0] if image.shape[2] == 1 else image
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, "JPEG", quality=JPEG_QUALITY, subsampling=0, **extra)
    return buf.getvalue()


def add_png_metadata(png: bytes, meta: Metadata) -> bytes:
    """`png` with `meta` as an iCCP and an eXIf chunk right after IHDR (both must precede the pixels)."""
    chunks = b""
    if meta.icc:
        chunks += _png_chunk(b"iCCP", PNG_ICC_NAME + b"\x00\x00" + zlib.compress(meta.icc, 9))
    if meta.exif:
        chunks += _png_chunk(b"eXIf", meta.exif)
    ihdr_end = 8 + 8 + 13 + 4  # signature, IHDR's length and type, its 13 bytes, its CRC
    return png[:ihdr_end] + chunks + png[ihdr_end:]


def encode_image(image: np.ndarray, suffix: str, meta: Metadata = NO_METADATA) -> bytes:
    """`image` as the format `suffix` names (.jpg or .png), with the metadata of `meta` that fits it.

    An ICC profile of another colour space than the output's is left out (see `imagemeta.icc_fits`).
    """
    if meta.icc and not icc_fits(meta.icc, image.shape[2]):
        meta = Metadata(meta.exif, None)
    if suffix == JPEG_SUFFIX:
        return encode_jpeg(image, meta)
    return add_png_metadata(encode_png(image), meta)


def write_image(path: str | Path, image: np.ndarray, meta: Metadata = NO_METADATA) -> None:
    """Write `image` atomically as JPEG or PNG, by the path's suffix, with `meta` (see `encode_image`)."""
    atomic_write_bytes(path, encode_image(image, Path(path).suffix.lower(), meta))
