"""`deblur predict` without --checkpoint: the built-in restorer, its options and their hostile inputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import cli_error, invoke
from deblur.restore import kernels as K

from .helpers import blur, scene


def _png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), (np.clip(image, 0, 1) * 255).round().astype(np.uint8)[..., ::-1])
    return path


@pytest.fixture
def shaken(tmp_path: Path) -> tuple[Path, np.ndarray]:
    sharp = scene(np.random.default_rng(20))
    return _png(tmp_path / "in" / "shaken.png", blur(sharp, K.line(11, 30, 13), noise=0.002)), sharp


def test_a_sharp_photo_is_written_back_byte_for_byte_and_said_so(tmp_path: Path) -> None:
    src = _png(tmp_path / "in" / "sharp.png", scene(np.random.default_rng(21)))
    result = invoke("predict", src, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "sharp.png: looks sharp" in result.output
    assert (tmp_path / "out" / "sharp.png").read_bytes() == src.read_bytes()


def test_a_blurred_photo_is_restored_with_its_kernel_saved(tmp_path: Path, shaken) -> None:
    src, sharp = shaken
    result = invoke("predict", src, "-o", tmp_path / "out", "--save-kernel")
    assert result.exit_code == 0, result.output
    assert "shaken.png: restored" in result.output
    out = cv2.imread(str(tmp_path / "out" / "shaken.png"))[..., ::-1] / 255.0
    before = cv2.imread(str(src))[..., ::-1] / 255.0
    err = lambda a: np.mean((a - sharp)[16:-16, 16:-16] ** 2)  # noqa: E731
    assert err(out) < err(before)
    kernel = cv2.imread(str(tmp_path / "out" / "shaken_kernel.png"), cv2.IMREAD_UNCHANGED)
    assert kernel is not None and kernel.max() == 255


def test_a_given_kernel_deconvolves_every_input(tmp_path: Path, shaken) -> None:
    src, _ = shaken
    kfile = tmp_path / "k.png"
    cv2.imwrite(str(kfile), K.to_image(K.line(11, 30, 13), min_size=1))
    result = invoke("predict", src, "-o", tmp_path / "out", "--kernel", kfile)
    assert result.exit_code == 0, result.output
    assert "given 13x13 kernel" in result.output


@pytest.mark.parametrize(("content", "words"), [
    (np.zeros((7, 7), np.uint8), "empty"),
    (np.ones((1200, 3), np.uint8), "larger than"),
])
def test_unusable_kernel_files_are_one_line_errors(tmp_path: Path, shaken, content, words) -> None:
    src, _ = shaken
    kfile = tmp_path / "k.png"
    cv2.imwrite(str(kfile), content)
    line = cli_error(invoke("predict", src, "-o", tmp_path / "out", "--kernel", kfile))
    assert words in line
    assert not (tmp_path / "out").exists()  # refused before any work


def test_kernel_file_that_is_missing_a_folder_or_not_an_image(tmp_path: Path, shaken) -> None:
    src, _ = shaken
    (tmp_path / "notimage.png").write_bytes(b"not a png")
    (tmp_path / "dir.png").mkdir()
    for bad in (tmp_path / "missing.png", tmp_path / "notimage.png", tmp_path / "dir.png"):
        cli_error(invoke("predict", src, "-o", tmp_path / "out", "--kernel", bad))


def test_a_kernel_larger_than_one_image_fails_that_image_only(tmp_path: Path, shaken) -> None:
    src, _ = shaken
    small = _png(tmp_path / "in" / "small.png", np.full((20, 20, 3), 0.5, np.float32))
    kfile = tmp_path / "k.png"
    cv2.imwrite(str(kfile), K.to_image(K.disk(12, 25), min_size=1))
    result = invoke("predict", src, small, "-o", tmp_path / "out", "--kernel", kfile)
    assert result.exit_code == 1, result.output
    assert "skipped" in result.output and "larger than" in result.output
    assert (tmp_path / "out" / "shaken.png").exists() and not (tmp_path / "out" / "small.png").exists()


@pytest.mark.parametrize("extra", [["--checkpoint", "x.keras", "--kernel", "k.png"],
                                   ["--checkpoint", "x.keras", "--save-kernel"],
                                   ["--engine", "onnx", "--no-refiner"]])
def test_options_that_need_the_other_restorer_are_refused(tmp_path: Path, shaken, extra) -> None:
    src, _ = shaken
    line = cli_error(invoke("predict", src, "-o", tmp_path / "out", *extra))
    assert "built-in restorer" in line


def test_the_builtin_restorer_without_its_refiner_imports_no_tensorflow(tmp_path: Path, shaken) -> None:
    """The deconvolution runs on NumPy alone; only the refiner network needs a Keras backend."""
    src, _ = shaken
    argv = ["deblur", "predict", str(src), "-o", str(tmp_path / "out"), "--no-refiner"]
    code = (f"import sys\nfrom deblur.cli import main\nsys.argv = {argv!r}\n"
            "try:\n    main()\nexcept SystemExit as e:\n    assert e.code in (0, None), e.code\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "shaken.png").exists()


def test_python_api_runs_the_same_pipeline(shaken) -> None:
    import deblur

    src, _ = shaken
    image = cv2.imread(str(src))[..., ::-1].copy()
    out, why = deblur.Restorer.load().run(image)
    assert out.shape == image.shape and out.dtype == np.uint8 and why.startswith("restored")
    kernel = deblur.estimate_kernel(image)
    assert kernel.ndim == 2 and kernel.shape[0] % 2 == 1 and abs(kernel.sum() - 1) < 1e-9


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 3), np.uint8), "x", np.zeros((40, 40, 5), np.uint8)])
def test_estimate_kernel_refuses_what_it_cannot_use(bad) -> None:
    import deblur
    from deblur.core.errors import DeblurError

    with pytest.raises(DeblurError):
        deblur.estimate_kernel(bad)


@pytest.mark.parametrize("kernel", [np.zeros((3, 3)), np.ones(3), "k", -np.ones((3, 3))])
def test_restorer_refuses_a_bad_given_kernel(kernel) -> None:
    import deblur
    from deblur.core.errors import DeblurError

    with pytest.raises(DeblurError, match="kernel"):
        deblur.Restorer.load(kernel=kernel)
