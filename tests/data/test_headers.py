"""deblur.data.headers: image headers give the decoded shape without decoding."""

from __future__ import annotations

import cv2
import numpy as np

from conftest import smooth_image
from deblur.data.headers import probe
from deblur.data.store import FileStore


def _chunk(tag: bytes, payload: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def test_headers_give_the_decoded_shape(tmp_path, rng):
    """Gray, gray + alpha, RGBA, 16-bit, and EXIF-rotated JPEGs: the header's answer is what is decoded."""
    from PIL import Image

    files = {
        "gray.png": smooth_image(rng, 20, 30, 1)[:, :, 0],
        "gray16.png": (smooth_image(rng, 20, 30, 1)[:, :, 0].astype(np.uint16) * 257),
        "rgba.png": np.dstack([smooth_image(rng, 20, 30), np.full((20, 30), 200, np.uint8)]),
    }
    for name, im in files.items():
        assert cv2.imwrite(str(tmp_path / name), im)
    Image.fromarray(smooth_image(rng, 20, 30, 1)[:, :, 0]).convert("LA").save(tmp_path / "la.png")
    Image.fromarray(smooth_image(rng, 20, 30, 1)[:, :, 0]).save(tmp_path / "gray.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate a quarter turn: 30x20 as stored, 20x30 as shown
    Image.fromarray(smooth_image(rng, 20, 30)).save(tmp_path / "rotated.jpg", exif=exif)
    exif[0x0112] = 8
    png = cv2.imencode(".png", smooth_image(rng, 20, 30))[1].tobytes()
    for where, at in (("early", 33), ("late", len(png) - 12)):  # after IHDR; just before IEND (after the pixels)
        (tmp_path / f"exif_{where}.png").write_bytes(png[:at] + _chunk(b"eXIf", exif.tobytes()[6:]) + png[at:])
    paths = sorted(tmp_path.iterdir())
    store = FileStore(paths)
    for i, path in enumerate(paths):
        assert probe(path) == store[i].shape, path.name
    for name in ("rotated.jpg", "exif_early.png", "exif_late.png"):
        assert store.shape(paths.index(tmp_path / name)) == (30, 20, 3), name
