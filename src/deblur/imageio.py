"""Reading and writing images without losing what the user's file had.

Channel order is RGB(A) everywhere in deblur (OpenCV's BGR stops at this module). Bit depth and
alpha are kept so that `deblur predict` can return an image of the same kind as it was given.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from deblur.errors import DataError, DeblurError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_MAX_MEGAPIXELS = 100.0  # a 24 MP photo is fine; a 50,000 x 50,000 "bomb" is refused before decoding


def max_megapixels() -> float:
    """The pixel limit for every image read: DEBLUR_MAX_MEGAPIXELS, or 100."""
    value = os.environ.get("DEBLUR_MAX_MEGAPIXELS")
    try:
        return float(value) if value else DEFAULT_MAX_MEGAPIXELS
    except ValueError:
        raise DeblurError(f"DEBLUR_MAX_MEGAPIXELS={value!r} is not a number") from None


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
    except Exception:  # Pillow cannot parse every header OpenCV can decode; OpenCV then decides
        return None


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files under `folder`, sorted, so every run sees them in the same order."""
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if is_image_file(p))


def read_image(path: str | Path, max_pixels_mp: float | None = None) -> np.ndarray:
    """Read an image as HxWxC (C = 1, 3 or 4) uint8 or uint16, RGB(A), EXIF orientation applied.

    OpenCV applies EXIF orientation only when it may also drop alpha, so a file is decoded
    unchanged first and decoded again with orientation only if it has no alpha and carries EXIF.
    """
    path = Path(path)
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
    limit = max_megapixels() if max_pixels_mp is None else max_pixels_mp
    size = header_size(data.tobytes())
    if size is not None and size[0] * size[1] > limit * 1e6:
        raise DataError(f"{path}: {size[0]}x{size[1]} is {size[0] * size[1] / 1e6:.0f} megapixels, over the "
                        f"limit of {limit:g} (raise it with --max-megapixels or DEBLUR_MAX_MEGAPIXELS)")
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"{path}: not a readable image (corrupt, truncated or unsupported format)")
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
    if b"Exif" in data[:65536].tobytes():
        oriented = cv2.imdecode(data, cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
        if oriented is not None:
            image = oriented
    if image.dtype not in (np.uint8, np.uint16):
        image = _to_uint16(image)
    if image.ndim == 2:
        return image[:, :, None]
    if image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    raise DataError(f"{path}: {image.shape[2]}-channel images are not supported")


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


def from_float(image: np.ndarray, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """float in [0, 1] -> uint8/uint16, clipped and rounded (never wrapped).

    Works in float32 in place: a 24 MP photo must not cost several float64 copies.
    """
    top = 65535.0 if np.dtype(dtype) == np.uint16 else 255.0
    x = np.multiply(image, np.float32(top), dtype=np.float32)
    np.rint(x, out=x)
    np.clip(x, 0.0, top, out=x)
    return x.astype(dtype)


def convert_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """Convert HxWxC to 1 (luma, BT.601) or 3 channels; alpha is dropped, not blended."""
    have = image.shape[2]
    if have == 4:
        image, have = image[:, :, :3], 3
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


def encode_png(image: np.ndarray) -> bytes:
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise DeblurError("could not encode PNG")
    return buf.tobytes()


def atomic_write_bytes(path: str | Path, payload: bytes) -> None:
    """Write to a temporary file beside `path` and rename it into place.

    A crash or Ctrl-C therefore never leaves a half-written file under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_png(path: str | Path, image: np.ndarray) -> None:
    atomic_write_bytes(path, encode_png(image))


def expand_inputs(inputs: Iterable[str | Path], recursive: bool = False) -> Iterator[Path]:
    """Yield image files from a mix of files and folders, each once, in a stable order."""
    seen: set[Path] = set()
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = list_images(path, recursive=recursive)
            if not found:
                raise DataError(f"{path}: no images found ({', '.join(IMAGE_EXTENSIONS)})")
        elif path.exists():
            found = [path]
        else:
            raise DataError(f"{path}: no such file or folder")
        for p in found:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                yield p
