"""Reading and writing images without losing what the user's file had.

Channel order is RGB(A) everywhere in deblur (OpenCV's BGR stops at this module and at
deblur.imaging.imagewrite, which encodes and writes them). Bit depth and alpha are kept so that
`deblur predict` can return an image of the same kind as it was given.
"""

from __future__ import annotations

import math
import os
import stat
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from deblur.core.errors import DataError, DeblurError
from deblur.imaging.imagemeta import image_facts, orient, png_ihdr
from deblur.imaging.imagewrite import (
    JPEG_QUALITY,
    JPEG_SUFFIX,
    PNG_SUFFIX,
    add_png_metadata,
    atomic_write_bytes,
    atomic_write_text,
    encode_image,
    encode_jpeg,
    encode_png,
    jpeg_ready,
    write_image,
    write_png,
)

# OpenCV logs a decoder's complaint (e.g. a 5-channel TIFF) as several lines on stderr; deblur reports
# every unreadable image itself, in one line naming the file. DEBLUR_DEBUG=1 keeps OpenCV's lines.
if os.environ.get("DEBLUR_DEBUG") != "1" and hasattr(cv2, "utils") and hasattr(cv2.utils, "logging"):
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

# with encoding and writing, which moved to deblur.imaging.imagewrite: callers import them from here
__all__ = ["DEFAULT_MAX_MEGAPIXELS", "FILE_SLACK", "IMAGE_EXTENSIONS", "JPEG_QUALITY", "JPEG_SUFFIX",
           "MAX_BYTES_PER_PIXEL", "PNG_SUFFIX", "add_png_metadata", "atomic_write_bytes", "atomic_write_text",
           "check_finite", "check_megapixels", "convert_channels", "encode_image", "encode_jpeg", "encode_png",
           "expand_inputs", "from_float", "header_size", "is_image_file", "jpeg_ready", "list_images",
           "max_megapixels", "read_image", "resize", "to_float", "write_image", "write_png"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_MAX_MEGAPIXELS = 100.0  # a 24 MP photo is fine; a 50,000 x 50,000 "bomb" is refused before decoding


def check_megapixels(value: float, where: str) -> float:
    """A pixel limit must be a finite number above 0: `nan` would compare False and disable the guard."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise DeblurError(f"{where}: {value!r} is not allowed; give a number of megapixels above 0, e.g. 100")
    return float(value)


def max_megapixels() -> float:
    """The pixel limit for every image read: DEBLUR_MAX_MEGAPIXELS, or 100."""
    value = os.environ.get("DEBLUR_MAX_MEGAPIXELS")
    if value is None or not value.strip():
        return DEFAULT_MAX_MEGAPIXELS
    try:
        number = float(value)
    except ValueError:
        raise DeblurError(f"DEBLUR_MAX_MEGAPIXELS={value!r} is not a number") from None
    return check_megapixels(number, f"DEBLUR_MAX_MEGAPIXELS={value!r}")


def _png_header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR (see `imagemeta.png_ihdr`)."""
    ihdr = png_ihdr(data[:26])
    return None if ihdr is None else ihdr[:2]


TIFF_WIDTH, TIFF_LENGTH = 256, 257


def _tiff_header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a TIFF's first image directory (the page OpenCV decodes).

    Read by hand because Pillow cannot open every TIFF libtiff (OpenCV) decodes: a float32 RGB TIFF,
    say, which deblur reads into 16 bits.
    """
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(data[:4])
    if order is None or len(data) < 8:
        return None
    (offset,) = struct.unpack(order + "I", data[4:8])
    if offset + 2 > len(data):
        return None
    (entries,) = struct.unpack(order + "H", data[offset:offset + 2])
    found: dict[int, int] = {}
    for k in range(entries):
        pos = offset + 2 + 12 * k
        if pos + 12 > len(data):
            return None
        tag, kind, count = struct.unpack(order + "HHI", data[pos:pos + 8])
        if tag in (TIFF_WIDTH, TIFF_LENGTH) and count == 1 and kind in (3, 4):  # SHORT or LONG
            fmt, end = ("H", pos + 10) if kind == 3 else ("I", pos + 12)
            found[tag] = struct.unpack(order + fmt, data[pos + 8:end])[0]
    if TIFF_WIDTH in found and TIFF_LENGTH in found:
        return found[TIFF_WIDTH], found[TIFF_LENGTH]
    return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the file header alone, without decoding pixels; None if unknown."""
    import io
    import warnings

    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # deblur applies its own limit, with a message that names it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Corrupt EXIF data": OpenCV decides about the pixels
            with Image.open(io.BytesIO(data)) as im:
                return im.size
    except Exception:  # Pillow cannot parse every header OpenCV can decode
        return _png_header_size(data) or _tiff_header_size(data)


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files under `folder`, sorted, so every run sees them in the same order."""
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if is_image_file(p))


def read_image(path: str | Path, max_pixels_mp: float | None = None, *, notes: list[str] | None = None,
               gray_alpha: bool = False) -> np.ndarray:
    """Read an image as HxWxC (C = 1, 3 or 4) uint8 or uint16, RGB(A), EXIF orientation applied.

    The file is decoded unchanged (alpha and bit depth kept) and turned upright by `imagemeta.orient`
    from its EXIF orientation (JPEG, TIFF, WebP, and a PNG's eXIf chunk). `gray_alpha=True` returns
    gray + alpha files as HxWx2 instead of RGBA with three equal channels. A file with several frames
    (animated GIF/PNG/WebP, multi-page TIFF) gives its first; `notes`, if given, is told so.
    """
    path = Path(path)
    limit = max_megapixels() if max_pixels_mp is None else check_megapixels(max_pixels_mp, "the pixel limit")
    _check_file(path, limit)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if data.size == 0:
        raise DataError(f"{path}: empty file, not an image")
    size = header_size(data.tobytes())
    if size is None:  # unknown size: decoding it unchecked is exactly what a decompression bomb needs
        raise DataError(f"{path}: not a readable image (its size cannot be read from its header, so it is not "
                        "decoded: a guard against decompression bombs)")
    if size[0] * size[1] > limit * 1e6:
        mp = size[0] * size[1] / 1e6
        shown = f"{mp:.0f}" if mp >= 1 else f"{mp:.2g}"  # never "0 megapixels, over the limit"
        raise DataError(f"{path}: {size[0]}x{size[1]} is {shown} megapixels, over the "
                        f"limit of {limit:g} (raise it with DEBLUR_MAX_MEGAPIXELS, or --max-megapixels in "
                        "deblur predict)")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"{path}: not a readable image (corrupt, truncated or unsupported format)")
    if image.shape[0] * image.shape[1] > limit * 1e6:  # a header that disagrees with its pixels: still refused
        raise DataError(f"{path}: decodes to {image.shape[1]}x{image.shape[0]} although its header says "
                        f"{size[0]}x{size[1]}; over the limit of {limit:g} megapixels")
    facts = image_facts(data.tobytes())
    if notes is not None and facts.frames > 1:
        notes.append(f"{path.name}: has {facts.frames} frames (animated or multi-page); only the first is used")
    if image.dtype not in (np.uint8, np.uint16):
        if not np.isfinite(image).all():  # a float TIFF: NaN/inf would scale every pixel to 0
            raise DataError(f"{path}: has NaN or infinite pixel values")
        image = _to_uint16(image)
    if image.ndim == 2:
        image = image[:, :, None]
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
        if gray_alpha and facts.gray_alpha:  # OpenCV expands gray + alpha to BGRA with B = G = R
            image = np.ascontiguousarray(image[:, :, [0, 3]])
    else:
        raise DataError(f"{path}: {image.shape[2]}-channel images are not supported")
    return orient(image, facts.orientation)


# The most bytes one pixel can take in a file deblur reads: four float64 channels, uncompressed.
MAX_BYTES_PER_PIXEL = 32
FILE_SLACK = 16 << 20  # headers, metadata, thumbnails


def _check_file(path: Path, limit_mp: float) -> None:
    """Refuse, before reading a byte, what is not a regular file (a pipe would block for ever, a device
    never end) and a file larger than any image within the pixel limit can be."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise DataError(f"{path}: is a folder, not an image")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"{path}: not a regular file (a pipe, socket or device); save the image to a file first")
    most = limit_mp * 1e6 * MAX_BYTES_PER_PIXEL + FILE_SLACK
    if st.st_size > most:
        raise DataError(f"{path}: {st.st_size / 2**20:,.0f} MiB is larger than any image within the limit of "
                        f"{limit_mp:g} megapixels can be, so it is not read (raise the limit with "
                        "DEBLUR_MAX_MEGAPIXELS, or --max-megapixels in deblur predict)")


def _to_uint16(image: np.ndarray) -> np.ndarray:
    """Float or 32-bit TIFFs are rare; scale them into 16 bits rather than refusing them."""
    image = image.astype(np.float64)
    top = 1.0 if image.max() <= 1.0 else image.max()
    return np.clip(image / top * 65535.0 + 0.5, 0, 65535).astype(np.uint16)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8/uint16 -> float32 in [0, 1], with a single full-size allocation (24 MP photos)."""
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    out = image.astype(np.float32)
    out *= np.float32(1.0 / scale)
    return out


def from_float(image: np.ndarray, dtype: np.dtype | type = np.uint8, what: str = "the model's output") -> np.ndarray:
    """float in [0, 1] -> uint8/uint16, clipped and rounded (never wrapped).

    Works in float32 in place: a 24 MP photo must not cost several float64 copies. NaN or inf is
    refused (a DataError): cast to integers it would become black or white pixels, a plausible image.
    """
    check_finite(image, what)
    top = 65535.0 if np.dtype(dtype) == np.uint16 else 255.0
    x = np.multiply(image, np.float32(top), dtype=np.float32)
    np.rint(x, out=x)
    np.clip(x, 0.0, top, out=x)
    return x.astype(dtype)


def check_finite(image: np.ndarray, what: str) -> None:
    """Raise a DataError if `image` holds NaN or inf.

    A float64 sum is NaN or inf exactly when some value is (values near [0, 1] cannot overflow it), and
    it needs no full-size temporary; the values are counted only when something is wrong.
    """
    if math.isfinite(float(np.sum(image, dtype=np.float64))):
        return
    bad = int(image.size - np.count_nonzero(np.isfinite(image)))
    if bad:
        raise DataError(f"{what} holds NaN or infinite values ({bad:,} of {image.size:,}); nothing is written")


def convert_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Convert HxWxC to 1 (luma, BT.601) or 3 channels; alpha is dropped, not blended."""
    have = image.shape[2]
    if have == 4:
        image, have = image[:, :, :3], 3
    elif have == 2:  # gray + alpha
        image, have = image[:, :, :1], 1
    if have == channels:
        return image
    if channels == 3:
        return np.repeat(image, 3, axis=2)
    if channels == 1:
        gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
        return gray[:, :, None]
    raise ValueError(f"cannot convert to {channels} channels")


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to (height, width): INTER_AREA when shrinking (no aliasing), cubic when enlarging."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    shrinking = h * w < image.shape[0] * image.shape[1]
    out = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    return out if out.ndim == 3 else out[:, :, None]


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop
        return None


def _below(path: Path, folder: Path) -> bool:
    where = _resolved(path)
    return where is not None and where != folder and where.is_relative_to(folder)


def expand_inputs(inputs: Iterable[str | Path], recursive: bool = False,
                  output: Path | None = None) -> Iterator[Path]:
    """Yield image files from a mix of files and folders, each once, in a stable order.

    With `recursive`, an `output` folder inside an input folder holds the command's own results of an
    earlier run: its images are left out, never read back as inputs.
    """
    seen: set[Path] = set()
    out = _resolved(output) if output is not None and recursive else None
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path, recursive=recursive)
            folder = _resolved(path)
            own = out is not None and folder is not None and _below(out, folder)
            if own and out is not None:
                found = [p for p in found if not (_resolved(p) or p).is_relative_to(out)]
            if not found:
                raise DataError(f"{path}: no images found ({', '.join(IMAGE_EXTENSIONS)})"
                                + (f" outside the output folder {output}" if own else ""))
        elif path.exists():
            found = [path]
        else:
            raise DataError(f"{path}: no such file or folder")
        for p in found:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                yield p
