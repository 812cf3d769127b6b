"""`deblur predict --checkpoint <export>` on every installed runtime: without TensorFlow or Keras, a mismatched
--engine refused, --engine auto running Keras until measured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import LIGHT, NO_TF, REPO, cli_error, exported_as, invoke, smooth_image, write_png


def test_exported_models_run_without_tensorflow_or_keras(exports, tmp_path: Path, rng):
    runnable = [str(exports[e]) for e in LIGHT if e in exports]
    if not runnable:
        pytest.skip("no light runtime installed")
    code = ("import sys, numpy as np\nfrom deblur import Restorer\n"
            f"for path in {runnable!r}:\n"
            "    out = Restorer.load(path, tile=32, overlap=8)(np.zeros((40, 50, 3), np.uint8))\n"
            "    assert out.shape == (40, 50, 3), out.shape\n"
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]\n"
            "assert not bad, bad\nprint('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
    # and the command, with TensorFlow made unimportable (tests/no_tensorflow)
    write_png(tmp_path / "in" / "a.png", smooth_image(rng, 20, 30))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(NO_TF), str(REPO / "src")])}
    cmd = [sys.executable, "-m", "deblur", "predict", str(tmp_path / "in"), "-c", runnable[0], "-o",
           str(tmp_path / "out")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "out" / "a.png").is_file()


def test_the_command_runs_an_export_and_refuses_a_mismatched_engine(exports, tmp_path: Path, rng):
    path = exported_as(exports, "onnx")
    write_png(tmp_path / "in" / "a.png", smooth_image(rng, 20, 30))
    result = invoke("predict", tmp_path / "in", "-c", path, "-o", tmp_path / "out", "--engine", "onnx")
    assert result.exit_code == 0, result.output
    assert "--engine litert runs it only from a .keras" in cli_error(
        invoke("predict", tmp_path / "in", "-c", path, "-o", tmp_path / "o2", "--engine", "litert"))
    assert "unknown engine 'onx'" in cli_error(
        invoke("predict", tmp_path / "in", "-c", path, "-o", tmp_path / "o3", "--engine", "onx"))
    other = tmp_path / "model.pt"
    other.write_bytes(b"x")
    assert "not a model deblur can run" in cli_error(invoke("predict", tmp_path / "in", "-c", other, "-o",
                                                            tmp_path / "o4"))


def test_auto_notes_once_that_it_runs_keras_until_measured(exports, tmp_path: Path, monkeypatch, rng):
    from deblur.restore.engines import store_choice

    monkeypatch.setenv("DEBLUR_CACHE_DIR", str(tmp_path / "cache"))
    write_png(tmp_path / "in" / "a.png", smooth_image(rng, 20, 30))
    write_png(tmp_path / "in" / "b.png", smooth_image(rng, 20, 30))
    note = "note: --engine auto uses Keras until `deblur benchmark-formats` has measured the runtimes"
    first = invoke("predict", tmp_path / "in", "-c", exports["keras"], "-o", tmp_path / "o1")
    assert first.exit_code == 0, first.output
    assert first.output.count(note) == 1  # once for the job, not per image
    keras_run = invoke("predict", tmp_path / "in", "-c", exports["keras"], "-o", tmp_path / "o2", "--engine", "keras")
    assert keras_run.exit_code == 0 and note not in keras_run.output  # asked for Keras: nothing to say
    store_choice(exports["keras"], "keras")
    measured = invoke("predict", tmp_path / "in", "-c", exports["keras"], "-o", tmp_path / "o3")
    assert measured.exit_code == 0 and note not in measured.output
