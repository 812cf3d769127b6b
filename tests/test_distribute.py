"""tf.distribute on CPU: two logical devices give the same first step as one; two local workers train."""

import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

# Runs deblur's CLI with the CPU split into two logical devices (possible only before TF starts).
TWO_CPUS = (
    "import sys, tensorflow as tf;"
    "cpu = tf.config.list_physical_devices('CPU')[0];"
    "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2);"
    "from deblur.cli import main; sys.argv[0] = 'deblur'; main()"
)


@pytest.fixture
def config(tmp_path: Path, photo_folder: Path) -> Path:
    cfg = {
        "name": "dist", "seed": 3,
        "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16, "crops_per_image": 4,
                 "batch_size": 8, "val_split": 0.25, "test_split": 0.25,
                 "degradation": {"kind": "gaussian", "sigma": [0.5, 2.5]}},
        "model": {"type": "unet", "depth": 2, "base_filters": 4, "residual": True},
        "train": {"epochs": 1, "steps_per_epoch": 1, "learning_rate": 0.003, "evaluate_after": False,
                  "reduce_lr": {"enabled": False}, "early_stopping": {"enabled": False}},
    }
    path = tmp_path / "dist.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(args: list[str], env: dict[str, str] | None = None, code: str = TWO_CPUS) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1", **(env or {})})


def _finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def _first_loss(run: Path) -> float:
    with open(run / "history.csv") as f:
        return float(next(csv.DictReader(f))["loss"])


# One optimiser step on the same batch of pipeline patches, on one device and mirrored over two
# logical CPUs (global batch 8 = 2 x 4): the same loss and the same updated weights.
ONE_STEP = TWO_CPUS.split("from deblur.cli")[0] + """
import json, sys, numpy as np, keras
from deblur import config
from deblur.training import distribute as dist
from deblur.data.base import load_splits
from deblur.data.pipeline import train_dataset
from deblur.models import MODELS
cfg = config.load(sys.argv[1])
splits = load_splits(cfg.data, cfg.seed)
x, y = next(iter(train_dataset(splits.train, cfg.data, cfg.seed, False).as_numpy_iterator()))
out = {}
for name in ("none", "mirrored"):
    cfg.train.distribute, cfg.train.devices = name, (["/cpu:0", "/cpu:1"] if name == "mirrored" else None)
    strategy = dist.make_strategy(cfg.train)
    keras.utils.set_random_seed(cfg.seed)
    with dist.scope(strategy):
        model = MODELS.get("unet")(3, **cfg.model.kwargs)
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss="mse")
    dist.keras_fixes(model, strategy)
    hist = model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    out[name] = {"replicas": dist.replicas(strategy), "loss": hist.history["loss"][0],
                 "weights": [w.tolist() for w in model.get_weights()]}
print("RESULT " + json.dumps(out))
"""


def test_mirrored_over_two_cpus_matches_one_device(tmp_path: Path, config: Path):
    out = _finish(_run([str(config)], code=ONE_STEP))
    result = json.loads(out.split("RESULT ", 1)[1])
    one, two = result["none"], result["mirrored"]
    assert (one["replicas"], two["replicas"]) == (1, 2)
    assert two["loss"] == pytest.approx(one["loss"], rel=1e-5)
    for a, b in zip(one["weights"], two["weights"], strict=True):
        assert np.allclose(a, b, rtol=1e-4, atol=1e-6)  # gradients were all-reduced, not per replica


def test_mirrored_training_through_the_cli(tmp_path: Path, config: Path):
    two = tmp_path / "two"
    out = _finish(_run(["train", "-c", str(config), "--run-dir", str(two), "--set", "train.distribute=mirrored",
                        "--set", "train.devices=['/cpu:0', '/cpu:1']", "--set", "data.batch_size=4"]))
    assert "2 replica(s), global batch 8" in out and "learning rate x2" in out
    assert (two / "best.keras").is_file() and _first_loss(two) > 0
    saved = yaml.safe_load((two / "config.yaml").read_text())
    assert saved["train"]["distribute"] == "mirrored"


def test_unknown_device_is_named(tmp_path: Path, config: Path):
    proc = _run(["train", "-c", str(config), "--run-dir", str(tmp_path / "x"), "--set", "train.distribute=mirrored",
                 "--set", "train.devices=['/gpu:7']"])
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "error: train.devices: /gpu:7 not found" in out, out


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _deblur_command() -> list[str]:
    """The `deblur` console script users run, beside this interpreter (`python -m deblur` without one)."""
    script = Path(sys.executable).with_name("deblur")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "deblur"]


def _two_workers(args: list[str], tmp_path: Path, tag: str, timeout: float = 150) -> list[str]:
    """`deblur train ARGS` as workers 0 and 1 of a cluster on 127.0.0.1 (free ports); their output.

    Each worker's output goes to a file: a pipe read only after the other worker ends could fill and
    stall it. On a timeout both are killed, so a hung collective cannot outlive the test.
    """
    hosts = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    scratch = tmp_path / "tmp"  # the non-chief's scratch run folder (tempfile.mkdtemp) lands here
    scratch.mkdir(exist_ok=True)
    logs = [tmp_path / f"{tag}-worker{i}.log" for i in range(2)]
    procs: list[subprocess.Popen] = []
    try:
        for index, log in enumerate(logs):
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TMPDIR": str(scratch),
                   "TF_CONFIG": json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})}
            with open(log, "w") as out:
                procs.append(subprocess.Popen([*_deblur_command(), "train", *args], stdout=out,
                                              stderr=subprocess.STDOUT, env=env))
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 1))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{tag}: the workers did not finish in {timeout:.0f} s; worker output:\n"
                            + "\n".join(log.read_text()[-2000:] for log in logs))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    outs = [log.read_text() for log in logs]
    for index, (proc, out) in enumerate(zip(procs, outs, strict=True)):
        assert proc.returncode == 0, f"{tag}: worker {index} exited with {proc.returncode}:\n{out[-3000:]}"
    return outs


def _epochs(run: Path) -> list[str]:
    with open(run / "history.csv") as f:
        return [row["epoch"] for row in csv.DictReader(f)]


# Two TensorFlow workers and their collectives on a 2-core machine: run alone (`-n 0 -m multiworker`,
# as .ci/run does), not beside another test file; the default run deselects it (pyproject's addopts).
@pytest.mark.multiworker
def test_two_deblur_train_workers_on_localhost_skip_eval_and_resume(tmp_path: Path, config: Path):
    """As users run it: two `deblur train` processes with TF_CONFIG, `--no-eval` (the config says to
    evaluate), then both stopped after epoch 1 and resumed to epoch 2."""
    run = tmp_path / "chief"
    outs = _two_workers(["-c", str(config), "--run-dir", str(run), "--no-eval",
                         "--set", "train.distribute=multi_worker", "--set", "train.evaluate_after=true",
                         "--set", "train.steps_per_epoch=2"], tmp_path, "train")
    assert "2 replica(s), global batch 16" in outs[0]
    assert "not the chief" in outs[1] and "not the chief" not in outs[0]
    assert _epochs(run) == ["0"] and (run / "best.keras").is_file()
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["evaluate_after"] is True
    assert len(list((tmp_path / "tmp").glob("deblur-*-worker-*/run/history.csv"))) == 1  # worker 1's scratch
    # --no-eval reached the chief: no test-split scores, here or in the other worker's scratch folder
    assert not list(tmp_path.rglob("eval-test")) and "blurred input" not in outs[0]

    outs = _two_workers(["--run-dir", str(run), "--resume", "--no-eval", "--set", "train.epochs=2"], tmp_path,
                        "resume")
    assert all("resuming" in out for out in outs) and "not the chief" in outs[1]
    assert _epochs(run) == ["0", "1"]  # history continues: epoch 0 was not trained again
    assert json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"] == 2
    assert not list(tmp_path.rglob("eval-test")) and "blurred input" not in outs[0]


def test_xla_and_mixed_precision_switches_train_and_keep_float32_outputs(tmp_path: Path, config: Path):
    run = tmp_path / "mp"
    code = "import sys; from deblur.cli import main; sys.argv[0] = 'deblur'; main()"
    _finish(_run(["train", "-c", str(config), "--run-dir", str(run), "--set", "train.jit_compile=true",
                  "--set", "train.mixed_precision=bfloat16", "--set", "train.steps_per_epoch=2"], code=code))
    check = ("import keras, numpy as np; from deblur.restore.loading import load_model;"
             f"m = load_model({str(run / 'best.keras')!r});"
             "y = m(np.zeros((1, 16, 16, 3), 'float32'));"
             "print('DTYPES', m.layers[1].dtype_policy.name, keras.backend.standardize_dtype(y.dtype))")
    out = _finish(_run([], code=check))
    assert "DTYPES mixed_bfloat16 float32" in out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["jit_compile"] is True and saved["train"]["mixed_precision"] == "bfloat16"
