"""`deblur train`: end to end on a tiny config, the Keras pipeline, TensorBoard, init_from, packs, and one-line
refusals of run folders and settings."""

from __future__ import annotations

import csv
import errno
import importlib.util
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from conftest import cli_error, invoke, marked_run_folder, pack_cli, quiet_error, smooth_image, tree, write_png
from deblur.cli import app
from deblur.config import read_yaml
from deblur.core.errors import DeblurError
from deblur.data.on_device import Degrade
from deblur.models import MODELS
from deblur.training.tensorboard import IMAGE_COUNT, IMAGE_TAG
from deblur.training.train import MARKER, prepare_run_dir


def billion_laughs(levels: int = 9) -> str:
    lines = ["name: laughs", "data:", "  options:", f"    l0: &l0 [{', '.join(['lol'] * 9)}]"]
    lines += [f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.fixture
def quick_config(tmp_path: Path, photo_folder: Path) -> Path:
    cfg = {"name": "tiny", "seed": 1,
           "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16, "crops_per_image": 2,
                    "batch_size": 4, "val_split": 0.25, "test_split": 0.25,
                    "degradation": {"kind": "gaussian", "sigma": [0.5, 1.5]}},
           "model": {"type": "unet", "depth": 1, "base_filters": 2},
           "train": {"epochs": 1, "steps_per_epoch": 1, "evaluate_after": False}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _tb_config(tmp_path: Path, photo_folder: Path, **train: object) -> Path:
    cfg = {"name": "tb", "seed": 3,
           "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16, "batch_size": 4,
                    "val_split": 0.25, "test_split": 0.25, "degradation": {"kind": "gaussian", "sigma": [0.5, 2.0]}},
           "model": {"type": "unet", "depth": 1, "base_filters": 4, "residual": True},
           "train": {"epochs": 2, "reduce_lr": {"enabled": False}, "tensorboard": True, **train}}
    path = tmp_path / "tb.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _events(folder: Path) -> dict[str, list[tuple[int, object]]]:
    """tag -> [(step, tensor proto)] of every event file under `folder`."""
    import tensorflow as tf

    found: dict[str, list[tuple[int, object]]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                found.setdefault(value.tag, []).append((event.step, value.tensor))
    return found


def _scalar(tensor) -> float:
    import tensorflow as tf

    return float(tf.make_ndarray(tensor))


def test_keras_pipeline_trains_on_tensorflow_and_saves_the_restorer_alone(tmp_path, photo_folder):
    import keras
    from typer.testing import CliRunner

    from deblur.cli import app

    cfg = {"name": "kp", "seed": 2,
           "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16, "batch_size": 4,
                    "val_split": 0.25, "test_split": 0.25, "pipeline": "keras",
                    "degradation": {"kind": "gaussian", "sigma": [0.5, 2.5], "noise": 0.01}},
           "model": {"type": "unet", "depth": 2, "base_filters": 4},
           "train": {"epochs": 2, "evaluate_after": False}}
    path = tmp_path / "kp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = CliRunner().invoke(app, ["train", "-c", str(path), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "input pipeline: keras" in result.output
    model = keras.saving.load_model(tmp_path / "run" / "best.keras", compile=False)
    assert not any(isinstance(layer, Degrade) for layer in model.layers)
    assert model.input_shape == (None, None, None, 3)
    # resuming restores the wrapped model's training state and appends to the history
    result = CliRunner().invoke(app, ["train", "--run-dir", str(tmp_path / "run"), "--resume",
                                      "--set", "train.epochs=3"])
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "run" / "history.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2"]


def test_train_eval_predict_end_to_end(tmp_path: Path, train_config: Path, rng):
    run = tmp_path / "runs" / "tiny"
    result = invoke("train", "--config", train_config, "--run-dir", run)
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
    assert "already exists" in cli_error(again)
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
    result = invoke("eval", run / "best.keras", "--config", train_config, "--set", "data.eval_crop=null",
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
    assert "already exists" in cli_error(result)
    result = invoke("predict", inputs / "rgb.png", "-c", run / "best.keras", "-o", tmp_path / "sbs", "--side-by-side")
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "sbs" / "rgb_side_by_side.png")).shape[1] > 2 * 29
    result = invoke("predict", inputs / "rgb.png", "--checkpoint", run / "best.keras", "--output", inputs)
    assert "replace its input" in cli_error(result)

    # an existing run directory is never overwritten without being asked
    assert "already exists" in cli_error(invoke("train", "--config", train_config, "--run-dir", run))

    # resume continues from the saved state and appends to the history
    result = invoke("train", "--run-dir", run, "--resume", "--set", "train.epochs=3", "--no-eval")
    assert result.exit_code == 0, result.output
    with open(run / "history.csv") as f:
        epochs = [int(r["epoch"]) for r in csv.DictReader(f)]
    assert epochs == [0, 1, 2]


def test_nafnet_with_charbonnier_and_cosine_schedule_trains(tmp_path: Path, train_config: Path):
    run = tmp_path / "naf"
    result = invoke("train", "-c", train_config, "--run-dir", run, "--no-eval", "--set",
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


def test_bad_config_and_missing_data(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  bach_size: 3\n")
    assert "did you mean 'batch_size'" in cli_error(invoke("train", "-c", bad, "--run-dir", tmp_path / "r"))
    missing = tmp_path / "missing.yaml"
    missing.write_text("data: {source: fashion_mnist, path: %s}\n" % (tmp_path / "empty"))
    (tmp_path / "empty").mkdir()
    line = cli_error(invoke("train", "-c", missing, "--run-dir", tmp_path / "r2"))
    assert "train-images-idx3-ubyte" in line
    assert not (tmp_path / "r2").exists() or not any((tmp_path / "r2").iterdir())


def test_fixed_size_model_must_match_the_data(tmp_path: Path, train_config: Path):
    args = ["--set", "model={type: dense_ae, input_size: [32, 32], filters: [4], latent_dim: 4}"]
    line = cli_error(invoke("train", "-c", train_config, *args, "--run-dir", tmp_path / "a"))
    assert "model.input_size" in line and "16x16" in line
    line = cli_error(invoke("train", "-c", train_config, *args, "--set", "data.crop=32", "--set",
                                  "data.eval_crop=null", "--run-dir", tmp_path / "b"))
    assert "data.eval_crop" in line and "validation images are 44x48" in line


def test_init_from_starts_from_a_checkpoints_weights(tmp_path: Path, train_config: Path):
    import keras

    first = tmp_path / "first"
    first_run = invoke("train", "-c", train_config, "--run-dir", first, "--no-eval", "--set", "train.epochs=1")
    assert first_run.exit_code == 0
    tuned = tmp_path / "tuned"
    result = invoke("train", "-c", train_config, "--run-dir", tuned, "--no-eval", "--set", "train.epochs=1",
                    "--set", f"train.init_from={first / 'best.keras'}", "--set", "train.learning_rate=1e-12")
    assert result.exit_code == 0, result.output
    a = keras.saving.load_model(first / "best.keras", compile=False)
    b = keras.saving.load_model(tuned / "last.keras", compile=False)
    for x, y in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(x, y, atol=1e-6)  # a negligible learning rate: the weights stayed
    line = cli_error(invoke("train", "-c", train_config, "--run-dir", tmp_path / "bad", "--set",
                                  f"train.init_from={first / 'best.keras'}", "--set", "model.base_filters=8"))
    assert "train.init_from" in line and "different model" in line


def test_whole_images_smaller_than_the_ssim_window_are_refused_before_training(tmp_path: Path, photo_folder: Path):
    cfg = {"name": "t", "data": {"source": "folder", "path": str(photo_folder), "resize": [10, 10], "batch_size": 2,
                                 "val_split": 0.25, "test_split": 0.25,
                                 "degradation": {"kind": "gaussian", "sigma": 1}},
           "model": {"type": "unet", "depth": 1, "base_filters": 2}, "train": {"epochs": 1, "steps_per_epoch": 1}}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert "smaller than 11x11" in quiet_error(invoke("train", "-c", path, "--run-dir", tmp_path / "run"))


def test_an_os_error_before_the_run_is_saved_does_not_suggest_resume(tmp_path: Path, photo_folder: Path,
                                                                     monkeypatch):
    import deblur.training.train as trainmod

    def fail(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error", str(photo_folder / "img0.png"))

    monkeypatch.setattr(trainmod, "train", fail)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"source": "folder", "path": str(photo_folder), "crop": 16,
                                            "eval_crop": 16}}))
    line = quiet_error(invoke("train", "-c", cfg, "--run-dir", tmp_path / "run"))
    assert "nothing was trained" in line and "--resume" not in line


def test_yaml_aliases_that_expand_without_bound_are_refused(tmp_path: Path):

    from deblur.config import load, parse_overrides

    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs())
    start = time.perf_counter()
    with pytest.raises(DeblurError, match=r"laughs.yaml: line \d+, column \d+: YAML: refused: its aliases"):
        read_yaml(path)
    assert time.perf_counter() - start < 5
    result = CliRunner().invoke(app, ["train", "-c", str(path), "--run-dir", str(tmp_path / "run")])
    assert "expand to more than 20,000 values" in cli_error(result) and not (tmp_path / "run").exists()

    path.write_text("name: loop\ndata:\n  options: &a {again: *a}\n")
    with pytest.raises(DeblurError, match="refers to the value that contains it"):
        read_yaml(path)
    path.write_text("name: deep\ndata:\n  options: {x: " + "[" * 3000 + "]" * 3000 + "}\n")
    with pytest.raises(DeblurError, match="nested too deeply"):
        read_yaml(path)
    with pytest.raises(DeblurError, match=r"--set data.options: refused: its aliases"):
        parse_overrides(["data.options={a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], b: &b [*a, *a, *a, *a, *a, *a, *a, "
                         "*a, *a, *a], c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b], d: &d [*c, *c, *c, *c, *c, "
                         "*c, *c, *c, *c, *c], e: [*d, *d, *d]}"])
    path.write_text(bytes(2 << 20).decode() + "\n")
    with pytest.raises(DeblurError, match="is not a config"):
        read_yaml(path)
    # aliases used as people use them still work
    path.write_text("name: ok\ndata:\n  degradation: [&g {kind: gaussian, sigma: 1}, *g]\n")
    specs = load(path).data.degradation
    assert len(specs) == 2 and all(d["kind"] == "gaussian" and d["sigma"] == 1 for d in specs)


@pytest.mark.parametrize("planted", ["history.csv", "backup", "tensorboard", "eval-test", "backup/inner"])
def test_resume_refuses_a_link_planted_in_the_run_folder(tmp_path: Path, planted: str):
    run = marked_run_folder(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "history.csv").write_text("epoch\n0\n")
    link = run / planted
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(outside / "history.csv" if planted == "history.csv" else outside)
    line = cli_error(invoke("train", "--run-dir", run, "--resume"))
    assert "symbolic link" in line and planted in line
    assert sorted(p.name for p in outside.iterdir()) == ["history.csv"]
    assert (outside / "history.csv").read_text() == "epoch\n0\n"


def test_overwrite_refuses_a_folder_deblur_did_not_make(tmp_path: Path, quick_config: Path):
    project = tmp_path / "thesis"
    (project / "src").mkdir(parents=True)
    (project / "config.yaml").write_text("title: my thesis\n")
    (project / "thesis.tex").write_text("\\documentclass{article}")
    (project / "src" / "main.py").write_text("print('hi')")
    before = tree(project)
    line = cli_error(invoke("train", "-c", quick_config, "--run-dir", project, "--overwrite"))
    assert "not made by deblur" in line and "delete it by hand" in line and "thesis.tex" in line
    assert tree(project) == before


def test_run_dir_that_is_a_file_or_a_link_with_overwrite_is_one_line(tmp_path: Path, quick_config: Path):
    afile = tmp_path / "afile"
    afile.write_text("precious")
    assert "is a file, not a folder" in cli_error(invoke("train", "-c", quick_config, "--run-dir", afile))
    assert "is a file" in cli_error(invoke("train", "-c", quick_config, "--run-dir", afile / "sub"))
    target = tmp_path / "target"
    with prepare_run_dir(target, resume=False, overwrite=False):
        (target / "best.keras").write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert "symbolic link" in cli_error(invoke("train", "-c", quick_config, "--run-dir", link, "--overwrite"))
    assert (target / "best.keras").read_text() == "keep" and afile.read_text() == "precious"


def test_a_second_train_into_a_locked_run_folder_stops_at_once(tmp_path: Path, quick_config: Path):
    run = tmp_path / "run"
    with prepare_run_dir(run, resume=False, overwrite=False):  # as another `deblur train` holds it
        line = cli_error(invoke("train", "-c", quick_config, "--run-dir", run, "--overwrite"))
        assert str(run) in line and "in use by another deblur process" in line
        (run / "config.yaml").write_text("name: x\n")
        assert "in use" in cli_error(invoke("train", "--run-dir", run, "--resume"))


@pytest.mark.parametrize("setting", ["data.batch_size=100000000", "data.batch_size=1000000000000",
                                     "data.eval_batch_size=1e12"])
def test_batches_that_cannot_fit_in_memory_are_refused_up_front(tmp_path: Path, quick_config: Path, setting):
    line = cli_error(invoke("train", "-c", quick_config, "--set", setting, "--run-dir", tmp_path / "r"))
    assert "GiB" in line and setting.split("=")[0] in line
    assert not (tmp_path / "r").exists()


def test_a_batch_too_big_for_the_images_read_is_refused_before_training(tmp_path: Path, quick_config: Path):
    from deblur.core.limits import physical_memory

    batch = max(1, (physical_memory() or 2**34) // (3 * 4 * 4) // 2)  # passes the 1-pixel floor, not 40x48
    line = cli_error(invoke("train", "-c", quick_config, "--set", "data.crop=null", "--set", "data.eval_crop=null",
                            "--set", f"data.batch_size={batch}", "--run-dir", tmp_path / "r"))
    assert "data.batch_size" in line and "GiB" in line


@pytest.mark.parametrize("setting", ["data.degradation={kind: gaussian, sigma: 1e6}",
                                     "data.degradation={kind: motion, length: [1, 1e6]}",
                                     "data.degradation=[{kind: none}, {kind: defocus, radius: 1e6}]",
                                     "data.degradation={kind: gaussian, sigma: 30}"])
def test_config_blurs_too_large_for_the_machine_or_the_images(tmp_path: Path, quick_config: Path, setting):
    line = cli_error(invoke("train", "-c", quick_config, "--set", setting, "--run-dir", tmp_path / "r"))
    assert "data.degradation" in line and "kernel" in line
    if "30" in setting:  # a 181-pixel kernel fits the limit, not the 40-48 pixel photos
        assert "too large for" in line


def test_model_settings_keras_refuses_are_one_line(tmp_path: Path, quick_config: Path):
    line = cli_error(invoke("train", "-c", quick_config, "--set", "model.base_filters=-1", "--run-dir", tmp_path / "r"))
    assert line.startswith("error: model: unet cannot be built with") and "base_filters=-1" in line
    assert not (tmp_path / "r").exists()


def test_resume_after_the_model_was_edited_is_one_line(tmp_path: Path, quick_config: Path):
    from deblur.config import load
    from deblur.training.train import RunPaths, save_config

    run = tmp_path / "run"
    with prepare_run_dir(run, resume=False, overwrite=False) as paths:
        save_config(load(quick_config), paths, "test")
        MODELS.get("unet")(3, depth=2, base_filters=4).save(RunPaths(run).last)  # what the run trained
    line = cli_error(invoke("train", "--run-dir", run, "--resume"))
    assert "another model" in line and "last.keras" in line


def test_train_one_epoch_from_a_pack(tmp_path: Path, photo_folder: Path):
    pack = pack_cli(photo_folder, tmp_path / "pack")
    cfg = {
        "name": "packed", "seed": 3,
        "data": {"source": "folder", "path": str(pack), "crop": 16, "eval_crop": 16, "batch_size": 4,
                 "val_split": 0.25, "test_split": 0.25, "degradation": {"kind": "gaussian", "sigma": 1.0}},
        "model": {"type": "unet", "depth": 1, "base_filters": 2, "residual": True},
        "train": {"epochs": 1, "steps_per_epoch": 1, "evaluate_after": False,
                  "reduce_lr": {"enabled": False}, "early_stopping": {"enabled": False}},
    }
    config = tmp_path / "packed.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    result = invoke("train", "-c", config, "--run-dir", run)
    assert result.exit_code == 0, result.output
    assert f"pack {pack}" in result.output and (run / "best.keras").is_file()


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_training_writes_scalars_learning_rate_and_images(tmp_path: Path, photo_folder: Path):
    run = tmp_path / "run"
    result = invoke("train", "-c", _tb_config(tmp_path, photo_folder, learning_rate=0.002, tensorboard_every=5),
                    "--run-dir", run, "--no-eval")
    assert result.exit_code == 0, result.output
    logs = run / "tensorboard"
    train, val, images = _events(logs / "train"), _events(logs / "validation"), _events(logs / "images")
    assert [step for step, _ in train["epoch_loss"]] == [0, 1]
    assert [step for step, _ in val["epoch_loss"]] == [0, 1]
    assert "epoch_psnr" in val or any("psnr" in tag for tag in val), sorted(val)
    assert [_scalar(t) for _, t in train["epoch_learning_rate"]] == pytest.approx([0.002, 0.002])
    # every 5 epochs from the first, and the last: epochs 0 and 1 of 2
    assert [step for step, _ in images[IMAGE_TAG]] == [0, 1]
    # an image summary holds width, height, then one PNG per sample: blurred | restored | sharp
    _, tensor = images[IMAGE_TAG][0]
    width, height, *pngs = tensor.string_val
    assert (int(width), int(height)) == (3 * 16, 16) and len(pngs) == IMAGE_COUNT  # 16x16 validation tiles
    assert all(png.startswith(b"\x89PNG") for png in pngs)
    # a run folder from before the marker, with its logs, is still recognised as deblur's: --overwrite empties it
    (run / MARKER).unlink()
    with prepare_run_dir(run, resume=False, overwrite=True):
        assert not (run / "tensorboard").exists() and not (run / "best.keras").exists()


def test_without_tensorflow_the_run_is_refused_before_it_starts(tmp_path: Path, photo_folder: Path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    run = tmp_path / "run"
    error = cli_error(invoke("train", "-c", _tb_config(tmp_path, photo_folder), "--run-dir", run), status=2)
    assert error.startswith("error: train.tensorboard:") and "pip install tensorboard," in error
    assert not (run / "config.yaml").exists() and not (run / "tensorboard").exists()


def test_tensorboard_every_must_be_positive(tmp_path: Path, photo_folder: Path):
    error = cli_error(invoke("train", "-c", _tb_config(tmp_path, photo_folder, tensorboard_every=0)))
    assert "train.tensorboard_every: must be greater than 0" in error
