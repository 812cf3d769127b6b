"""deblur.imaging.imageio: reading hostile images (bombs, lying headers, huge files, NaN pixels) gives an image
or a DataError, EXIF orientation as Pillow, atomic writes."""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from conftest import png_claiming, smooth_image, write_png
from deblur.core.errors import DataError
from deblur.imaging.imageio import from_float, header_size, read_image


def png_chunk(kind: bytes, payload: bytes, good_crc: bool = True) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc if good_crc else crc ^ 1)


def with_bad_text_chunk(png: bytes) -> bytes:
    """One ancillary tEXt chunk with a wrong CRC after IHDR: Pillow gives up on the file, libpng decodes it."""
    return png[:33] + png_chunk(b"tEXt", b"note\x00hello", good_crc=False) + png[33:]


def _exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert a minimal EXIF APP1 segment with one Orientation tag after the JPEG's SOI marker."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_reports_and_images_are_written_atomically(tmp_path: Path, monkeypatch):
    from deblur.imaging import imageio

    target = tmp_path / "metrics.json"
    target.write_text("old report")

    class Exploding:
        def __init__(self, *a, **k):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def write(self, data):
            raise KeyboardInterrupt  # Ctrl-C in the middle of the write

    monkeypatch.setattr(imageio.os, "fdopen", Exploding)
    with pytest.raises(KeyboardInterrupt):
        imageio.atomic_write_text(target, "new report")
    assert target.read_text() == "old report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_float_tiff_pillow_cannot_open_is_sized_from_its_header_and_read(tmp_path: Path):
    path = tmp_path / "f32.tif"
    assert cv2.imwrite(str(path), np.random.default_rng(0).random((9, 13, 3)).astype(np.float32))
    assert header_size(path.read_bytes()) == (13, 9)  # hand-read from the TIFF directory
    image = read_image(path)
    assert image.shape == (9, 13, 3) and image.dtype == np.uint16
    with pytest.raises(DataError, match="over the limit"):  # and still refused before decoding when too large
        read_image(path, max_pixels_mp=1e-5)


def test_a_file_larger_than_any_image_within_the_limit_is_not_read(tmp_path: Path):
    big = tmp_path / "huge.png"
    with open(big, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.truncate(200 << 20)  # sparse: costs no disk
    with pytest.raises(DataError, match="larger than any image"):
        read_image(big, max_pixels_mp=1)


def test_opencv_decoder_complaints_do_not_reach_the_terminal(tmp_path: Path, capfd):
    bad = tmp_path / "cut.png"  # sized from its header, then refused by the decoder
    bad.write_bytes(cv2.imencode(".png", smooth_image(np.random.default_rng(0), 40, 40))[1].tobytes()[:200])
    with pytest.raises(DataError, match="not a readable image"):
        read_image(bad)
    err = capfd.readouterr().err
    assert "WARN" not in err and "grfmt" not in err, err


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(50_000, 50_000))
    with pytest.raises(DataError, match="2500 megapixels, over the limit of 100"):
        read_image(bomb)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=2048),
                 st.builds(lambda head, tail: head + tail,
                           st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"BM", b"II*\x00", b"RIFF"]),
                           st.binary(max_size=512))))
def test_arbitrary_bytes_read_as_an_image_or_a_data_error(payload: bytes):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.png"
        path.write_bytes(payload)
        try:
            image = read_image(path)
        except DataError:
            return
        assert image.ndim == 3 and image.shape[2] in (1, 3, 4)


def test_size_check_holds_when_pillow_cannot_parse_the_header(tmp_path: Path, rng):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(with_bad_text_chunk(png_claiming(12_000, 10_000)))  # 120 MP, over the 100 MP default
    with pytest.raises(DataError, match="12000x10000 is 120 megapixels, over the limit of 100"):
        read_image(bomb)
    # the same damage on an honest image: its size is read from IHDR by hand, and it still decodes
    image = smooth_image(rng, 9, 7)
    buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1]
    honest = tmp_path / "honest.png"
    honest.write_bytes(with_bad_text_chunk(buf.tobytes()))
    assert np.array_equal(read_image(honest), image)


def test_an_image_whose_size_cannot_be_read_from_its_header_is_refused_not_decoded(tmp_path: Path):
    ok, buf = cv2.imencode(".pam", np.full((4, 4, 3), 7, np.uint8))  # OpenCV decodes PAM, Pillow cannot read it
    assert ok and cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) is not None
    path = tmp_path / "x.png"
    path.write_bytes(buf.tobytes())
    with pytest.raises(DataError, match="size cannot be read from its header"):
        read_image(path)


def test_a_header_that_understates_the_decoded_size_is_still_refused(tmp_path: Path, rng, monkeypatch):
    path = tmp_path / "a.png"
    write_png(path, smooth_image(rng, 40, 50))
    monkeypatch.setattr("deblur.imaging.imageio.header_size", lambda data: (1, 1))  # a header parser fooled
    with pytest.raises(DataError, match="decodes to 50x40 although its header says 1x1"):
        read_image(path, max_pixels_mp=0.001)


def test_a_float_image_with_nan_pixels_is_refused(tmp_path: Path):
    pixels = np.full((4, 4), 0.5, np.float32)
    pixels[1, 2] = np.nan
    path = tmp_path / "f.tif"
    assert cv2.imwrite(str(path), pixels)
    with pytest.raises(DataError, match="NaN or infinite pixel values"):
        read_image(path)


def test_from_float_refuses_nan_and_inf_instead_of_writing_black_or_white():
    for bad in (np.nan, np.inf):
        image = np.full((4, 4, 3), 0.5, np.float32)
        image[1, 1, 1] = bad
        with pytest.raises(DataError, match=r"NaN or infinite values \(1 of 48\)"):
            from_float(image)
    assert from_float(np.full((2, 2, 1), 2.0, np.float32)).max() == 255  # finite but out of range: clipped


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_in_every_format(tmp_path: Path, fmt: str, orientation: int):
    image = np.random.default_rng(orientation).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, exif=exif.tobytes(),
                                **({"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}))
    path = tmp_path / f"x.{fmt.lower()}"
    path.write_bytes(buf.getvalue())
    with Image.open(path) as im:
        want = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    got = read_image(path)
    assert got.shape == want.shape
    if fmt != "JPEG":
        np.testing.assert_array_equal(got, want)


def test_exif_orientation_is_honoured(tmp_path: Path, rng):
    image = smooth_image(rng, 20, 40)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    path = tmp_path / "rotated.jpg"
    path.write_bytes(_exif_orientation(jpeg.tobytes(), 6))  # 6: rotate 90 degrees clockwise to view
    assert read_image(path).shape == (40, 20, 3)
