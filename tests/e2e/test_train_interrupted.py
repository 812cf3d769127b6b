"""`deblur train` interrupted: SIGKILL mid-epoch then --resume matches an uninterrupted run, Ctrl-C stops at a
safe point, a NaN loss and a time limit stop cleanly."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from typer.testing import CliRunner

from conftest import cli_error, invoke
from deblur.cli import app
from deblur.restore.loading import load_model

EPOCHS = 4

def _config(tmp_path: Path, **train) -> Path:
    cfg = {
        "name": "fault", "seed": 3,
        "data": {"source": "samples", "crop": 48, "eval_crop": 96, "crops_per_image": 24, "batch_size": 8,
                 "degradation": {"kind": "gaussian", "sigma": [0.5, 2.5]}},
        "model": {"type": "unet", "depth": 2, "base_filters": 8, "residual": True},
        "train": {"epochs": EPOCHS, "learning_rate": 0.002, "evaluate_after": False, **train},
    }
    path = tmp_path / "fault.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _history(run: Path) -> list[dict[str, str]]:
    path = run / "history.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _train(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "deblur", "train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)


def _wait_for_epochs(proc: subprocess.Popen, run: Path, n: int, timeout: float = 240) -> None:
    end = time.time() + timeout
    while len(_history(run)) < n:
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < end, "training too slow"
        time.sleep(0.05)


def test_time_limit_stops_at_an_epoch_end_and_holds_across_resume(tmp_path: Path, train_config: Path):
    run = tmp_path / "timed"
    result = invoke("train", "-c", train_config, "--run-dir", run, "--no-eval", "--set", "train.epochs=4",
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
    assert "train.time_limit_minutes: must be greater than 0" in cli_error(
        invoke("train", "-c", train_config, "--set", "train.time_limit_minutes=0", "--run-dir", tmp_path / "x"))


def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path: Path):
    cfg = _config(tmp_path)
    reference = _train("-c", str(cfg), "--run-dir", str(tmp_path / "ref"))
    assert reference.wait(timeout=300) == 0, reference.stdout.read()

    run = tmp_path / "killed"
    proc = _train("-c", str(cfg), "--run-dir", str(run))
    _wait_for_epochs(proc, run, 2)
    time.sleep(0.3)  # well inside the third epoch
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert len(_history(run)) == 2  # the killed epoch never completed

    resumed = _train("--run-dir", str(run), "--resume")
    out = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, out
    history, expected = _history(run), _history(tmp_path / "ref")
    assert [int(r["epoch"]) for r in history] == list(range(EPOCHS))
    final, ref = float(history[-1]["val_loss"]), float(expected[-1]["val_loss"])
    assert abs(final - ref) / ref < 0.25, (final, ref)
    model = load_model(run / "best.keras")
    assert model.count_params() > 0 and load_model(run / "last.keras").count_params() == model.count_params()


def test_ctrl_c_stops_at_a_safe_point_and_says_how_to_resume(tmp_path: Path):
    run = tmp_path / "interrupted"
    proc = _train("-c", str(_config(tmp_path)), "--run-dir", str(run))
    _wait_for_epochs(proc, run, 1)
    os.killpg(proc.pid, signal.SIGINT)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, out
    assert "--resume" in out and "Traceback" not in out
    assert load_model(run / "last.keras").count_params() > 0
    assert not list(run.glob(".*.keras"))  # no temporary files left behind
    resumed = _train("--run-dir", str(run), "--resume")
    assert resumed.wait(timeout=300) == 0
    assert len(_history(run)) == EPOCHS


def test_nan_loss_stops_with_a_message(tmp_path: Path):


    cfg = _config(tmp_path, learning_rate=1e12, early_stopping={"enabled": False}, reduce_lr={"enabled": False})
    result = CliRunner().invoke(app, ["train", "-c", str(cfg), "--run-dir", str(tmp_path / "nan")])
    assert result.exit_code == 2, result.output
    assert "NaN or infinite" in result.output and "learning_rate" in result.output
