"""The CLI end to end on a tiny config, and the one-line errors a user sees for their mistakes."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from conftest import smooth_image, write_png
from deblur.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def tiny_config(tmp_path: Path, photo_folder: Path) -> Path:
    cfg = {
        "name": "tiny",
        "seed": 1,
        "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16,
                 "crops_per_image": 4, "batch_size": 8, "val_split": 0.25, "test_split": 0.25,
                 "degradation": {"kind": "gaussian", "sigma": [0.5, 2.5]}},
        "model": {"type": "unet", "depth": 2, "base_filters": 4, "residual": True},
        "train": {"epochs": 2, "learning_rate": 0.003},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output  # one line, and the last word
    assert "Traceback" not in result.output
    return errors[0]


def test_train_eval_predict_end_to_end(tmp_path: Path, tiny_config: Path, rng):
    run = tmp_path / "runs" / "tiny"
    result = invoke("train", "--config", tiny_config, "--run-dir", run)
    assert result.exit_code == 0, result.output
    for name in ("config.yaml", "best.keras", "last.keras", "history.csv", "eval-test/metrics.json",
                 "eval-test/per_image.csv", "eval-test/gallery.png", "eval-test/curves.png"):
        assert (run / name).is_file(), name
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["meta"]["seed"] == 1 and saved["meta"]["deblur_version"] and "train" in saved["meta"]["command"]
    assert saved["model"]["depth"] == 2 and saved["data"]["degradation"][0]["sigma"] == [0.5, 2.5]
    with open(run / "history.csv") as f:
        history = list(csv.DictReader(f))
    assert len(history) == 2 and {"val_psnr", "val_ssim", "learning_rate", "val_loss"} <= set(history[0])
    for expected in ("blurred input", "wiener (true kernel)", "model (unet)", "gain dB", "mean PSNR (dB) by group",
                     "sigma 1-2", "ms per megapixel", "parameters"):
        assert expected in result.output, expected

    # eval reads everything from the run directory; reports are not overwritten silently
    again = invoke("eval", run / "best.keras")
    assert "already exists" in _one_error_line(again)
    result = invoke("eval", run / "best.keras", "--split", "val", "--output", tmp_path / "ev", "--y-channel",
                    "--crop-border", "2", "--baselines", "identity,wiener,richardson_lucy,unsharp")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["protocol"]["split"] == "val" and metrics["metric_card"]["psnr"].startswith("10*log10")
    assert metrics["metric_card"]["crop_border"] == 2 and metrics["metric_card"]["color"].startswith("Y")
    assert set(metrics["methods"]) == {"input", "model", "wiener", "richardson_lucy", "unsharp"}
    m = metrics["methods"]
    assert metrics["gain"]["model"]["psnr"] == pytest.approx(m["model"]["psnr"] - m["input"]["psnr"])
    assert m["wiener"]["psnr"] > m["input"]["psnr"]  # the true-kernel oracle really deconvolves
    with open(tmp_path / "ev" / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == metrics["protocol"]["scored_items"]
    assert {"psnr_input", "psnr_model", "psnr_wiener", "ssim_unsharp", "sigma"} <= set(rows[0])
    assert sum(g["n"] for g in metrics["breakdown"]) == len(rows)

    # compare: two checkpoints, one table, the same test set
    result = invoke("compare", run, run / "last.keras", "--baselines", "identity")
    assert result.exit_code == 0, result.output
    assert "tiny" in result.output and "last" in result.output and "blurred input" in result.output

    # eval on the dataset another config names (here: whole images of various sizes, no tiles)
    result = invoke("eval", run / "best.keras", "--config", tiny_config, "--set", "data.eval_crop=null",
                    "--output", tmp_path / "whole")
    assert result.exit_code == 0, result.output
    assert "various sizes" in result.output
    assert json.loads((tmp_path / "whole" / "metrics.json").read_text())["protocol"]["item_size"] is None

    # predict: any size, gray / RGB / RGBA / 16-bit in, same layout out; inputs never overwritten
    inputs = tmp_path / "in"
    write_png(inputs / "rgb.png", smooth_image(rng, 37, 29))
    write_png(inputs / "gray.png", smooth_image(rng, 21, 40, 1)[:, :, 0])
    rgba = np.dstack([smooth_image(rng, 24, 24), np.full((24, 24), 77, np.uint8)])
    cv2.imwrite(str(inputs / "rgba.png"), rgba)
    cv2.imwrite(str(inputs / "deep.png"), (smooth_image(rng, 20, 20).astype(np.uint16) * 257))
    out = tmp_path / "out"
    result = invoke("predict", inputs, "--checkpoint", run / "best.keras", "--output", out)
    assert result.exit_code == 0, result.output
    for name, shape, dtype in (("rgb", (37, 29, 3), np.uint8), ("gray", (21, 40), np.uint8),
                               ("rgba", (24, 24, 4), np.uint8), ("deep", (20, 20, 3), np.uint16)):
        got = cv2.imread(str(out / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert got.shape == shape and got.dtype == dtype, name
    assert (cv2.imread(str(out / "rgba.png"), cv2.IMREAD_UNCHANGED)[:, :, 3] == 77).all()
    result = invoke("predict", inputs / "rgb.png", "--checkpoint", run / "best.keras", "--output", out)
    assert "already exists" in _one_error_line(result)
    result = invoke("predict", inputs / "rgb.png", "-c", run / "best.keras", "-o", tmp_path / "sbs", "--side-by-side")
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "sbs" / "rgb_side_by_side.png")).shape[1] > 2 * 29
    result = invoke("predict", inputs / "rgb.png", "--checkpoint", run / "best.keras", "--output", inputs)
    assert "replace its input" in _one_error_line(result)

    # an existing run directory is never overwritten without being asked
    assert "already exists" in _one_error_line(invoke("train", "--config", tiny_config, "--run-dir", run))

    # resume continues from the saved state and appends to the history
    result = invoke("train", "--run-dir", run, "--resume", "--set", "train.epochs=3", "--no-eval")
    assert result.exit_code == 0, result.output
    with open(run / "history.csv") as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == [0, 1, 2]


def test_nafnet_with_charbonnier_and_cosine_schedule_trains(tmp_path: Path, tiny_config: Path):
    run = tmp_path / "naf"
    result = invoke("train", "-c", tiny_config, "--run-dir", run, "--no-eval", "--set",
                    "model={type: nafnet, width: 4, enc_blocks: [1, 1], middle_blocks: 1, dec_blocks: [1, 1]}",
                    "--set", "train.loss=charbonnier", "--set", "train.lr_schedule=cosine",
                    "--set", "train.warmup_epochs=1", "--set", "train.epochs=3")
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["reduce_lr"]["enabled"] is False  # the schedule owns the learning rate
    with open(run / "history.csv") as f:
        rates = [float(r["learning_rate"]) for r in csv.DictReader(f)]
    assert rates[0] == pytest.approx(0.003, rel=0.01) and rates[-1] < rates[1] < rates[0]
    assert "Traceback" not in result.output


def test_predict_skips_unreadable_images_and_says_so(tmp_path: Path, rng):
    import keras

    from deblur.models import MODELS

    model = MODELS.get("unet")(3, depth=1, base_filters=2, residual=True)
    ckpt = tmp_path / "m.keras"
    model.save(ckpt)
    inputs = tmp_path / "in"
    write_png(inputs / "ok.png", smooth_image(rng, 12, 12))
    (inputs / "zero.jpg").write_bytes(b"")
    (inputs / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    result = invoke("predict", inputs, "-c", ckpt, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "restored 1 image(s)" in result.output and "2 failed" in result.output
    assert "zero.jpg" in result.output and "junk.png" in result.output
    assert (tmp_path / "out" / "ok.png").is_file()
    del keras


@pytest.mark.parametrize(("args", "expected"), [
    (["train", "--config", "/nope.yaml"], "config file not found"),
    (["train"], "--config is required"),
    (["eval", "/nope.keras"], "checkpoint not found"),
    (["predict", "/nope.png", "-c", "/nope.keras", "-o", "/tmp/x"], "no such file"),
    (["blur", "--sample", "lena"], "unknown sample photo"),
    (["blur", "--sample", "chelsea", "--kind", "motion", "--sigma", "2"], "--sigma does not apply"),
])
def test_user_mistakes_are_one_line(args, expected):
    assert expected in _one_error_line(invoke(*args))


def test_bad_config_and_missing_data(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  bach_size: 3\n")
    assert "did you mean 'batch_size'" in _one_error_line(invoke("train", "-c", bad, "--run-dir", tmp_path / "r"))
    missing = tmp_path / "missing.yaml"
    missing.write_text("data: {source: fashion_mnist, path: %s}\n" % (tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    line = _one_error_line(invoke("train", "-c", missing, "--run-dir", tmp_path / "r2"))
    assert "train-images-idx3-ubyte" in line
    assert not (tmp_path / "r2").exists() or not any((tmp_path / "r2").iterdir())


def test_fixed_size_model_must_match_the_data(tmp_path: Path, tiny_config: Path):
    args = ["--set", "model={type: dense_ae, input_size: [32, 32], filters: [4], latent_dim: 4}"]
    line = _one_error_line(invoke("train", "-c", tiny_config, *args, "--run-dir", tmp_path / "a"))
    assert "model.input_size" in line and "16x16" in line
    line = _one_error_line(invoke("train", "-c", tiny_config, *args, "--set", "data.crop=32", "--set",
                                  "data.eval_crop=null", "--run-dir", tmp_path / "b"))
    assert "data.eval_crop" in line and "validation images are 44x48" in line


def test_fixed_size_models_say_they_resize(tmp_path: Path, rng):
    from deblur.models import MODELS

    ckpt = tmp_path / "dense.keras"
    MODELS.get("dense_ae")(3, input_size=[16, 16], filters=[4], latent_dim=4).save(ckpt)
    write_png(tmp_path / "in" / "wide.png", smooth_image(rng, 20, 64))
    result = invoke("predict", tmp_path / "in", "-c", ckpt, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "only takes 16x16 images: 64x20 is resized" in result.output and "x0.25 wide" in result.output
    assert cv2.imread(str(tmp_path / "out" / "wide.png")).shape == (20, 64, 3)


def test_checkpoint_that_is_not_a_model(tmp_path: Path, rng):
    fake = tmp_path / "fake.keras"
    fake.write_text("hello")
    write_png(tmp_path / "a.png", smooth_image(rng, 8, 8))
    line = _one_error_line(invoke("predict", tmp_path / "a.png", "-c", fake, "-o", tmp_path / "o"))
    assert "not a Keras .keras checkpoint" in line


def test_blur_writes_test_images(tmp_path: Path):
    result = invoke("blur", "--sample", "chelsea", "--sigma", "2", "-o", tmp_path)
    assert result.exit_code == 0, result.output
    blurred = cv2.imread(str(tmp_path / "chelsea.png"))
    assert blurred.shape == (300, 451, 3)


def test_models_lists_models_and_sources():
    result = invoke("models")
    assert result.exit_code == 0, result.output
    assert "14,758,819" not in result.output  # defaults are the SSN sizes, not GNR638's
    for name in ("unet", "conv_ae", "dense_ae", "cifar10", "kaggle_blur", "samples"):
        assert name in result.output
    assert "chelsea" in invoke("models", "--samples").output


def test_python_m_deblur_help():
    out = subprocess.run([sys.executable, "-m", "deblur", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "train" in out.stdout and "predict" in out.stdout


def test_checkpoints_with_code_or_of_the_wrong_kind_are_refused(tmp_path: Path, rng):
    import keras

    inp = keras.Input((None, None, 3))
    keras.Model(inp, keras.layers.Lambda(lambda x: x * 2)(inp)).save(tmp_path / "lambda.keras")
    vec = keras.Input((10,))
    keras.Model(vec, keras.layers.Dense(2)(vec)).save(tmp_path / "classifier.keras")
    (tmp_path / "corrupt.keras").write_bytes((tmp_path / "classifier.keras").read_bytes()[:300])
    write_png(tmp_path / "a.png", smooth_image(rng, 16, 16))
    for name, expected in (("lambda", "Lambda layer"), ("classifier", "not an image restoration model"),
                           ("corrupt", "not a Keras .keras checkpoint")):
        line = _one_error_line(invoke("predict", tmp_path / "a.png", "-c", tmp_path / f"{name}.keras",
                                      "-o", tmp_path / "o"))
        assert expected in line, line


def test_time_limit_stops_at_an_epoch_end_and_holds_across_resume(tmp_path: Path, tiny_config: Path):
    run = tmp_path / "timed"
    result = invoke("train", "-c", tiny_config, "--run-dir", run, "--no-eval", "--set", "train.epochs=4",
                    "--set", "train.time_limit_minutes=0.0001")
    assert result.exit_code == 0, result.output
    assert "time limit" in result.output
    with open(run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["train_seconds"]) > 0
    assert (run / "best.keras").is_file()
    again = invoke("train", "--run-dir", run, "--resume", "--no-eval")
    assert again.exit_code == 0, again.output
    assert "already used" in again.output
    with open(run / "history.csv") as f:
        assert len(list(csv.DictReader(f))) == 1
    assert "train.time_limit_minutes: must be greater than 0" in _one_error_line(
        invoke("train", "-c", tiny_config, "--set", "train.time_limit_minutes=0", "--run-dir", tmp_path / "x"))


def test_init_from_starts_from_a_checkpoints_weights(tmp_path: Path, tiny_config: Path):
    import keras

    first = tmp_path / "first"
    assert invoke("train", "-c", tiny_config, "--run-dir", first, "--no-eval", "--set", "train.epochs=1").exit_code == 0
    tuned = tmp_path / "tuned"
    result = invoke("train", "-c", tiny_config, "--run-dir", tuned, "--no-eval", "--set", "train.epochs=1",
                    "--set", f"train.init_from={first / 'best.keras'}", "--set", "train.learning_rate=1e-12")
    assert result.exit_code == 0, result.output
    a = keras.saving.load_model(first / "best.keras", compile=False)
    b = keras.saving.load_model(tuned / "last.keras", compile=False)
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6)  # a negligible learning rate: the weights stayed
    line = _one_error_line(invoke("train", "-c", tiny_config, "--run-dir", tmp_path / "bad", "--set",
                                  f"train.init_from={first / 'best.keras'}", "--set", "model.base_filters=8"))
    assert "train.init_from" in line and "different model" in line


def test_predict_with_the_builtin_network_name(tmp_path: Path, rng, monkeypatch):
    image = smooth_image(rng, 40, 56)
    write_png(tmp_path / "in.png", image)
    monkeypatch.chdir(tmp_path)
    result = invoke("predict", tmp_path / "in.png", "--checkpoint", "builtin-network")
    assert result.exit_code == 0, result.output
    restored = cv2.imread(str(tmp_path / "restored" / "in.png"))
    assert restored is not None and restored.shape == image.shape

    import deblur.pretrained

    monkeypatch.setattr(deblur.pretrained, "DEFAULT_NAME", "missing.keras")
    line = _one_error_line(invoke("predict", tmp_path / "in.png", "-c", "builtin-network", "--output",
                                  tmp_path / "other"))
    assert "no built-in model" in line and "--checkpoint" in line
