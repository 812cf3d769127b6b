"""`train.tensorboard: true`: scalars, the learning rate and validation images in <run_dir>/tensorboard/."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import cli_error, invoke
from deblur.training.tensorboard import IMAGE_COUNT, IMAGE_TAG, side_by_side, validation_samples
from deblur.training.train import MARKER, prepare_run_dir


def _config(tmp_path: Path, photo_folder: Path, **train: object) -> Path:
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


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed")
def test_training_writes_scalars_learning_rate_and_images(tmp_path: Path, photo_folder: Path):
    run = tmp_path / "run"
    result = invoke("train", "-c", _config(tmp_path, photo_folder, learning_rate=0.002, tensorboard_every=5),
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
    error = cli_error(invoke("train", "-c", _config(tmp_path, photo_folder), "--run-dir", run), status=2)
    assert error.startswith("error: train.tensorboard:") and "pip install tensorboard," in error
    assert not (run / "config.yaml").exists() and not (run / "tensorboard").exists()


def test_tensorboard_every_must_be_positive(tmp_path: Path, photo_folder: Path):
    error = cli_error(invoke("train", "-c", _config(tmp_path, photo_folder, tensorboard_every=0)))
    assert "train.tensorboard_every: must be greater than 0" in error


def test_samples_are_few_one_size_and_centre_cropped(rng):
    big = {"blurred": rng.random((3, 300, 280, 3), dtype=np.float32), "sharp": rng.random((3, 300, 280, 3),
                                                                                         dtype=np.float32)}
    other = {"blurred": np.zeros((2, 40, 40, 3), np.float32), "sharp": np.zeros((2, 40, 40, 3), np.float32)}
    blurred, sharp = validation_samples([big, other, big], multiple=8, count=4)
    assert blurred.shape == sharp.shape == (4, 256, 256, 3)  # the 40x40 ones are skipped, not mixed in
    np.testing.assert_array_equal(sharp[0], big["sharp"][0, 22:278, 12:268])
    row = side_by_side(blurred - 2, sharp + 2)
    assert row.shape == (4, 256, 512, 3) and row.min() == 0 and row.max() == 1


def test_a_side_shorter_than_the_multiple_is_padded_not_cropped_empty(rng):
    """Validation images narrower than the model's multiple (12 px against 16) still give a sample the
    model takes: padded up to the multiple, the other side cropped down to it."""
    small = {"blurred": rng.random((2, 40, 12, 3), dtype=np.float32), "sharp": rng.random((2, 40, 12, 3),
                                                                                        dtype=np.float32)}
    blurred, sharp = validation_samples([small], multiple=16, count=2)
    assert blurred.shape == sharp.shape == (2, 32, 16, 3)
    np.testing.assert_array_equal(sharp[:, :, :12], small["sharp"][:, 4:36])
    np.testing.assert_array_equal(sharp[:, :, 12:], np.repeat(small["sharp"][:, 4:36, 11:12], 4, axis=2))
