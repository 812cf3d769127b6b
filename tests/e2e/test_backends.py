"""`deblur train`, `eval` and `predict` on the JAX and PyTorch backends, with TensorFlow made unimportable
(skipped where the backend is not installed)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import no_tf_env
from deblur.data.evalset import EvalSet

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


def _deblur(backend: str, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deblur", *args], capture_output=True, text=True, timeout=300,
                          env=no_tf_env(backend, **extra))


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_eval_predict_without_tensorflow(backend: str, tmp_path: Path, mixed_blur_config: Path,
                                               photo_folder: Path):
    blocked = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True, text=True,
                             env=no_tf_env(backend))
    assert blocked.returncode != 0 and "ModuleNotFoundError" in blocked.stderr  # the guard works
    run = tmp_path / "run"
    done = _deblur(backend, "train", "-c", str(mixed_blur_config), "--run-dir", str(run))
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"input pipeline: keras (Keras backend {backend})" in done.stdout
    assert (run / "best.keras").is_file() and (run / "eval-test" / "metrics.json").is_file()

    # the test set is the one every backend blurs: the same images as TensorFlow makes, to the last bit
    theirs = tmp_path / "theirs.npy"
    made = subprocess.run([sys.executable, "-c", EVAL_SET, str(mixed_blur_config), str(theirs)], capture_output=True,
                          text=True, env=no_tf_env(backend), timeout=300)
    assert made.returncode == 0, made.stderr
    from deblur.config import load
    from deblur.data.base import load_splits

    cfg = load(mixed_blur_config)
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
def test_tf_only_choices_are_refused_on_other_backends(backend: str, tmp_path: Path, mixed_blur_config: Path):
    for setting, message in (("data.pipeline=tf_data", "data.pipeline: tf_data needs the TensorFlow backend"),
                             ("train.distribute=mirrored", "train.distribute=mirrored needs the tensorflow backend")):
        done = _deblur(backend, "train", "-c", str(mixed_blur_config), "--run-dir", str(tmp_path / "x"),
                       "--set", setting)
        assert done.returncode == 2 and message in done.stderr, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
