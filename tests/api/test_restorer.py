"""The Python API (deblur.Restorer, deblur.load_model): dtypes, shapes and alpha kept, bad arguments named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import smooth_image
from deblur.core.errors import DeblurError


@pytest.fixture
def restorer(model_file: Path):
    from deblur import Restorer

    return Restorer.load(model_file, tile=32, overlap=8)


def test_restorer_keeps_dtype_shape_and_alpha(restorer, rng):
    from deblur.restore.predict import restore_image

    rgb = smooth_image(rng, 45, 70)
    out8 = restorer(rgb)
    assert out8.dtype == np.uint8 and out8.shape == rgb.shape
    np.testing.assert_array_equal(out8, restore_image(restorer.engine, rgb, 32, 8))  # predict's own path
    out16 = restorer(rgb.astype(np.uint16) * 257)
    assert out16.dtype == np.uint16 and np.abs(out16 // 257 - out8.astype(int)).max() <= 1
    for dtype in (np.float32, np.float64):
        outf = restorer(rgb.astype(dtype) / 255)
        assert outf.dtype == dtype and outf.shape == rgb.shape
        assert np.abs(outf * 255 - out8).max() <= 1
    gray = rgb[:, :, 0]
    assert restorer(gray).shape == gray.shape and restorer(gray[:, :, None]).shape == (45, 70, 1)
    alpha = rng.integers(0, 256, (45, 70, 1), dtype=np.uint8)
    rgba = restorer(np.concatenate([rgb, alpha], axis=2))
    assert rgba.shape == (45, 70, 4) and np.array_equal(rgba[:, :, 3:], alpha)
    np.testing.assert_array_equal(rgba[:, :, :3], out8)
    gray_alpha = restorer(np.concatenate([rgb[:, :, :1], alpha], axis=2))
    assert gray_alpha.shape == (45, 70, 2) and np.array_equal(gray_alpha[:, :, 1:], alpha)


def test_float_input_is_clipped_and_bad_arrays_are_refused(restorer, rng):
    image = rng.random((20, 24, 3))
    wild = image * 3 - 1  # values far outside [0, 1]
    np.testing.assert_allclose(restorer(wild), restorer(np.clip(wild, 0, 1)))
    assert restorer(wild).min() >= 0 and restorer(wild).max() <= 1
    bad = image.copy()
    bad[3, 4, 0] = np.nan
    with pytest.raises(DeblurError, match="NaN"):
        restorer(bad)
    for wrong, words in ((image.astype(np.int32), "dtype int32"), (image[None], "shape"),
                         (np.zeros((4, 4, 5), np.uint8), "shape"), ([[0.5]], "NumPy")):
        with pytest.raises(DeblurError, match=words):
            restorer(wrong)


def test_tiles_are_checked_against_the_model(model_file: Path):
    from deblur import Restorer

    with pytest.raises(DeblurError, match=r"^tile 8: "):  # the API names its argument; `deblur predict` says --tile
        Restorer.load(model_file, tile=8)


def test_builtin_network_restores_a_small_photo(rng):
    from deblur import Restorer

    restore = Restorer.load("builtin-network", tile=64, overlap=16)  # the network shipped before the blind restorer
    assert restore.engine is not None and restore.engine.name == "keras" and restore.engine.channels == 3
    image = smooth_image(rng, 50, 70)
    out = restore(image)
    assert out.shape == image.shape and out.dtype == np.uint8 and not np.array_equal(out, image)


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"tile": float("nan")}, "tile"), ({"tile": "512"}, "tile"), ({"tile": 64.0}, "tile"), ({"tile": True}, "tile"),
    ({"overlap": None}, "overlap"), ({"path": 123}, "path"), ({"path": b"m.keras"}, "path"),
    ({"engine": None}, "engine"), ({"engine": "tensorrt"}, "engine"),
])
def test_restorer_load_names_a_bad_argument(model_file: Path, kwargs: dict, name: str):
    from deblur import Restorer

    kwargs = {"path": model_file, **kwargs}
    with pytest.raises(DeblurError, match=name):
        Restorer.load(**kwargs)


def test_restorer_and_load_model_refuse_bad_arguments(model_file: Path):
    from deblur import Restorer, load_model
    from deblur.api import open_engine

    engine = open_engine(model_file)
    with pytest.raises(DeblurError, match="tile"):
        Restorer(engine, tile=float("nan"))
    with pytest.raises(DeblurError, match="engine"):
        Restorer(str(model_file))  # a path where the engine goes
    with pytest.raises(DeblurError, match="path"):
        load_model(123)
    assert Restorer(engine, tile=np.int64(64), overlap=8).tile == 64  # NumPy integers are whole numbers
