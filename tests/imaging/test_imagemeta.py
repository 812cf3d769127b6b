"""deblur.imaging.imagemeta: EXIF orientation patched in place, the thumbnail dropped."""

from __future__ import annotations

import struct

import pytest
from PIL import Image

from deblur.imaging.imagemeta import upright_exif

DATE_TAG, EXIF_IFD, GPS_IFD, ORIENTATION = 0x9003, 0x8769, 0x8825, 0x0112


@pytest.mark.parametrize("order", ["<", ">"])
def test_upright_exif_patches_orientation_in_place_and_drops_the_thumbnail(order: str):
    magic = b"II*\x00" if order == "<" else b"MM\x00*"
    entries = [(0x010F, 2, 4, b"abc\x00"), (ORIENTATION, 3, 1, struct.pack(order + "HH", 8, 0))]
    ifd = struct.pack(order + "H", len(entries)) + b"".join(
        struct.pack(order + "HHI", tag, kind, n) + value for tag, kind, n, value in entries)
    tiff = magic + struct.pack(order + "I", 8) + ifd + struct.pack(order + "I", 999) + b"thumbnail"
    fixed = upright_exif(tiff)
    assert len(fixed) == len(tiff)  # patched, not re-encoded: every other byte where it was
    exif = Image.Exif()
    exif.load(fixed)
    assert exif[ORIENTATION] == 1 and exif[0x010F] == "abc"
    assert struct.unpack(order + "I", fixed[8 + 2 + 24:8 + 2 + 24 + 4]) == (0,)  # no IFD1
    for bad in (b"", b"XX*\x00\x08\x00\x00\x00", tiff[:12], tiff.replace(b"\x12\x01\x03\x00", b"\x12\x01\x04\x00")
                if order == "<" else tiff.replace(b"\x01\x12\x00\x03", b"\x01\x12\x00\x04")):
        with pytest.raises(ValueError):
            upright_exif(bad)
