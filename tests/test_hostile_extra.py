"""Hostile cases beyond issue 12's own list: siblings of each class it named, one cheap test per fix.

Wrong scores (a test split leaking into training, scoring that a --crop-border leaves nothing of),
lost work (a command reading back its own outputs, a user's link replaced without --overwrite),
guards that did not guard (a pipe that hung every reader, a float TIFF the bomb guard refused, blur
parameters that became NaN, integers that overflowed TensorFlow) and internal errors where one line
belongs (seeds, NUL in names, tiny crops, a damaged history.csv, an unusable KERAS_BACKEND).
"""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from conftest import cli_error, invoke, smooth_image, write_png
from deblur import config as cfgmod
from deblur.core.errors import ConfigError, DataError, DeblurError
from deblur.data.blur import blur_spec
from deblur.imaging.imageio import from_float, header_size, read_image
from deblur.models import MODELS


def one_error(result, status: int = 2) -> str:
    assert "Warning" not in result.output, result.output  # and no library warning either
    return cli_error(result, status)


@pytest.fixture
def images(tmp_path: Path, rng) -> Path:
    folder = tmp_path / "in"
    for i in range(2):
        write_png(folder / f"img{i}.png", smooth_image(rng, 12, 16))
    return folder


def config(**data) -> dict:
    return {"name": "x", "data": {"source": "samples", "crop": 32, "eval_crop": 32, **data},
            "model": {"type": "unet", "depth": 1, "base_filters": 2}, "train": {"epochs": 1}}


# --------------------------------------------------------------------------------------------------
# Reading images: what the bomb guard refused wrongly, and what hung or was read whole


def test_a_float_tiff_pillow_cannot_open_is_sized_from_its_header_and_read(tmp_path: Path):
    path = tmp_path / "f32.tif"
    assert cv2.imwrite(str(path), np.random.default_rng(0).random((9, 13, 3)).astype(np.float32))
    assert header_size(path.read_bytes()) == (13, 9)  # hand-read from the TIFF directory
    image = read_image(path)
    assert image.shape == (9, 13, 3) and image.dtype == np.uint16
    with pytest.raises(DataError, match="over the limit"):  # and still refused before decoding when too large
        read_image(path, max_pixels_mp=1e-5)


def test_a_pipe_or_device_named_like_an_image_is_refused_without_reading(tmp_path: Path, model_file: Path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # reading it would block for ever
    with pytest.raises(DataError, match="not a regular file"):
        read_image(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        read_image("/dev/zero")
    result = invoke("predict", fifo, "-c", model_file, "-o", tmp_path / "out")
    assert result.exit_code == 1 and "not a regular file" in result.output, result.output


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


# --------------------------------------------------------------------------------------------------
# Outputs: never read back, never replace a user's link unasked


def test_recursive_predict_into_a_subfolder_never_reads_its_own_outputs(tmp_path: Path, images: Path,
                                                                       model_file: Path):
    out = images / "restored"
    assert invoke("predict", images, "-r", "-c", model_file, "-o", out).exit_code == 0
    again = invoke("predict", images, "-r", "-c", model_file, "-o", out, "--overwrite")
    assert again.exit_code == 0 and "restored 2 image(s)" in again.output, again.output
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png"]
    skip = invoke("predict", images, "-r", "-c", model_file, "-o", out, "--skip-existing")
    assert skip.exit_code == 0 and "2 already there" in skip.output, skip.output


def test_a_broken_link_at_an_output_name_is_kept_unless_overwrite(tmp_path: Path, images: Path, model_file: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "img0.png").symlink_to(tmp_path / "nowhere" / "x.png")
    assert "broken symbolic link" in one_error(invoke("predict", images, "-c", model_file, "-o", out))
    assert (out / "img0.png").is_symlink()
    assert invoke("predict", images, "-c", model_file, "-o", out, "--overwrite").exit_code == 0
    assert not (out / "img0.png").is_symlink() and not (tmp_path / "nowhere").exists()


def test_folder_source_leaves_out_run_folders_inside_it(tmp_path: Path, rng):
    from deblur.data.sources.folder import load
    from deblur.training.train import MARKER, MARKER_TEXT

    for i in range(4):
        write_png(tmp_path / "photos" / f"p{i}.png", smooth_image(rng, 24, 24))
    run = tmp_path / "photos" / "runs" / "r"
    write_png(run / "eval-test" / "gallery.png", smooth_image(rng, 30, 90))  # shows test images
    (run / MARKER).write_text(MARKER_TEXT)
    splits = load(str(tmp_path / "photos"), seed=0, val_split=0.25, test_split=0.25)
    names = splits.train.names + splits.val.names + splits.test.names
    assert sorted(names) == ["p0", "p1", "p2", "p3"]


# --------------------------------------------------------------------------------------------------
# Scoring


def _pairs(root: Path, blurred: np.ndarray, sharp: np.ndarray) -> tuple[Path, Path]:
    for name, image in (("blur", blurred), ("sharp", sharp)):
        (root / name).mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(root / name / "a.png"), image)
    return root / "blur", root / "sharp"


def test_a_gray_twin_of_a_colour_photo_is_scored_not_an_internal_error(tmp_path: Path, rng, model_file: Path):
    sharp = smooth_image(rng, 24, 24)
    blur, sharp_dir = _pairs(tmp_path / "p", cv2.GaussianBlur(sharp, (3, 3), 0)[:, :, 0], sharp)
    result = invoke("eval", model_file, "--pairs", blur, sharp_dir, "-o", tmp_path / "e")
    assert result.exit_code == 0, result.output


def test_a_crop_border_that_leaves_too_little_is_one_line_before_scoring(tmp_path: Path, rng, model_file: Path):
    sharp = smooth_image(rng, 24, 24)
    blur, sharp_dir = _pairs(tmp_path / "p", 255 - sharp, sharp)
    for border in ("12", "99999999999999999999"):
        line = one_error(invoke("eval", model_file, "--pairs", blur, sharp_dir, "--crop-border", border,
                                "-o", tmp_path / "e"))
        assert f"--crop-border {border}" in line and "--crop-border 6 or less" in line
    assert not (tmp_path / "e").exists()


def test_compare_refuses_one_checkpoint_given_twice(tmp_path: Path, model_file: Path):
    other = tmp_path / "model" / "." / "tiny.keras"
    assert "same checkpoint" in one_error(invoke("compare", model_file, other))


@pytest.mark.parametrize(("option", "words"), [(["--split", "train"], "--split: 'train'"),
                                               (["--split", "junk"], "--split: 'junk'"),
                                               (["--crop-border", "-1"], "--crop-border -1")])
def test_compare_checks_split_and_crop_border_as_eval_does(tmp_path: Path, model_file: Path, option, words):
    other = tmp_path / "other.keras"
    MODELS.get("unet")(3, depth=1, base_filters=4).save(other)
    assert words in one_error(invoke("compare", model_file, other, *option))


def test_scores_are_never_computed_on_the_training_split(photo_folder: Path):
    from deblur.evaluation.evaluate import evaluate

    cfg = cfgmod.from_dict({"data": {"source": "folder", "path": str(photo_folder), "eval_crop": 16}})
    with pytest.raises(DeblurError, match="test or val"):
        evaluate(MODELS.get("unet")(3, depth=1, base_filters=2), cfg, "train")


def test_eval_takes_a_run_folder_and_names_a_folder_given_as_a_checkpoint(tmp_path: Path, model_file: Path):
    from deblur.restore.loading import load_model

    assert "folder without a best.keras" in one_error(invoke("eval", tmp_path))
    (model_file.parent / "best.keras").write_bytes(model_file.read_bytes())
    with pytest.raises(DeblurError, match=r"is a folder.*best\.keras"):
        load_model(model_file.parent)


# --------------------------------------------------------------------------------------------------
# Config values that crashed deep inside TensorFlow, NumPy or the file system


@pytest.mark.parametrize(("raw", "words"), [
    ({"seed": -1}, "seed: must be from 0"),
    ({"seed": 2**32}, "seed: must be from 0"),
    ({"seed": 1e30}, "too large"),
    ({"data": {"crops_per_image": 1e30}}, "data.crops_per_image"),
    ({"train": {"steps_per_epoch": 10**30}}, "train.steps_per_epoch"),
    ({"name": "a\x00b"}, "plain directory name"),
    ({"name": "a\nb"}, "plain directory name"),
    ({"data": {"crop": 8}}, "data.crop: 8x8 is smaller than 11x11"),
    ({"data": {"eval_crop": [32, 4]}}, "data.eval_crop: 32x4 is smaller"),
    ({"train": {"lr_schedule": "cosine", "min_lr": 1e300}}, "train.min_lr"),
    ({"data": {"degradation": {"kind": "motion", "length": 3, "angle": [0, 1e300]}}}, "angle 1e+300"),
    ({"data": {"degradation": {"kind": "gaussian", "sigma": 1, "noise": 1e300}}}, "noise 1e+300"),
    ({"data": {"resize": [200_000, 200_000]}}, "data.resize: one 200,000x200,000 image"),
])
def test_config_values_that_crashed_mid_run_are_refused_when_read(raw: dict, words: str):
    base = config()
    for key, value in raw.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    with pytest.raises(ConfigError, match=re.escape(words)):
        cfgmod.from_dict(base)


def test_whole_images_smaller_than_the_ssim_window_are_refused_before_training(tmp_path: Path, photo_folder: Path):
    cfg = {"name": "t", "data": {"source": "folder", "path": str(photo_folder), "resize": [10, 10], "batch_size": 2,
                                 "val_split": 0.25, "test_split": 0.25,
                                 "degradation": {"kind": "gaussian", "sigma": 1}},
           "model": {"type": "unet", "depth": 1, "base_filters": 2}, "train": {"epochs": 1, "steps_per_epoch": 1}}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert "smaller than 11x11" in one_error(invoke("train", "-c", path, "--run-dir", tmp_path / "run"))


def test_blur_parameters_a_32_bit_blur_cannot_compute_are_one_line(tmp_path: Path, images: Path):
    with pytest.raises(DeblurError, match="angle"):
        blur_spec("motion", angle=1e300)
    assert "angle" in one_error(invoke("blur", images, "--kind", "motion", "--angle", "1e300", "-o", tmp_path / "b"))
    assert blur_spec("motion", angle=-350.0)["angle"] == -350.0
    with pytest.raises(DataError, match="the blurred image"):  # never "the model's output" for blur
        from_float(np.full((2, 2, 1), np.nan, np.float32), np.uint8, "the blurred image")


# --------------------------------------------------------------------------------------------------
# Resuming and reporting with damaged run files


def test_a_damaged_history_is_one_line_on_resume_and_no_curves_in_a_report(tmp_path: Path):
    from deblur.evaluation.report import read_history
    from deblur.training.train import best_so_far, history_rows, seconds_so_far

    history = tmp_path / "history.csv"
    history.write_bytes(b"\x85\xff\x00binary")
    with pytest.raises(DeblurError, match=r"damaged.*move it aside"):
        history_rows(history)
    assert read_history(history) == {}
    history.write_text("epoch,val_loss,train_seconds\n0,abc,xyz\n1,0.5,\n")
    assert best_so_far(history, "val_loss") == 0.5 and seconds_so_far(history) == 0.0


def test_resume_checks_the_model_against_best_keras_when_last_keras_is_damaged(tmp_path: Path):
    from deblur.training.train import RunPaths, check_same_model

    paths = RunPaths(tmp_path)
    model = MODELS.get("unet")(3, depth=1, base_filters=2)
    (tmp_path / "last.keras").write_bytes(b"PK\x03\x04 truncated")
    check_same_model(model, paths)  # nothing readable to compare with: the backup decides
    MODELS.get("unet")(3, depth=1, base_filters=4).save(tmp_path / "best.keras")
    with pytest.raises(ConfigError, match="another model"):
        check_same_model(model, paths)


# --------------------------------------------------------------------------------------------------
# The command boundary


def test_an_os_error_before_the_run_is_saved_does_not_suggest_resume(tmp_path: Path, photo_folder: Path,
                                                                     monkeypatch):
    import deblur.training.train as trainmod

    def fail(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error", str(photo_folder / "img0.png"))

    monkeypatch.setattr(trainmod, "train", fail)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"source": "folder", "path": str(photo_folder), "crop": 16,
                                            "eval_crop": 16}}))
    line = one_error(invoke("train", "-c", cfg, "--run-dir", tmp_path / "run"))
    assert "nothing was trained" in line and "--resume" not in line


def test_opencv_running_out_of_memory_is_named_as_memory_not_a_bug():
    import cv2 as opencv

    from deblur.core.failures import failure_line

    exc = opencv.error("OpenCV(5.0.0) alloc.cpp:73: error: (-4:Insufficient memory) Failed to allocate 120000000000 "
                       "bytes in function 'OutOfMemoryError'")
    assert failure_line(exc).startswith("out of memory")


def test_an_unusable_keras_backend_is_one_line(tmp_path: Path):
    env = {**os.environ, "KERAS_BACKEND": "nosuchbackend"}
    # a network needs Keras (the built-in restorer does not, and would only miss the file)
    result = subprocess.run([sys.executable, "-m", "deblur", "predict", str(tmp_path / "x.png"), "--checkpoint",
                             "builtin-network"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: KERAS_BACKEND=nosuchbackend"), result.stderr


def test_a_damaged_training_backup_is_one_line_that_does_not_send_you_back_to_resume(tmp_path: Path):
    from deblur.training.train import RunPaths, _backup_and_restore

    paths = RunPaths(tmp_path)
    paths.backup.mkdir()
    (paths.backup / "training_metadata.json").write_text('{"epoch": ')
    model = MODELS.get("unet")(3, depth=1, base_filters=2)
    model.compile(optimizer="adam", loss="mse")
    callback = _backup_and_restore(paths)
    callback.set_model(model)
    with pytest.raises(DeblurError, match="damaged") as info:
        callback.on_train_begin()
    assert "--overwrite" in str(info.value) and "init_from" in str(info.value)


# --------------------------------------------------------------------------------------------------
# Models whose output is not their input's size, and names that are not UTF-8


@pytest.mark.parametrize("layer", ["strided", "valid"])
def test_a_model_whose_output_is_another_size_is_refused_not_cropped(tmp_path: Path, images: Path, layer: str):
    import keras

    x = keras.Input((None, None, 3))
    y = (keras.layers.Conv2D(3, 3, strides=2, padding="same") if layer == "strided"
         else keras.layers.Conv2D(3, 3, padding="valid"))(x)
    path = tmp_path / "odd.keras"
    keras.Model(x, y).save(path)
    assert "output has its input's size" in one_error(invoke("predict", images, "-c", path, "-o", tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_names_that_are_not_utf8_reach_reports_and_pictures(tmp_path: Path, rng):
    from deblur.evaluation.report import gallery
    from deblur.imaging.imageio import atomic_write_text

    name = os.fsdecode(b"n\xff")  # a lone surrogate, as Python reads such a file name
    image = rng.random((16, 16, 3)).astype(np.float32)
    picture = gallery([(f"best: {name}", image, image, image, 30.0, 31.0)])  # OpenCV crashed (SIGSEGV) here
    assert picture.ndim == 3
    atomic_write_text(tmp_path / "rows.csv", f"image\n{name}\n")
    assert (tmp_path / "rows.csv").read_bytes() == b"image\nn\xff\n"


def test_a_strict_stdout_prints_names_that_are_not_utf8(tmp_path: Path, rng):
    folder = tmp_path / "in"
    folder.mkdir()  # written by Python: OpenCV's imwrite itself crashes on such a name
    (folder / os.fsdecode(b"n\xff.png")).write_bytes(cv2.imencode(".png", smooth_image(rng, 12, 12))[1].tobytes())
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    result = subprocess.run([sys.executable, "-m", "deblur", "blur", str(folder), "-o", str(tmp_path / "out")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "\\udcff" in result.stdout, result.stdout


def test_a_key_given_twice_in_a_config_is_refused_not_silently_the_last(tmp_path: Path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  learning_rate: 0.001\n  epochs: 3\n  learning_rate: 10\n")
    with pytest.raises(ConfigError, match=r"line 4.*'learning_rate' is given twice.*first on line 2"):
        cfgmod.load(path)
    with pytest.raises(ConfigError, match="given twice"):
        cfgmod.load(None, ["model={type: unet, depth: 1, depth: 2}"])
    path.write_text("train: {epochs: 2}\nname: x\n")  # one key per mapping, however often a name recurs
    assert cfgmod.load(path).name == "x"


def test_large_whole_images_of_one_size_are_scored_one_at_a_time_in_tiles():
    from deblur.config import DataConfig
    from deblur.data.base import ImageSet
    from deblur.data.evalset import EvalSet

    photos = ImageSet(sharp=np.zeros((3, 600, 600, 3), np.uint8), names=["a", "b", "c"])
    assert EvalSet(photos, DataConfig(eval_batch_size=32), 0, "test", paired=False).batch == 1
    small = ImageSet(sharp=np.zeros((3, 40, 40, 3), np.uint8), names=["a", "b", "c"])
    assert EvalSet(small, DataConfig(eval_batch_size=32), 0, "test", paired=False).batch == 32
