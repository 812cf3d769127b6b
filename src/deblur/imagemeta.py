"""What OpenCV's decoder leaves out: EXIF orientation, the number of frames, and gray + alpha.

OpenCV decodes pixels well but applies EXIF orientation only when it may also drop alpha and
bit depth, ignores a PNG's `eXIf` chunk, decodes the first frame of an animated or multi-page file
without a word, expands gray + alpha to four channels, and cannot write gray + alpha at all. These
facts are read from the file's headers (never by decoding its pixels twice), and the orientation is
applied with NumPy, so alpha and 16 bits survive it.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ORIENTATION_TAG = 0x0112
PNG_GRAY_ALPHA = 4  # IHDR colour type


@dataclass(frozen=True)
class ImageFacts:
    orientation: int = 1  # EXIF: 1 upright ... 8; see `orient`
    frames: int = 1
    gray_alpha: bool = False


def png_ihdr(head: bytes) -> tuple[int, int, int] | None:
    """(width, height, colour type) from a PNG's IHDR, which the format requires to be the first
    chunk (the file's first 26 bytes); None if `head` is not a PNG.

    Read by hand because Pillow refuses a whole file for, e.g., one ancillary chunk with a bad CRC
    while libpng (OpenCV) decodes it.
    """
    if head[:8] != PNG_SIGNATURE or len(head) < 26 or head[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", head[16:24])
    return w, h, head[25]


def png_chunks(f: BinaryIO) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload offset, payload length) of each chunk of an open PNG file, in order: the one
    PNG chunk walker. Only the 8-byte chunk headers are read (a caller reads the payloads it wants),
    so walking the chunks before a large file's pixels costs a handful of small reads."""
    pos = 8
    while True:
        f.seek(pos)
        header = f.read(8)
        if len(header) < 8:
            return
        (length,) = struct.unpack(">I", header[:4])
        tag = header[4:]
        yield tag, pos + 8, length
        if tag == b"IEND":
            return
        pos += 12 + length


def _exif_orientation(payload: bytes) -> int:
    from PIL import Image

    exif = Image.Exif()
    exif.load(payload)
    return int(exif.get(ORIENTATION_TAG, 1))


def _png_facts(data: bytes) -> ImageFacts:
    """A PNG's chunks, walked by hand: the `eXIf` chunk may come after the pixels, where Pillow would
    decode the whole image to find it."""
    orientation, frames, gray_alpha = 1, 1, False
    f = io.BytesIO(data)
    for tag, offset, length in png_chunks(f):
        if tag not in (b"IHDR", b"acTL", b"eXIf"):
            continue
        f.seek(offset)
        payload = f.read(length)
        if tag == b"IHDR" and len(payload) >= 10:
            gray_alpha = payload[9] == PNG_GRAY_ALPHA
        elif tag == b"acTL" and len(payload) >= 4:  # animated PNG
            frames = max(1, struct.unpack(">I", payload[:4])[0])
        elif tag == b"eXIf":
            orientation = _exif_orientation(bytes(payload))
    return ImageFacts(orientation, frames, gray_alpha)


def image_facts(data: bytes) -> ImageFacts:
    """Orientation, frame count and gray + alpha from an encoded image's headers; defaults if unreadable."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data": the pixels are still fine
            if data[:8] == PNG_SIGNATURE:
                facts = _png_facts(data)
            else:
                from PIL import Image

                Image.MAX_IMAGE_PIXELS = None  # headers only; deblur's own pixel limit is checked elsewhere
                with Image.open(io.BytesIO(data)) as im:
                    # OpenCV's TIFF decoder (libtiff) applies the orientation itself; applying it twice would undo it
                    orientation = 1 if im.format == "TIFF" else int(im.getexif().get(ORIENTATION_TAG, 1))
                    facts = ImageFacts(orientation, int(getattr(im, "n_frames", 1)), im.mode in ("LA", "La"))
    except Exception:  # a damaged header or EXIF block: the pixels decide, upright, as one frame
        return ImageFacts()
    return ImageFacts(facts.orientation if 1 <= facts.orientation <= 8 else 1, max(1, facts.frames),
                      facts.gray_alpha)


def orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn an HxWxC image as stored into the image as viewers show it (EXIF orientation 1-8)."""
    if orientation == 2:
        out = image[:, ::-1]
    elif orientation == 3:
        out = image[::-1, ::-1]
    elif orientation == 4:
        out = image[::-1]
    elif orientation == 5:
        out = image.transpose(1, 0, 2)
    elif orientation == 6:
        out = np.rot90(image, -1)
    elif orientation == 7:
        out = image[::-1, ::-1].transpose(1, 0, 2)
    elif orientation == 8:
        out = np.rot90(image, 1)
    else:
        return image
    return np.ascontiguousarray(out)  # OpenCV calls later need contiguous memory


def encode_gray_alpha_png(image: np.ndarray) -> bytes:
    """An HxWx2 uint8/uint16 image as a gray + alpha PNG (colour type 4), which OpenCV cannot write."""
    h, w, _ = image.shape
    depth = 16 if image.dtype == np.uint16 else 8
    samples = np.ascontiguousarray(image, dtype=">u2" if depth == 16 else np.uint8).reshape(h, -1).view(np.uint8)
    rows = np.concatenate([np.zeros((h, 1), np.uint8), samples], axis=1)  # filter type 0 on every row

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    header = struct.pack(">IIBBBBB", w, h, depth, PNG_GRAY_ALPHA, 0, 0, 0)
    return (PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))
