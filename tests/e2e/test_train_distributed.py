"""`deblur train` distributed: mirrored over two logical CPUs, XLA and mixed precision, two multi_worker
processes on 127.0.0.1 (marked multiworker), and a one-worker multi_worker run that resumes."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import run_on_two_cpus, wait_ok


def _first_loss(run: Path) -> float:
    with open(run / "history.csv") as f:
        return float(next(csv.DictReader(f))["loss"])


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


def test_mirrored_training_through_the_cli(tmp_path: Path, dist_config: Path):
    two = tmp_path / "two"
    out = wait_ok(run_on_two_cpus(["train", "-c", str(dist_config), "--run-dir", str(two),
                                   "--set", "train.distribute=mirrored", "--set", "train.devices=['/cpu:0', '/cpu:1']",
                                   "--set", "data.batch_size=4"]))
    assert "2 replica(s), global batch 8" in out and "learning rate x2" in out
    assert (two / "best.keras").is_file() and _first_loss(two) > 0
    saved = yaml.safe_load((two / "config.yaml").read_text())
    assert saved["train"]["distribute"] == "mirrored"


def test_unknown_device_is_named(tmp_path: Path, dist_config: Path):
    proc = run_on_two_cpus(["train", "-c", str(dist_config), "--run-dir", str(tmp_path / "x"),
                            "--set", "train.distribute=mirrored", "--set", "train.devices=['/gpu:7']"])
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "error: train.devices: /gpu:7 not found" in out, out


# Two TensorFlow workers and their collectives on a 2-core machine: run alone (`-n 0 -m multiworker`,
# as .ci/run does), not beside another test file; the default run deselects it (pyproject's addopts).
@pytest.mark.multiworker
def test_two_deblur_train_workers_on_localhost_skip_eval_and_resume(tmp_path: Path, dist_config: Path):
    """As users run it: two `deblur train` processes with TF_CONFIG, `--no-eval` (the config says to
    evaluate), then both stopped after epoch 1 and resumed to epoch 2."""
    run = tmp_path / "chief"
    outs = _two_workers(["-c", str(dist_config), "--run-dir", str(run), "--no-eval",
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


def test_xla_and_mixed_precision_switches_train_and_keep_float32_outputs(tmp_path: Path, dist_config: Path):
    run = tmp_path / "mp"
    code = "import sys; from deblur.cli import main; sys.argv[0] = 'deblur'; main()"
    wait_ok(run_on_two_cpus(["train", "-c", str(dist_config), "--run-dir", str(run), "--set", "train.jit_compile=true",
                             "--set", "train.mixed_precision=bfloat16", "--set", "train.steps_per_epoch=2"], code=code))
    check = ("import keras, numpy as np; from deblur.restore.loading import load_model;"
             f"m = load_model({str(run / 'best.keras')!r});"
             "y = m(np.zeros((1, 16, 16, 3), 'float32'));"
             "print('DTYPES', m.layers[1].dtype_policy.name, keras.backend.standardize_dtype(y.dtype))")
    out = wait_ok(run_on_two_cpus([], code=check))
    assert "DTYPES mixed_bfloat16 float32" in out
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["train"]["jit_compile"] is True and saved["train"]["mixed_precision"] == "bfloat16"


def test_multi_worker_run_resumes_at_the_next_epoch(tmp_path: Path, shard_config: Path):
    """One worker under a simulated TF_CONFIG: stopped after epoch 1, resumed, it trains epoch 2 only."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1",
           "TF_CONFIG": json.dumps({"cluster": {"worker": ["127.0.0.1:0"]}, "task": {"type": "worker", "index": 0}})}
    run = tmp_path / "run"

    def deblur(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "deblur", *args], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    deblur("train", "-c", str(shard_config), "--run-dir", str(run), "--set", "train.distribute=multi_worker",
           "--set", "train.steps_per_epoch=2")
    assert json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"] == 1
    out = deblur("train", "--run-dir", str(run), "--resume", "--set", "train.epochs=2")
    assert "resuming" in out
    with open(run / "history.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["0", "1"]  # epoch 1 was not trained again
    assert json.loads((run / "backup" / "training_metadata.json").read_text())["epoch"] == 2
