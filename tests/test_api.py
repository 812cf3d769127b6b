"""The Python API (deblur.Restorer, deblur.load_model) and the one loading module everything uses."""

from __future__ import annotations

import subprocess
import sys
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


def test_load_model_after_a_cheap_import_deblur(model_file: Path):
    """`import deblur` imports neither Keras nor TensorFlow; deblur.load_model then loads a checkpoint
    with deblur's layers (the built-in NAFNet uses SimpleGate), and so does keras.saving.load_model
    after `import deblur.models` (the two ways docs/prediction.md gives)."""
    from deblur.pretrained import default_checkpoint

    code = ("import sys\nimport deblur\n"
            "assert 'keras' not in sys.modules and 'tensorflow' not in sys.modules\n"
            f"b = deblur.load_model({str(default_checkpoint())!r})\n"
            f"t = deblur.load_model({str(model_file)!r})\n"
            "import deblur.models\nimport keras\n"
            f"m = keras.saving.load_model({str(default_checkpoint())!r}, compile=False)\n"
            "print(b.input_shape[-1], m.input_shape[-1], t.count_params(), deblur.Restorer.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[:2] == ["3", "3"] and out.stdout.split()[3] == "Restorer"


def test_import_deblur_is_cheap_and_has_no_other_names():
    import deblur

    with pytest.raises(AttributeError):
        deblur.nothing_here  # noqa: B018
    code = "import sys, deblur; print(sorted(m for m in ('keras', 'tensorflow', 'deblur.api') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr[-2000:]


def test_everyone_loads_checkpoints_through_deblur_loading(model_file: Path, monkeypatch):
    """Training's init_from (and eval, compare, predict) call deblur.restore.loading.load_model, so its checks
    apply to them all; predict.py no longer has a loader of its own."""
    import deblur.restore.loading
    import deblur.restore.predict
    from deblur.models import MODELS
    from deblur.training.train import init_weights

    calls = []
    real = deblur.restore.loading.load_model
    monkeypatch.setattr(deblur.restore.loading, "load_model", lambda path: calls.append(Path(path)) or real(path))
    model = MODELS.get("unet")(3, depth=1, base_filters=2, residual=True)
    init_weights(model, model_file)
    assert calls == [model_file]
    assert not hasattr(deblur.restore.predict, "load_model")
    src = Path(deblur.restore.loading.__file__).parents[1]  # src/deblur
    for name in ("cli/__init__.py", "training/train.py", "api.py"):
        assert "from deblur.restore.predict import load_model" not in (src / name).read_text()
