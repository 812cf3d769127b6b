"""`deblur blur`: test images with every blur kind, noise and JPEG, one-line errors for parameters the machine
cannot do, and outputs that never replace inputs."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import cli_error, invoke, psnr_of, quiet_error, save_photo, smooth_image, tree, write_png
from deblur.cli import app
from deblur.core.errors import DataError, DeblurError
from deblur.data.blur import blur_spec
from deblur.imaging import outputs
from deblur.imaging.imageio import from_float, read_image


def test_blur_writes_test_images(tmp_path: Path):
    result = invoke("blur", "--sample", "chelsea", "--sigma", "2", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    blurred = cv2.imread(str(tmp_path / "chelsea.png"))
    assert blurred.shape == (300, 451, 3)


def test_blur_parameters_a_32_bit_blur_cannot_compute_are_one_line(tmp_path: Path, two_images: Path):
    with pytest.raises(DeblurError, match="angle"):
        blur_spec("motion", angle=1e300)
    line = quiet_error(invoke("blur", two_images, "--kind", "motion", "--angle", "1e300", "-o", tmp_path / "b"))
    assert "angle" in line
    assert blur_spec("motion", angle=-350.0)["angle"] == -350.0
    with pytest.raises(DataError, match="the blurred image"):  # never "the model's output" for blur
        from_float(np.full((2, 2, 1), np.nan, np.float32), np.uint8, "the blurred image")


def test_a_strict_stdout_prints_names_that_are_not_utf8(tmp_path: Path, rng):
    folder = tmp_path / "in"
    folder.mkdir()  # written by Python: OpenCV's imwrite itself crashes on such a name
    (folder / os.fsdecode(b"n\xff.png")).write_bytes(cv2.imencode(".png", smooth_image(rng, 12, 12))[1].tobytes())
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    result = subprocess.run([sys.executable, "-m", "deblur", "blur", str(folder), "-o", str(tmp_path / "out")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "\\udcff" in result.stdout, result.stdout


def test_blur_refuses_two_inputs_with_one_stem_and_writing_over_its_inputs(tmp_path: Path, rng):
    folder = tmp_path / "sharp"
    write_png(folder / "a.png", smooth_image(rng, 10, 10))
    assert cv2.imwrite(str(folder / "a.jpg"), smooth_image(rng, 10, 10))
    before = tree(folder)
    # a.png and a.jpg give a.png and a.jpg (photos stay photos); written in one format, they collide
    assert "would both be written to" in cli_error(invoke("blur", folder, "-o", tmp_path / "o", "--format", "png"))
    assert not (tmp_path / "o").exists()  # refused before any work, and the folder it made is gone
    line = cli_error(invoke("blur", folder / "a.png", "-o", folder, "--overwrite"))
    assert "would replace its input" in line
    write_png(tmp_path / "chelsea.png", smooth_image(rng, 10, 10))
    assert "would both be written" in cli_error(invoke("blur", tmp_path / "chelsea.png", "--sample", "chelsea",
                                                       "-o", tmp_path / "o"))
    assert tree(folder) == before


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path: Path, images: Path, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p).endswith("readonly") else real(p, mode, **k))
    assert "cannot write there" in cli_error(invoke("blur", images, "-o", tmp_path / "readonly"))
    assert not (tmp_path / "readonly").exists()

    def no_mkdir(self, *a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", no_mkdir)
    assert "Read-only file system" in cli_error(invoke("blur", images, "-o", tmp_path / "new"))


@pytest.mark.parametrize(("args", "words"), [
    (["--sigma", "1e6"], "kernel"), (["--kind", "motion", "--length", "1e6"], "kernel"),
    (["--kind", "defocus", "--radius", "1e6"], "kernel"), (["--sigma", "nan"], "finite"),
    (["--kind", "motion", "--angle", "inf"], "finite"), (["--noise", "nan"], "finite"), (["--seed", "-1"], "--seed"),
])
def test_blur_parameters_the_machine_cannot_do_are_one_line(tmp_path: Path, images: Path, args, words):
    assert words in cli_error(invoke("blur", images, "-o", tmp_path / "o", *args))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("shape", [(2, 2, 3), (1, 1, 1), (1, 5, 3), (3, 2, 4)])
def test_blur_of_images_smaller_than_the_kernel(tmp_path: Path, rng, shape):
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "in" / "tiny.png"
    path.parent.mkdir()
    assert cv2.imwrite(str(path), image)
    result = invoke("blur", path, "-o", tmp_path / "o", "--sigma", "3")
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "o" / "tiny.png").shape == shape


def test_names_follow_the_format_so_a_jpg_and_a_png_collide_only_in_one_format(tmp_path: Path, rng):
    folder = tmp_path / "in"
    write_png(folder / "a.png", smooth_image(rng, 8, 8))
    save_photo(folder / "a.jpg", smooth_image(rng, 8, 8))
    items = [("a", folder / "a.png"), ("a", folder / "a.jpg")]
    plan = outputs.plan(items, tmp_path / "out")
    assert [j.targets[0].name for j in plan.jobs] == ["a.png", "a.jpg"]
    with pytest.raises(DeblurError, match="would both be written to"):
        outputs.plan(items, tmp_path / "out", fmt="png")
    (tmp_path / "out").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "out" / "a.jpg")  # a JPEG there from an earlier run
    with pytest.raises(DeblurError, match=r"a\.jpg already exists"):
        outputs.plan(items, tmp_path / "out")
    plan = outputs.plan(items, tmp_path / "out", skip_existing=True)  # continues with the one not written yet
    assert [j.targets[0].name for j in plan.jobs] == ["a.png"] and plan.skipped == 1
    # the content decides, not the name: a PNG called .jpg is no JPEG, and gives a PNG
    save_photo(tmp_path / "odd" / "b.jpg", smooth_image(rng, 8, 8), format="PNG")
    assert outputs.plan([("b", tmp_path / "odd" / "b.jpg")], tmp_path / "o2").jobs[0].targets[0].name == "b.png"
    assert "--format: 'gif' is not allowed" in cli_error(invoke("blur", folder / "a.png", "-o", tmp_path / "x",
                                                              "--format", "gif"))


def test_blur_command_makes_camera_shake_with_noise_and_jpeg(tmp_path, rng):

    from conftest import write_png
    from deblur.imaging.imageio import read_image

    write_png(tmp_path / "in" / "photo.png", smooth_image(rng, 64, 80))
    runs = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        result = CliRunner().invoke(app, ["blur", str(tmp_path / "in"), "-o", str(tmp_path / name), "--kind", "shake",
                                          "--size", "15", "--shot", "0.0005", "--jpeg", "80", "--seed", str(seed)])
        assert result.exit_code == 0, result.output
        runs[name] = read_image(tmp_path / name / "photo.png").astype(np.float32) / 255
    sharp = read_image(tmp_path / "in" / "photo.png").astype(np.float32) / 255
    assert psnr_of(runs["a"], sharp) < 35  # blurred
    np.testing.assert_array_equal(runs["a"], runs["b"])  # seeded
    assert np.abs(runs["a"] - runs["c"]).mean() > 1e-3  # another seed: another path and noise
    result = CliRunner().invoke(app, ["blur", str(tmp_path / "in"), "-o", str(tmp_path / "d"), "--kind", "shake",
                                      "--radius", "3"])
    assert result.exit_code == 2 and "--radius does not apply to --kind shake" in result.output
