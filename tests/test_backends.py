"""Every Keras backend: the Keras pipeline and on-device blur, and JAX / PyTorch runs without TensorFlow.

The in-process tests run on the TensorFlow backend. The JAX and PyTorch tests start deblur in a
subprocess with KERAS_BACKEND set and TensorFlow made unimportable, and skip when that backend is
not installed (CI installs jax[cpu] and the CPU build of torch into the test environment).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from keras import ops

from conftest import smooth_image
from deblur.config import from_dict
from deblur.data.base import ImageSet
from deblur.data.degrade import convolve, make
from deblur.data.evalset import EvalSet
from deblur.data.on_device import Degrade
from deblur.data.sequence import PairBatches, TrainBatches

NO_TF = Path(__file__).parent / "no_tensorflow"


def _data_cfg(**data):
    base = {"source": "samples", "crop": 16, "eval_crop": 16, "batch_size": 4, "eval_batch_size": 5,
            "degradation": [{"kind": "gaussian", "sigma": [0.5, 2.5]}, {"kind": "motion", "length": [3, 9]}]}
    return from_dict({"data": {**base, **data}}).data


@pytest.fixture
def images(rng):
    return ImageSet(sharp=[smooth_image(rng, 40 + 3 * i, 44) for i in range(4)], names=[f"i{i}" for i in range(4)])


def test_batched_convolution_gives_each_image_its_own_kernel(rng):
    images = rng.random((3, 20, 24, 2)).astype(np.float32)
    deg = make({"kind": "defocus", "radius": [1, 4]})
    u = rng.random((3, 4)).astype(np.float32)
    kernels = deg.kernel(deg.params(ops.convert_to_tensor(u)))
    together = ops.convert_to_numpy(convolve(ops.convert_to_tensor(images), kernels, deg.kernel_radius))
    for i in range(3):
        alone = deg.apply(ops.convert_to_tensor(images[i]), ops.convert_to_tensor(u[i]), ops.zeros((20, 24, 2)))[0]
        np.testing.assert_allclose(together[i], ops.convert_to_numpy(alone), atol=0.5 / 255 + 1e-6)
    valid = ops.convert_to_numpy(convolve(ops.convert_to_tensor(images), kernels, deg.kernel_radius, border="valid"))
    r = deg.kernel_radius
    np.testing.assert_allclose(valid, together[:, r:-r, r:-r], atol=1e-5)


def test_on_device_blur_matches_the_reference_blur(rng):
    specs = [{"kind": "gaussian", "sigma": [0.5, 2.5]}, {"kind": "motion", "length": [3, 9]}]
    layer = Degrade(specs, seed=0)
    m = layer.margin
    window = rng.random((4, 16 + 2 * m, 18 + 2 * m, 3)).astype(np.float32)
    u = rng.random((4, 4)).astype(np.float32)
    variant = np.array([0, 1, 2, 1], np.int32)  # 2 = as given
    out = ops.convert_to_numpy(layer(window, u, variant))
    assert out.shape == (4, 16, 18, 3)
    np.testing.assert_array_equal(out[2], window[2, m:-m, m:-m])
    for i in (0, 1, 3):
        deg = layer.degs[variant[i]]
        ref, _ = deg.apply(ops.convert_to_tensor(window[i]), ops.convert_to_tensor(u[i]), ops.zeros(window.shape[1:]))
        ref = ops.convert_to_numpy(ref)[m:-m, m:-m]
        diff = np.abs(out[i] - ref)
        assert diff.max() <= 1 / 255 + 1e-6 and (diff > 1e-6).mean() < 0.01  # at most a rounding tie apart


def test_keras_pipeline_batches_repeat_for_a_seed_and_cover_each_epoch(images):
    cfg = _data_cfg(crops_per_image=2)
    seq = TrainBatches(images, cfg, seed=3, paired=False, workers=1)
    assert seq.steps == 4 and seq.margin == Degrade(cfg.degradation).margin  # 4 images x 2 blurs x 2 crops / 4
    x, y = seq[0]
    again = TrainBatches(images, cfg, seed=3, paired=False, workers=1)[0]
    np.testing.assert_array_equal(x["image"], again[0]["image"])
    m = seq.margin
    np.testing.assert_array_equal(x["image"][:, m:-m, m:-m], y)  # the target is the window's centre
    assert x["image"].shape == (4, 16 + 2 * m, 16 + 2 * m, 3) and x["u"].shape == (4, 4)
    first = np.concatenate([seq._elements(i) for i in range(4)])
    assert sorted(first.tolist()) == sorted(list(range(8)) * 2)  # every (image, blur) twice per epoch
    assert not np.array_equal(first, np.concatenate([seq._elements(i) for i in range(4, 8)]))


def test_keras_pipeline_reflects_windows_of_small_images(rng):
    small = ImageSet(sharp=np.stack([smooth_image(rng, 16, 16) for _ in range(2)]), names=["a", "b"])
    x, y = TrainBatches(small, _data_cfg(batch_size=2), seed=0, paired=False, workers=1)[0]
    m = (x["image"].shape[1] - 16) // 2
    assert m > 0 and x["image"].shape[1:3] == (16 + 2 * m, 16 + 2 * m)
    np.testing.assert_array_equal(x["image"][:, m:-m, m:-m], y)


def test_validation_pairs_pass_through_the_blur_layer_unchanged(images):
    pairs = EvalSet(images, _data_cfg(), seed=1, split="val", paired=False).pairs()
    layer = Degrade(_data_cfg().degradation)
    x, _y = PairBatches(pairs, layer.margin, layer.as_given)[0]
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x["image"], x["u"], x["variant"])), pairs[0][0])


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


# --------------------------------------------------------------------------------------------------
# JAX and PyTorch, in subprocesses without TensorFlow

BACKENDS = [pytest.param(b, marks=pytest.mark.skipif(importlib.util.find_spec(m) is None,
                                                     reason=f"{m} is not installed"))
            for b, m in (("jax", "jax"), ("torch", "torch"))]

EVAL_SET = """
import sys, numpy as np
from deblur.config import load
from deblur.data.base import load_splits
from deblur.data.evalset import EvalSet
cfg = load(sys.argv[1])
splits = load_splits(cfg.data, cfg.seed)
np.save(sys.argv[2], np.concatenate([b["blurred"] for b in EvalSet(splits.test, cfg.data, cfg.seed, "test", False)]))
"""


def _env(backend: str, **extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(NO_TF), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": path, "CUDA_VISIBLE_DEVICES": "-1", **extra}


def _deblur(backend: str, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deblur", *args], capture_output=True, text=True, timeout=300,
                          env=_env(backend, **extra))


@pytest.fixture
def tiny_config(tmp_path: Path, photo_folder: Path) -> Path:
    cfg = {"name": "tiny", "seed": 4,
           "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16, "batch_size": 4,
                    "val_split": 0.25, "test_split": 0.25,
                    "degradation": [{"kind": "gaussian", "sigma": [0.5, 2.5], "noise": 0.01},
                                    {"kind": "motion", "length": [3, 7]}]},
           "model": {"type": "unet", "depth": 2, "base_filters": 4, "residual": True},
           "train": {"epochs": 2, "reduce_lr": {"enabled": False}}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_eval_predict_without_tensorflow(backend: str, tmp_path: Path, tiny_config: Path, photo_folder: Path):
    blocked = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, text=True,
                             env=_env(backend))
    assert blocked.returncode != 0 and "ModuleNotFoundError" in blocked.stderr  # the guard works
    run = tmp_path / "run"
    done = _deblur(backend, "train", "-c", str(tiny_config), "--run-dir", str(run))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"input pipeline: keras (Keras backend {backend})" in done.stdout
    assert (run / "best.keras").is_file() and (run / "eval-test" / "metrics.json").is_file()

    # the test set is the one every backend blurs: the same images as TensorFlow makes, to the last bit
    theirs = tmp_path / "theirs.npy"
    made = subprocess.run([sys.executable, "-c", EVAL_SET, str(tiny_config), str(theirs)], capture_output=True,
                          text=True, env=_env(backend), timeout=300)
    assert made.returncode == 0, made.stderr
    from deblur.config import load
    from deblur.data.base import load_splits

    cfg = load(tiny_config)
    splits = load_splits(cfg.data, cfg.seed)
    ours = np.concatenate([b["blurred"] for b in EvalSet(splits.test, cfg.data, cfg.seed, "test", False)])
    diff = np.abs(np.load(theirs) - ours)
    assert diff.max() <= 1 / 255 + 1e-6 and (diff > 1e-6).mean() < 0.001, (diff.max(), (diff > 1e-6).mean())
    summary = json.loads((run / "eval-test" / "metrics.json").read_text())
    assert summary["protocol"]["images"] == len(splits.test)

    out = tmp_path / "restored"
    pred = _deblur(backend, "predict", str(photo_folder / "img0.png"), "--checkpoint", str(run / "best.keras"),
                   "--output", str(out))
    assert pred.returncode == 0, pred.stdout + pred.stderr
    assert (out / "img0.png").is_file()


@pytest.mark.parametrize("backend", BACKENDS)
def test_tf_only_choices_are_refused_on_other_backends(backend: str, tmp_path: Path, tiny_config: Path):
    for setting, message in (("data.pipeline=tf_data", "data.pipeline: tf_data needs the TensorFlow backend"),
                             ("train.distribute=mirrored", "train.distribute=mirrored needs the tensorflow backend")):
        done = _deblur(backend, "train", "-c", str(tiny_config), "--run-dir", str(tmp_path / "x"), "--set", setting)
        assert done.returncode == 2 and message in done.stderr, done.stdout + done.stderr
        assert "Traceback" not in done.stderr


# One SGD step of the same batch on one JAX device and with DataParallel over two host devices.
DATA_PARALLEL = """
import json, sys, numpy as np, keras
from deblur import config
from deblur.training import distribute as dist
from deblur.data.base import load_splits
from deblur.data.sequence import TrainBatches
from deblur.data.on_device import with_degradation
from deblur.models import MODELS
cfg = config.load(sys.argv[1])
splits = load_splits(cfg.data, cfg.seed)
x, y = TrainBatches(splits.train, cfg.data, cfg.seed, False, workers=1)[0]
x["u"][:, 3] = 0.0  # no noise: its draw would differ between the two layouts
out = {}
for name in ("none", "data_parallel"):
    cfg.train.distribute = name
    strategy = dist.make_strategy(cfg.train)
    keras.utils.set_random_seed(cfg.seed)
    model = with_degradation(MODELS.get("unet")(3, **cfg.model.kwargs), cfg.data.degradation, 3, 0, None)
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    loss = float(model.train_on_batch(x, y))
    out[name] = {"replicas": dist.replicas(strategy), "loss": loss,
                 "weights": [w.tolist() for w in model.get_weights()]}
print("RESULT " + json.dumps(out))
"""


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_data_parallel_over_two_devices_matches_one(tmp_path: Path, tiny_config: Path):
    cfg = yaml.safe_load(tiny_config.read_text())
    cfg["data"]["batch_size"] = 8
    cfg["data"]["degradation"] = [{"kind": "gaussian", "sigma": [0.5, 2.5]}]
    tiny_config.write_text(yaml.safe_dump(cfg))
    done = subprocess.run([sys.executable, "-c", DATA_PARALLEL, str(tiny_config)], capture_output=True, text=True,
                          timeout=300, env=_env("jax", XLA_FLAGS="--xla_force_host_platform_device_count=2"))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    one, two = result["none"], result["data_parallel"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)
    for a, b in zip(one["weights"], two["weights"], strict=True):
        assert np.allclose(a, b, rtol=1e-4, atol=1e-6)
