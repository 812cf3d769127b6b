"""What OpenCV's decoder leaves out: EXIF orientation, the number of frames, and gray + alpha.

OpenCV decodes pixels well but applies EXIF orientation only when it may also drop alpha and
bit depth, ignores a PNG's `eXIf` chunk, decodes the first frame of an animated or multi-page file
without a word, expands gray + alpha to four channels, and cannot write gray + alpha at all. These
facts are read from the file's headers (never by decoding its pixels twice), and the orientation is
applied with NumPy, so alpha and 16 bits survive it.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
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


# --------------------------------------------------------------------------------------------------
# What a photo carries besides its pixels: EXIF (dates, camera, GPS) and its ICC colour profile,
# kept in `predict` and `blur` outputs, and whether its pixels may be written as JPEG at all.

EXIF_PREFIX = b"Exif\x00\x00"  # how an EXIF block starts in a JPEG APP1 segment (and in some WebPs)
# A JPEG stores EXIF in one APP1 segment, whose 2-byte length also counts itself: 65533 bytes of
# payload, the prefix included. A larger block cannot be written into a JPEG, so it is not kept at all.
MAX_EXIF_BYTES = 65533 - len(EXIF_PREFIX)
# Pillow splits an ICC profile into at most 255 APP2 segments of 65533 - 14 bytes each; that is also
# the cap on what a PNG's compressed iCCP chunk may inflate to here (a small chunk can be a zip bomb).
MAX_ICC_BYTES = 255 * (65533 - 14)
TIFF_SHORT = 3
PNG_ICC_NAME = b"ICC profile"


@dataclass(frozen=True)
class Metadata:
    """What an output keeps of its source: EXIF as a TIFF structure (no `Exif\\0\\0` prefix) with its
    Orientation set to 1, and the ICC profile's bytes; None where the source has none (or it was dropped)."""

    exif: bytes | None = None
    icc: bytes | None = None


NO_METADATA = Metadata()


def upright_exif(tiff: bytes) -> bytes:
    """The EXIF block `tiff` with Orientation 1 and no thumbnail; a ValueError if it is malformed.

    deblur writes pixels already turned upright (`orient`), so an Orientation kept as it was would make
    viewers turn them a second time. The value is patched in place rather than the block re-encoded:
    every other tag (and a maker note, whose offsets would break if anything moved) stays byte for byte.
    The thumbnail (IFD1) is unlinked: it shows the blurred input, stored sideways.
    """
    if len(tiff) > MAX_EXIF_BYTES:
        raise ValueError(f"{len(tiff):,} bytes, more than a JPEG can hold ({MAX_EXIF_BYTES:,})")
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or len(tiff) < 8 or struct.unpack(order + "H", tiff[2:4])[0] != 42:
        raise ValueError("not a TIFF structure")
    (ifd,) = struct.unpack(order + "I", tiff[4:8])
    if ifd < 8 or ifd + 2 > len(tiff):
        raise ValueError("its first directory lies outside the block")
    (count,) = struct.unpack(order + "H", tiff[ifd:ifd + 2])
    end = ifd + 2 + 12 * count
    if count == 0 or end + 4 > len(tiff):
        raise ValueError("its first directory is empty or truncated")
    out = bytearray(tiff)
    for pos in range(ifd + 2, end, 12):
        tag, kind, n = struct.unpack(order + "HHI", tiff[pos:pos + 8])
        if tag == ORIENTATION_TAG:
            if kind != TIFF_SHORT or n != 1:
                raise ValueError("its Orientation tag is malformed")
            out[pos + 8:pos + 12] = struct.pack(order + "HH", 1, 0)
    out[end:end + 4] = b"\x00\x00\x00\x00"  # no next directory: the thumbnail is dropped
    return bytes(out)


def check_icc(icc: bytes) -> bytes:
    """`icc` if it looks like an ICC profile (its header's size and signature); a ValueError if not."""
    if len(icc) > MAX_ICC_BYTES:
        raise ValueError(f"{len(icc):,} bytes, more than a JPEG can hold ({MAX_ICC_BYTES:,})")
    if len(icc) < 132 or icc[36:40] != b"acsp" or struct.unpack(">I", icc[:4])[0] != len(icc):
        raise ValueError("not an ICC profile (bad header)")
    return icc


def icc_fits(icc: bytes, channels: int) -> bool:
    """Whether a profile's colour space is the output's: a CMYK JPEG's profile, say, does not describe
    the RGB pixels OpenCV decodes it to, and tagged onto them would distort every colour."""
    return icc[16:20] == (b"GRAY" if channels in (1, 2) else b"RGB ")


def _inflate_capped(data: bytes, cap: int) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, cap + 1)
    if len(out) > cap:
        raise ValueError(f"it inflates to more than {cap:,} bytes")
    return out


def _png_metadata(f: BinaryIO, drop: Callable[[str, object], None]) -> tuple[bytes | None, bytes | None]:
    """(eXIf payload, iCCP profile) of an open PNG; a block too large to keep, or damaged, is dropped."""
    exif = icc = None
    for tag, offset, length in png_chunks(f):
        if tag == b"eXIf":
            if length > MAX_EXIF_BYTES:  # not even read: it could be gigabytes
                drop("its EXIF block", f"{length:,} bytes, more than a JPEG can hold ({MAX_EXIF_BYTES:,})")
                continue
            f.seek(offset)
            exif = f.read(length)
        elif tag == b"iCCP":
            if length > MAX_ICC_BYTES:
                drop("its ICC profile", f"{length:,} bytes compressed, more than is kept ({MAX_ICC_BYTES:,})")
                continue
            f.seek(offset)
            _, _, rest = f.read(length).partition(b"\x00")  # the profile's name, then the method
            try:
                if not rest or rest[0] != 0:  # compression method 0 (zlib) is the only one PNG defines
                    raise ValueError("an unknown compression method")
                icc = _inflate_capped(rest[1:], MAX_ICC_BYTES)
            except (ValueError, zlib.error) as exc:
                drop("its ICC profile", exc)
    return exif, icc


def read_metadata(path: Path, notes: list[str] | None = None) -> Metadata:
    """The EXIF (made upright, see `upright_exif`) and ICC profile of an image file, from its headers.

    Nothing here stops the image: a block that is damaged or too large is dropped and `notes` told so.
    PNG chunks are walked by hand (an `eXIf` chunk may follow the pixels); other formats are opened
    lazily by Pillow, which parses their headers without decoding pixels. A TIFF's EXIF is not kept:
    its tags describe the TIFF's own layout.
    """
    exif: bytes | None = None
    icc: bytes | None = None

    def drop(what: str, why: object) -> None:
        if notes is not None:
            notes.append(f"{path.name}: {what} is dropped ({why}); the output is written without it")

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data": dropped below, with a note
            with open(path, "rb") as f:
                if f.read(8) == PNG_SIGNATURE:
                    exif, icc = _png_metadata(f, drop)
                else:
                    from PIL import Image

                    Image.MAX_IMAGE_PIXELS = None  # headers only; deblur's pixel limit is checked elsewhere
                    f.seek(0)
                    with Image.open(f) as im:
                        if im.format != "TIFF":
                            exif = im.info.get("exif")
                        icc = im.info.get("icc_profile")
    except Exception as exc:  # a header Pillow cannot parse: the pixels were read (or refused) elsewhere
        if notes is not None:
            notes.append(f"{path.name}: its metadata (EXIF, ICC profile) cannot be read ({exc}); the output is "
                         "written without it")
        return Metadata()
    if exif:
        exif = exif[len(EXIF_PREFIX):] if exif.startswith(EXIF_PREFIX) else exif
        try:
            exif = upright_exif(exif)
        except (ValueError, struct.error) as exc:
            drop("its EXIF block", exc)
            exif = None
    if icc:
        try:
            icc = check_icc(icc)
        except ValueError as exc:
            drop("its ICC profile", exc)
            icc = None
    return Metadata(exif or None, icc or None)


def jpeg_facts(path: Path) -> tuple[bool, bool]:
    """(is a JPEG file, decodes to 8-bit gray or colour without alpha), from its headers only.

    The second answer is True only when the header says so for certain: a 16-bit or alpha image must
    never be written as JPEG (8 bits, no alpha), and the output's name is chosen before any decoding.
    """
    head = b""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            # a FIFO or device named like an image: opening it would block (or read forever); the
            # reader refuses it in one line when its turn comes, and a PNG name is all it needs here
            return False, False
        with open(path, "rb") as f:
            head = f.read(26)
            if head[:8] == PNG_SIGNATURE:
                if png_ihdr(head) is None or head[24] > 8 or head[25] in (PNG_GRAY_ALPHA, 6):  # 6: RGBA
                    return False, False
                for tag, _, _ in png_chunks(f):
                    if tag == b"tRNS":  # transparency: OpenCV decodes it as alpha
                        return False, False
                    if tag == b"IDAT":  # tRNS must come before the pixels
                        break
                return False, True
            from PIL import Image, TiffImagePlugin

            Image.MAX_IMAGE_PIXELS = None
            f.seek(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(f) as im:
                    is_jpeg = im.format in ("JPEG", "MPO")  # MPO: a phone's JPEG with a second view
                    # Pillow names a 16-bit RGB TIFF "RGB" too: ask its tags
                    if im.format == "TIFF" and isinstance(im, TiffImagePlugin.TiffImageFile):
                        bits = im.tag_v2.get(258, (1,))
                        if any(b != 8 for b in (bits if isinstance(bits, tuple) else (bits,))) or 338 in im.tag_v2:
                            return False, False  # 338: ExtraSamples (alpha)
                    plain = im.mode in ("L", "RGB", "CMYK", "YCbCr") or (
                        im.mode in ("1", "P") and "transparency" not in im.info)
                    return is_jpeg, plain
    except Exception:  # unreadable header (a 12-bit JPEG, say): never JPEG, which could lose what it holds
        return head[:3] == b"\xff\xd8\xff", False
