"""An image file's (height, width, channels) as `FileStore` will decode it, from its headers alone.

Start-up of a 10,000-pair dataset must not decode (or even read) every file: only the first
bytes are read (Pillow parses a JPEG's markers up to its frame header); for a PNG, the 8-byte chunk
headers up to the pixels and the file's last 64 KiB (an `eXIf` chunk may sit after the pixels).
The answer mirrors `deblur.imaging.imageio.read_image` + `store.to_uint8_rgb`: EXIF orientation 5-8
swaps width and height; gray files give 1 channel; anything with colour or alpha gives 3 (OpenCV
expands gray + alpha and palettes to BGRA/BGR, and alpha is then dropped). The PNG chunk walk and
IHDR parsing are `deblur.imaging.imagemeta`'s, shared with `read_image`'s header checks.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from pathlib import Path
from typing import BinaryIO

from deblur.imaging.imagemeta import ORIENTATION_TAG, PNG_SIGNATURE, _exif_orientation, png_chunks, png_ihdr

TAIL_BYTES = 1 << 16  # room for an EXIF block after the pixels
PNG_GRAY = 0  # IHDR colour types; 2 RGB, 3 palette, 4 gray + alpha, 6 RGBA all end as 3 channels
GRAY_MODES = ("1", "L", "I", "F")  # Pillow modes OpenCV decodes to one channel ("I;16", "I;16B"... too)


def _png(f: BinaryIO, head: bytes) -> tuple[int, int, int, int] | None:
    """A PNG's size and colour type from IHDR, and its EXIF orientation from an `eXIf` chunk found
    before the pixels (walking chunk headers) or after them (in the file's tail)."""
    ihdr = png_ihdr(head)
    if ihdr is None:
        return None
    w, h, colour = ihdr
    channels = 1 if colour == PNG_GRAY else 3
    exif, pos = None, 8
    for tag, offset, length in png_chunks(f):  # the chunks before the pixels: a handful of 8-byte reads
        pos = offset - 8
        if tag == b"eXIf":
            f.seek(offset)
            exif = f.read(length)
            break
        if tag in (b"IDAT", b"IEND"):
            break
    if exif is None:
        exif = _tail_exif(f, pos)
    orientation = 1
    if exif is not None:
        try:
            orientation = _exif_orientation(exif)
        except Exception:  # a damaged EXIF block: read_image keeps the pixels upright too
            orientation = 1
    return w, h, channels, orientation


def _tail_exif(f: BinaryIO, start: int) -> bytes | None:
    """An `eXIf` chunk among those after the pixels (they sit just before IEND), found by its type
    and confirmed by its CRC; walking every IDAT header would read much of the file."""
    size = f.seek(0, io.SEEK_END)
    begin = max(start, size - TAIL_BYTES)
    f.seek(begin)
    tail = f.read(size - begin) or b""
    at = tail.rfind(b"eXIf")
    while at >= 4:
        (length,) = struct.unpack(">I", tail[at - 4:at])
        end = at + 4 + length
        if end + 4 <= len(tail) and struct.unpack(">I", tail[end:end + 4])[0] == zlib.crc32(tail[at:end]):
            return tail[at + 4:end]
        at = tail.rfind(b"eXIf", 0, at)
    return None


def _pillow(path: Path) -> tuple[int, int, int, int] | None:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # headers only; read_image applies deblur's pixel limit
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Image.open(path) as im:
            if im.format == "TIFF":  # Pillow misreads some TIFFs libtiff decodes; let the decoder say
                return None
            mode = im.mode
            channels = 1 if mode in GRAY_MODES or mode.startswith("I;") else 3
            orientation = int(im.getexif().get(ORIENTATION_TAG, 1))
            return im.size[0], im.size[1], channels, orientation


def probe(path: Path) -> tuple[int, int, int] | None:
    """(h, w, c) of the file as decoded and made upright, or None when its header cannot tell."""
    try:
        with open(path, "rb", buffering=0) as f:  # unbuffered: a PNG's chunk walk reads 8 bytes per chunk
            head = f.read(26)
            facts = _png(f, head) if head[:8] == PNG_SIGNATURE else _pillow(path)
    except Exception:  # unreadable here: decoding it will name the file and the reason
        return None
    if facts is None:
        return None
    w, h, channels, orientation = facts
    if orientation in (5, 6, 7, 8):  # transposed or rotated a quarter turn
        w, h = h, w
    return h, w, channels
