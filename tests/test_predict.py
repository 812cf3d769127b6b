"""Prediction a photographer can use: any size in tiles without seams, every common format."""

import struct
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from conftest import smooth_image
from deblur.imaging.imageio import read_image
from deblur.imaging.metrics import psnr
from deblur.imaging.tiling import restore_tiled
from deblur.models import MODELS
from deblur.restore.engines import as_engine
from deblur.restore.predict import restore_full, restore_image


@pytest.fixture(scope="module")
def trained_unet():
    """A small residual U-Net that has really learnt some deblurring (a few seconds of training)."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    sharp = np.stack([smooth_image(rng, 48, 48) for _ in range(32)]).astype(np.float32) / 255
    blurred = np.stack([cv2.GaussianBlur(s, (7, 7), 1.5) for s in sharp])
    model = MODELS.get("unet")(3, depth=2, base_filters=8, residual=True)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="mse")
    model.fit(blurred, sharp, epochs=30, batch_size=16, verbose=0)
    return model


@pytest.mark.parametrize("shape", [(100, 150, 3), (64, 64, 1), (37, 200, 2)])
def test_blending_is_exact_for_identity_and_offsets(shape, rng):
    image = rng.random(shape).astype(np.float32)
    same = restore_tiled(lambda t: t, image, tile=32, overlap=8, multiple=4)
    np.testing.assert_allclose(same, image, atol=1e-6)
    shifted = restore_tiled(lambda t: t + 0.25, image, tile=32, overlap=8, multiple=4)
    np.testing.assert_allclose(shifted, image + 0.25, atol=1e-6)  # weights sum to one everywhere


def test_tiled_and_whole_agree_within_a_tenth_of_a_db(trained_unet, rng):
    sharp = smooth_image(rng, 160, 224).astype(np.float32) / 255
    blurred = cv2.GaussianBlur(sharp, (7, 7), 1.5)
    engine = as_engine(trained_unet)
    whole = restore_full(engine, blurred, tile=None)
    tiled = restore_full(engine, blurred, tile=64, overlap=16)
    gain = psnr(sharp, whole) - psnr(sharp, blurred)
    assert gain > 0.5  # the model really deblurs, so the comparison means something
    assert abs(psnr(sharp, tiled) - psnr(sharp, whole)) < 0.1
    assert psnr(whole, tiled) > 40


def _exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert a minimal EXIF APP1 segment with one Orientation tag after the JPEG's SOI marker."""
    ifd = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_exif_orientation_is_honoured(tmp_path: Path, rng):
    image = smooth_image(rng, 20, 40)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    path = tmp_path / "rotated.jpg"
    path.write_bytes(_exif_orientation(jpeg.tobytes(), 6))  # 6: rotate 90 degrees clockwise to view
    assert read_image(path).shape == (40, 20, 3)


FORMATS = [
    ("png", "rgb8"), ("png", "gray8"), ("png", "rgba8"), ("png", "rgb16"), ("png", "gray16"),
    ("jpg", "rgb8"), ("jpg", "gray8"), ("bmp", "rgb8"), ("tif", "rgb8"), ("tif", "rgb16"), ("tif", "rgba8"),
    ("webp", "rgb8"),
]


@pytest.mark.parametrize(("ext", "kind"), FORMATS)
def test_every_format_round_trips_with_its_layout(ext, kind, tmp_path: Path, trained_unet, rng):
    base = smooth_image(rng, 30, 41)
    image = {"rgb8": base, "gray8": base[:, :, :1], "rgba8": np.dstack([base, np.full(base.shape[:2], 200, np.uint8)]),
             "rgb16": base.astype(np.uint16) * 257, "gray16": base[:, :, :1].astype(np.uint16) * 257}[kind]
    bgr = image if image.shape[2] == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3
                                                           else cv2.COLOR_RGBA2BGRA)
    path = tmp_path / f"in.{ext}"
    assert cv2.imwrite(str(path), bgr)
    read = read_image(path)
    assert read.shape == image.shape and read.dtype == image.dtype
    if ext in ("png", "bmp", "tif"):
        np.testing.assert_array_equal(read, image)  # lossless formats come back exactly, in RGB order
    out = restore_image(trained_unet, read, tile=16, overlap=4)
    assert out.shape == image.shape and out.dtype == image.dtype
    if kind == "rgba8":
        np.testing.assert_array_equal(out[:, :, 3], 200)
    if kind.endswith("16"):
        assert len(np.unique(out)) > 256  # 16-bit precision kept, not 8-bit values scaled up


def test_models_run_on_images_of_another_channel_count(fmnist_folder, rng):
    """An untrained NAFNet returns its input, so any channel adaptation must give the input back."""
    from deblur.config import from_dict
    from deblur.evaluation.evaluate import evaluate
    from deblur.models import MODELS
    from deblur.restore.predict import across_channels, restore_batch

    tiny = {"width": 4, "enc_blocks": [1], "middle_blocks": 1, "dec_blocks": [1]}
    rgb, gray = MODELS.get("nafnet")(3, **tiny), MODELS.get("nafnet")(1, **tiny)
    g = rng.random((2, 8, 8, 1)).astype(np.float32)
    c = rng.random((2, 8, 8, 3)).astype(np.float32)
    e_rgb, e_gray = as_engine(rgb), as_engine(gray)
    np.testing.assert_allclose(across_channels(e_rgb, g, lambda x: restore_batch(e_rgb, x)), g, atol=1e-6)
    np.testing.assert_allclose(across_channels(e_gray, c, lambda x: restore_batch(e_gray, x)), c, atol=1e-6)
    cfg = from_dict({"data": {"source": "fashion_mnist", "path": str(fmnist_folder), "val_split": 0.2,
                              "degradation": {"kind": "gaussian", "ksize": 3, "sigma": 0}}})
    result = evaluate({"rgb": rgb}, cfg, baselines="identity", gallery=False)
    assert result.summary["gain"]["rgb"]["psnr"] == pytest.approx(0.0, abs=1e-6)
