"""Prediction a photographer can use: any size in tiles, every common format, any channel count; a runtime
failure is one line."""

from __future__ import annotations

from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from conftest import smooth_image
from deblur.imaging.imageio import read_image
from deblur.imaging.metrics import psnr
from deblur.models import MODELS
from deblur.restore.engines import as_engine
from deblur.restore.predict import restore_full, restore_image


class _Failing:
    """An engine whose runtime raises `error` (what onnxruntime and OpenVINO raise are RuntimeErrors)."""

    name, channels, multiple, fixed_size, source = "onnx", 3, 8, None, Path("m.onnx")

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        raise self.error


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

FORMATS = [
    ("png", "rgb8"), ("png", "gray8"), ("png", "rgba8"), ("png", "rgb16"), ("png", "gray16"),
    ("jpg", "rgb8"), ("jpg", "gray8"), ("bmp", "rgb8"), ("tif", "rgb8"), ("tif", "rgb16"), ("tif", "rgba8"),
    ("webp", "rgb8"),
]


def test_a_runtime_failure_is_one_line_and_out_of_memory_stays_out_of_memory():
    from deblur.core.failures import failure_line
    from deblur.restore.predict import ModelRunError, run_engine

    batch = np.zeros((1, 8, 8, 3), np.float32)
    with pytest.raises(ModelRunError, match=r"m\.onnx: the model failed on a 1x8x8x3 input .*Non-zero status code"):
        run_engine(_Failing(RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code")), batch)
    oom = RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Failed to allocate memory for requested buffer "
                       "of size 68719476736")
    with pytest.raises(RuntimeError) as err:
        run_engine(_Failing(oom), batch)
    assert failure_line(err.value).startswith("out of memory")  # was: internal error (a bug in deblur)
    assert failure_line(RuntimeError("std::bad_alloc")).startswith("out of memory")


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
