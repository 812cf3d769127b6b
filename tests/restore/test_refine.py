"""The refiner stage of the built-in restorer (deblur.restore.refine, api.builtin_restorer, predict)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import cli_error, invoke
from deblur.core.errors import DeblurError
from deblur.restore import kernels as K
from deblur.restore.blind import BlindRestorer

from .helpers import blur, scene


@pytest.fixture(scope="module")
def identity_refiner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from deblur.models import MODELS

    path = tmp_path_factory.mktemp("refiner") / "identity.keras"
    MODELS.get("refiner")(channels=3, width=8).save(path)
    return path


def _shaken() -> tuple[np.ndarray, np.ndarray]:
    kernel = K.line(9, 30, 11)
    return blur(scene(np.random.default_rng(4), 128, 160), kernel, noise=0.002), kernel


def test_an_identity_refiner_changes_nothing_and_runs_through_the_tiles(identity_refiner: Path) -> None:
    from deblur import Restorer

    blurred, kernel = _shaken()
    without = Restorer.load(kernel=kernel, refiner=False)(blurred)
    with_it = Restorer.load(kernel=kernel, refiner=identity_refiner, tile=64, overlap=16)(blurred)
    assert np.abs(without - with_it).max() <= 1e-6  # tiles blended in float: equal to rounding


def test_the_refiner_runs_after_the_deconvolution_before_the_checks() -> None:
    seen = {}

    def refiner(b: np.ndarray, d: np.ndarray, k: np.ndarray) -> np.ndarray:
        seen.update(blurred=b, deconvolved=d, kernel=k)
        return np.full_like(d, 2.0)  # out of range: the pipeline clips what a refiner returns

    blurred, kernel = _shaken()
    out, outcome = BlindRestorer(kernel=kernel, refiner=refiner)(blurred)
    assert seen["blurred"] is not None and seen["deconvolved"].shape == blurred.shape
    assert np.allclose(seen["kernel"], K.normalise(kernel))
    # a white result does not reproduce the photo when blurred again: the re-blur check refuses it
    assert not outcome.changed and out is blurred and "blurred again" in outcome.reason


def test_a_photo_that_looks_sharp_never_reaches_the_refiner() -> None:
    def refiner(b: np.ndarray, d: np.ndarray, k: np.ndarray) -> np.ndarray:
        raise AssertionError("the refiner ran on a sharp photo")

    sharp = (scene(np.random.default_rng(5)) * 255).round().astype(np.uint8)
    out, outcome = BlindRestorer(refiner=refiner)(sharp)
    assert out is sharp and not outcome.changed


def test_an_engine_without_a_refiner_to_run_is_one_clear_error() -> None:
    from deblur import Restorer

    with pytest.raises(DeblurError, match="refiner=False"):
        Restorer.load(refiner=False, engine="onnx")


def test_predict_refuses_no_refiner_with_a_checkpoint(tmp_path: Path, model_file: Path) -> None:
    src = tmp_path / "in.png"
    import cv2

    cv2.imwrite(str(src), np.zeros((32, 32, 3), np.uint8))
    error = cli_error(invoke("predict", src, "--checkpoint", model_file, "--no-refiner", "-o", tmp_path / "o"))
    assert "--no-refiner" in error


def test_predict_says_whether_the_refiner_ran(tmp_path: Path) -> None:
    import cv2

    from deblur.pretrained import refiner_checkpoint

    blurred, _ = _shaken()
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), (blurred * 255).round().astype(np.uint8))
    result = invoke("predict", src, "--no-refiner", "-o", tmp_path / "a")
    assert result.exit_code == 0, result.output
    assert "refiner" not in result.output.split("restorer: built-in")[1].split(";")[0]
    if refiner_checkpoint() is not None:
        result = invoke("predict", src, "-o", tmp_path / "b")
        assert result.exit_code == 0, result.output
        assert "then the refiner network" in result.output


def test_shipped_names_stand_for_the_package_files_and_export_beside_the_user() -> None:
    from deblur.pretrained import default_checkpoint, refiner_checkpoint, shipped
    from deblur.restore.export import default_output

    assert shipped("runs/x/best.keras") is None
    assert shipped("builtin-network") == default_checkpoint()
    if refiner_checkpoint() is not None:
        assert shipped("builtin-refiner") == refiner_checkpoint()
    else:
        with pytest.raises(DeblurError, match="no built-in refiner"):
            shipped("builtin-refiner")
    assert default_output(Path("builtin-refiner"), "onnx") == Path("deblur_refiner.onnx")
    assert default_output(Path("runs/x/best.keras"), "onnx") == Path("runs/x/best.onnx")


@pytest.mark.parametrize("engine", ["onnx", "openvino", "litert"])
def test_the_refiner_runs_on_another_engine_as_on_keras(identity_refiner: Path, engine: str) -> None:
    """--engine with the built-in restorer exports the refiner once into the cache and runs that."""
    from deblur import Restorer
    from deblur.restore.export import FORMATS

    if FORMATS.get(engine).missing_module() is not None:
        pytest.skip(f"{engine} is not installed (the export extra)")
    blurred, kernel = _shaken()
    keras_out = Restorer.load(kernel=kernel, refiner=identity_refiner)(blurred)
    other = Restorer.load(kernel=kernel, refiner=identity_refiner, engine=engine)(blurred)
    assert np.abs(keras_out - other).max() <= 1.5 / 255
