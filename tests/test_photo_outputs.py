"""Photos stay photos (issue 18): `predict` and `blur` write a JPEG input as a JPEG (quality 95, 4:4:4)
with its EXIF (Orientation reset to 1) and ICC profile, PNG for the rest or on request; 16-bit and
alpha never as JPEG; damaged or oversized metadata is dropped with a note, never a crash."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin

from conftest import cli_error, invoke, smooth_image, write_png
from deblur.imaging import outputs
from deblur.imaging.imageio import encode_image, read_image
from deblur.imaging.imagemeta import MAX_EXIF_BYTES, Metadata, read_metadata, upright_exif

DATE = "2021:05:01 10:00:00"
GPS = {1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (13.0, 24.0, 0.25)}
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
DATE_TAG, EXIF_IFD, GPS_IFD, ORIENTATION = 0x9003, 0x8769, 0x8825, 0x0112


def camera_exif(orientation: int = 6) -> bytes:
    """EXIF as a phone writes it: orientation, the date taken (Exif IFD) and a location (GPS IFD)."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "deblur-test-camera"  # Make
    exif.get_ifd(EXIF_IFD)[DATE_TAG] = DATE
    exif.get_ifd(GPS_IFD).update(GPS)
    return exif.tobytes()


def save_photo(path: Path, image: np.ndarray, **kwargs: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, **kwargs)
    return path


def with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """A JPEG with one more APP1 segment right after SOI (for blocks Pillow would not write)."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def png_with_chunk(png: bytes, tag: bytes, payload: bytes) -> bytes:
    chunk = struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))
    return png[:33] + chunk + png[33:]  # right after IHDR


def notes_of(result) -> str:
    return "\n".join(line for line in result.output.splitlines() if line.startswith("note: "))


@pytest.fixture
def sideways_photo(tmp_path: Path, rng) -> Path:
    """A 30 (wide) x 20 JPEG stored sideways (Orientation 6), with date, GPS and an sRGB profile."""
    return save_photo(tmp_path / "in" / "photo.jpg", smooth_image(rng, 20, 30), quality=90, exif=camera_exif(6),
                      icc_profile=SRGB)


def check_photo(path: Path, size: tuple[int, int]) -> None:
    """`path` is a 4:4:4 JPEG of `size` (as viewers show it) with the camera's EXIF, upright, and sRGB."""
    with Image.open(path) as im:
        assert im.format == "JPEG" and im.size == size
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4: no chroma subsampling
        exif = im.getexif()
        assert exif[ORIENTATION] == 1  # the pixels are upright: a kept 6 would make viewers turn them again
        assert exif[0x010F] == "deblur-test-camera"
        assert exif.get_ifd(EXIF_IFD)[DATE_TAG] == DATE
        assert exif.get_ifd(GPS_IFD) == GPS
        assert im.info["icc_profile"] == SRGB
        quant = im.quantization
    buf = io.BytesIO()  # quality 95: the quantisation tables Pillow writes for 95
    Image.new("RGB", (8, 8)).save(buf, "JPEG", quality=95, subsampling=0)
    assert Image.open(buf).quantization == quant


def test_a_jpeg_gives_a_jpeg_with_its_exif_gps_and_icc_and_orientation_1(tmp_path: Path, sideways_photo: Path,
                                                                         model_file: Path):
    out = tmp_path / "out"
    result = invoke("predict", sideways_photo, "-c", model_file, "-o", out, "--side-by-side")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["photo.jpg", "photo_side_by_side.jpg"]
    check_photo(out / "photo.jpg", (20, 30))  # stored 30 x 20, shown (and written) 20 wide, 30 high
    with Image.open(out / "photo_side_by_side.jpg") as im:
        assert im.format == "JPEG" and im.getexif()[ORIENTATION] == 1 and im.info["icc_profile"] == SRGB
    # read back by deblur itself (which applies orientation): the same shape as the input, not turned twice
    assert read_image(out / "photo.jpg").shape == read_image(sideways_photo).shape == (30, 20, 3)
    assert notes_of(result).count("note:") <= 1  # only the engine's; nothing about the metadata

    blurred = tmp_path / "blurred"
    result = invoke("blur", sideways_photo, "--sample", "chelsea", "-o", blurred)
    assert result.exit_code == 0, result.output
    check_photo(blurred / "photo.jpg", (20, 30))
    assert (blurred / "chelsea.png").exists()  # a built-in sample is no JPEG file: PNG, as before


def test_a_png_stays_a_png(tmp_path: Path, model_file: Path, rng):
    image = smooth_image(rng, 14, 18)
    write_png(tmp_path / "in" / "a.png", image)
    result = invoke("predict", tmp_path / "in", "-c", model_file, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]
    with Image.open(tmp_path / "out" / "a.png") as im:
        assert im.format == "PNG" and im.size == (18, 14) and "icc_profile" not in im.info and not im.getexif()


def test_format_png_keeps_the_metadata_in_the_png(tmp_path: Path, sideways_photo: Path, model_file: Path):
    out = tmp_path / "out"
    result = invoke("predict", sideways_photo, "-c", model_file, "-o", out, "--format", "png")
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["photo.png"]
    with Image.open(out / "photo.png") as im:
        assert im.format == "PNG" and im.size == (20, 30) and im.info["icc_profile"] == SRGB
        exif = im.getexif()
        assert exif[ORIENTATION] == 1 and exif.get_ifd(EXIF_IFD)[DATE_TAG] == DATE and exif.get_ifd(GPS_IFD) == GPS
    assert read_image(out / "photo.png").shape == (30, 20, 3)  # deblur reads a PNG's eXIf too: not turned twice


def test_sixteen_bits_and_alpha_are_never_jpeg(tmp_path: Path, model_file: Path, rng):
    base = smooth_image(rng, 12, 16)
    write_png(tmp_path / "in" / "deep.png", base.astype(np.uint16) * 257)
    write_png(tmp_path / "in" / "alpha.png", np.dstack([base, np.full(base.shape[:2], 90, np.uint8)]))
    write_png(tmp_path / "in" / "plain.png", base)
    save_photo(tmp_path / "in" / "web.webp", np.dstack([base, np.full(base.shape[:2], 90, np.uint8)]), lossless=True)
    out = tmp_path / "out"
    result = invoke("predict", tmp_path / "in", "-c", model_file, "-o", out, "--format", "jpeg")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["alpha.png", "deep.png", "plain.jpg", "web.png"]
    for name in ("deep.png", "alpha.png", "web.webp"):
        assert f"note: {name}: written as PNG, not JPEG" in result.output
    assert read_image(out / "deep.png").dtype == np.uint16
    assert read_image(out / "alpha.png").shape == (12, 16, 4)
    with Image.open(out / "plain.jpg") as im:
        assert im.format == "JPEG"


def test_strip_metadata(tmp_path: Path, sideways_photo: Path, model_file: Path):
    out = tmp_path / "out"
    result = invoke("predict", sideways_photo, "-c", model_file, "-o", out, "--strip-metadata")
    assert result.exit_code == 0, result.output
    with Image.open(out / "photo.jpg") as im:
        assert im.size == (20, 30) and not im.getexif() and "icc_profile" not in im.info
    result = invoke("blur", sideways_photo, "-o", tmp_path / "b", "--strip-metadata", "--format", "png")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "b" / "photo.png") as im:
        assert not im.getexif() and "icc_profile" not in im.info


def test_damaged_or_oversized_metadata_is_dropped_with_a_note(tmp_path: Path, model_file: Path, rng):
    image = smooth_image(rng, 12, 16)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=90)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "garbage.jpg").write_bytes(with_app1(buf.getvalue(), b"Exif\x00\x00" + b"\xde\xad" * 40))
    truncated = camera_exif(6)[6:][:30]  # a directory that runs past the end of its block
    (folder / "truncated.jpg").write_bytes(with_app1(buf.getvalue(), b"Exif\x00\x00" + truncated))
    bad_icc = bytearray(SRGB)
    bad_icc[36:40] = b"nope"
    save_photo(folder / "badicc.jpg", image, icc_profile=bytes(bad_icc))
    png = io.BytesIO()
    Image.fromarray(image).save(png, "PNG")
    huge_exif = b"MM\x00*\x00\x00\x00\x08" + b"\x00" * (MAX_EXIF_BYTES + 10)
    (folder / "huge.png").write_bytes(png_with_chunk(png.getvalue(), b"eXIf", huge_exif))
    bomb = zlib.compress(b"\x00" * (64 << 20), 9)  # 64 MiB of zeros in a small chunk
    (folder / "bomb.png").write_bytes(png_with_chunk(png.getvalue(), b"iCCP", b"icc\x00\x00" + bomb))
    out = tmp_path / "out"
    result = invoke("predict", folder, "-c", model_file, "-o", out)
    assert result.exit_code == 0, result.output
    assert "restored 5 image(s)" in result.output and "Traceback" not in result.output
    for name, what in (("garbage.jpg", "EXIF block"), ("truncated.jpg", "EXIF block"), ("badicc.jpg", "ICC profile"),
                       ("huge.png", "EXIF block"), ("bomb.png", "ICC profile")):
        assert f"note: {name}: its {what} is dropped" in result.output, name
    for name in ("garbage.jpg", "truncated.jpg", "badicc.jpg", "huge.png", "bomb.png"):
        with Image.open(out / name) as im:
            assert not im.getexif() and "icc_profile" not in im.info, name


def test_names_follow_the_format_so_a_jpg_and_a_png_collide_only_in_one_format(tmp_path: Path, rng):
    folder = tmp_path / "in"
    write_png(folder / "a.png", smooth_image(rng, 8, 8))
    save_photo(folder / "a.jpg", smooth_image(rng, 8, 8))
    items = [("a", folder / "a.png"), ("a", folder / "a.jpg")]
    plan = outputs.plan(items, tmp_path / "out")
    assert [j.targets[0].name for j in plan.jobs] == ["a.png", "a.jpg"]
    with pytest.raises(Exception, match="would both be written to"):
        outputs.plan(items, tmp_path / "out", fmt="png")
    (tmp_path / "out").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "out" / "a.jpg")  # a JPEG there from an earlier run
    with pytest.raises(Exception, match=r"a\.jpg already exists"):
        outputs.plan(items, tmp_path / "out")
    plan = outputs.plan(items, tmp_path / "out", skip_existing=True)  # continues with the one not written yet
    assert [j.targets[0].name for j in plan.jobs] == ["a.png"] and plan.skipped == 1
    # the content decides, not the name: a PNG called .jpg is no JPEG, and gives a PNG
    save_photo(tmp_path / "odd" / "b.jpg", smooth_image(rng, 8, 8), format="PNG")
    assert outputs.plan([("b", tmp_path / "odd" / "b.jpg")], tmp_path / "o2").jobs[0].targets[0].name == "b.png"
    assert "--format: 'gif' is not allowed" in cli_error(invoke("blur", folder / "a.png", "-o", tmp_path / "x",
                                                              "--format", "gif"))


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


def test_a_profile_of_another_colour_space_is_left_out(tmp_path: Path, model_file: Path, rng):
    """A CMYK JPEG decodes to RGB: its CMYK profile would misdescribe every colour of the output."""
    cmyk = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cmyk = cmyk[:16] + b"CMYK" + cmyk[20:]
    image = smooth_image(rng, 8, 8)
    for suffix in (".jpg", ".png"):
        with Image.open(io.BytesIO(encode_image(image, suffix, Metadata(None, cmyk)))) as im:
            assert "icc_profile" not in im.info
        with Image.open(io.BytesIO(encode_image(image[:, :, :1], suffix, Metadata(None, SRGB)))) as im:
            assert "icc_profile" not in im.info  # an RGB profile on a gray image
    path = save_photo(tmp_path / "g.jpg", image, icc_profile=SRGB)
    assert read_metadata(path).icc == SRGB
    save_photo(tmp_path / "in" / "print.jpg", image, icc_profile=cmyk, exif=camera_exif(1))  # CMYK profile, RGB
    Image.fromarray(image).convert("CMYK").save(tmp_path / "in" / "cmyk.jpg", icc_profile=cmyk)
    result = invoke("predict", tmp_path / "in", "-c", model_file, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    for name in ("print.jpg", "cmyk.jpg"):
        assert f"note: {name}: its ICC profile is dropped (a CMYK profile" in result.output
        with Image.open(tmp_path / "out" / name) as im:
            assert im.mode == "RGB" and "icc_profile" not in im.info
    with Image.open(tmp_path / "out" / "print.jpg") as im:
        assert im.getexif().get_ifd(EXIF_IFD)[DATE_TAG] == DATE  # the EXIF is still kept


def test_a_header_that_lies_about_its_depth_fails_that_image_only(tmp_path: Path, rng, monkeypatch):
    """Planned as JPEG from its header, decoded as 16 bits: nothing written (never a JPEG that lost
    8 bits), the image reported as failed, and the job goes on."""
    deep = smooth_image(rng, 8, 8).astype(np.uint16) * 257
    write_png(tmp_path / "in" / "deep.png", deep)
    monkeypatch.setattr(outputs, "jpeg_facts", lambda path: (True, True))
    plan = outputs.plan([("deep", tmp_path / "in" / "deep.png")], tmp_path / "out", fmt="jpeg")
    assert plan.jobs[0].targets[0].name == "deep.jpg"
    summary = outputs.WriteSummary()
    outputs.write_job(plan.jobs[0], [read_image(tmp_path / "in" / "deep.png")], summary, 1)
    assert summary.written == [] and "rerun with --format png" in summary.failed[0][1]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
