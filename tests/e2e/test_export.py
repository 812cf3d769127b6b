"""`deblur export`: every installed format round-trips, a bad export is caught and removed, a missing runtime
names its extra, nothing is overwritten by accident."""

from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import cli_error, invoke, needs
from deblur.restore import exported
from deblur.restore.engines import graphcheck
from deblur.restore.export import FORMATS, installed_formats, sha256

INSTALLED = installed_formats()


def target(folder: Path, fmt: str) -> Path:
    return folder / f"tiny{FORMATS.get(fmt).suffix or '_saved_model'}"


@pytest.mark.parametrize("fmt", sorted(FORMATS.names()))
def test_export_round_trips(fmt: str, tiny: Path, tmp_path: Path) -> None:
    needs(fmt)
    out = target(tmp_path, fmt)
    killed = tmp_path / ".deblur-export-killed00"  # a killed export's staging folder, two hours old, unlocked
    (killed / "half").mkdir(parents=True)
    os.utime(killed, (time.time() - 7200,) * 2)
    result = invoke("export", tiny, "--format", fmt, "--output", out)
    assert result.exit_code == 0, result.output
    assert "check: largest difference from Keras" in result.output and "dynamic height and width" in result.output
    assert out.exists()
    meta = exported.read_sidecar(out)
    assert meta is not None and set(meta) == set(exported.SIDECAR_KEYS)
    assert meta[exported.FORMAT] == fmt and meta[exported.CHANNELS] == 3 and meta[exported.MULTIPLE] == 2
    assert meta[exported.FIXED_SIZE] is None
    assert meta[exported.SOURCE_SHA256] == sha256(tiny)
    assert meta[exported.MAX_DIFF_LEVELS] in (0, 1)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".deblur-export-")]  # staging removed

    # Dynamic H and W: another size than the check photo's, not square, runs and matches Keras.
    from deblur.imaging.metrics import quantize
    from deblur.restore.engines import load_engine
    from deblur.restore.loading import load_model

    x = np.random.default_rng(1).random((1, 24, 40, 3), dtype=np.float32)
    engine = load_engine(out)
    assert engine.name == fmt
    got, want = engine(x), np.asarray(load_model(tiny)(x))
    assert got.shape == want.shape
    assert np.abs(quantize(got) - quantize(want)).max() * 255 <= 1.0 + 1e-9


def test_failed_check_is_reported_and_removed(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    needs("onnx")
    from deblur.restore.engines import onnx_engine

    real = onnx_engine.OnnxEngine.__call__
    monkeypatch.setattr(onnx_engine.OnnxEngine, "__call__", lambda self, batch: real(self, batch) + 0.02)  # ~5 levels
    out = tmp_path / "bad.onnx"
    line = cli_error(invoke("export", tiny, "--format", "onnx", "--output", out), status=1)
    assert "does not reproduce Keras" in line and "levels" in line
    assert list(tmp_path.iterdir()) == []  # no export, no sidecar, no staging folder


def test_missing_runtime_names_the_extra(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else find_spec(name, *a))
    line = cli_error(invoke("export", tiny, "--format", "openvino", "--output", tmp_path / "m.xml"))
    assert 'pip install "deblur[openvino]"' in line
    line = cli_error(invoke("benchmark-formats", tiny, "--formats", "openvino"))
    assert 'pip install "deblur[openvino]"' in line


def test_refuses_to_overwrite(tiny: Path, tmp_path: Path) -> None:
    needs("onnx")
    out = tmp_path / "m.onnx"
    out.write_bytes(b"keep me")
    line = cli_error(invoke("export", tiny, "--format", "onnx", "--output", out))
    assert "already exists" in line and "--overwrite" in line and out.read_bytes() == b"keep me"
    out.unlink()
    exported.sidecar_path(out).write_text("{}")  # a stray sidecar is someone's file too
    assert "already exists" in cli_error(invoke("export", tiny, "--format", "onnx", "--output", out))
    line = cli_error(invoke("export", tiny, "--format", "onnx", "--output", out, "--overwrite"))
    assert "only an export deblur wrote" in line and exported.sidecar_path(out).read_text() == "{}"
    exported.sidecar_path(out).unlink()
    for _ in range(2):  # written, then its own earlier export replaced
        result = invoke("export", tiny, "--format", "onnx", "--output", out, "--overwrite")
        assert result.exit_code == 0, result.output
    assert exported.read_sidecar(out)[exported.FORMAT] == "onnx"
    assert "must end in .onnx" in cli_error(invoke("export", tiny, "--format", "onnx", "--output", tmp_path / "m.xml"))
    assert "unknown export format" in cli_error(invoke("export", tiny, "--format", "tensorrt"))


def test_overwrite_never_replaces_a_folder_that_is_not_a_saved_model(tiny: Path, tmp_path: Path) -> None:
    """--overwrite replaces an earlier SavedModel export, never some other folder (a run folder, say)."""
    needs("saved_model")
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.keras").write_bytes(b"keep me")
    line = cli_error(invoke("export", tiny, "--format", "saved_model", "--output", run, "--overwrite"))
    assert "only an export deblur wrote" in line and (run / "best.keras").read_bytes() == b"keep me"


def test_export_overwrite_never_deletes_a_folder_holding_the_users_files(model_file: Path, tmp_path: Path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "saved_model.pb").write_bytes(b"")  # looked like a SavedModel: the whole folder was deleted
    (victim / "thesis.txt").write_text("precious")
    line = cli_error(invoke("export", model_file, "-f", "saved_model", "-o", victim, "--overwrite"))
    assert str(victim) in line and "only an export deblur wrote" in line
    assert (victim / "thesis.txt").read_text() == "precious"


def test_export_overwrite_replaces_its_own_export_and_nothing_else(model_file: Path, tmp_path: Path):
    out = tmp_path / "sm"
    for _ in range(2):  # written, then its own export replaced
        result = invoke("export", model_file, "-f", "saved_model", "-o", out, "--overwrite")
        assert result.exit_code == 0, result.output
    assert "saved_model.pb" in exported.read_sidecar(out)[exported.FILES]
    (out / "variables" / "mine.txt").write_text("keep")  # the user's file inside deblur's export
    line = cli_error(invoke("export", model_file, "-f", "saved_model", "-o", out, "--overwrite"))
    assert "mine.txt" in line and (out / "variables" / "mine.txt").read_text() == "keep"
    (out / "variables" / "mine.txt").unlink()
    (out / "saved_model.pb").write_bytes(b"changed")  # changed since deblur wrote it
    assert "changed since" in cli_error(invoke("export", model_file, "-f", "saved_model", "-o", out, "--overwrite"))


def test_export_to_the_current_folder_is_refused(model_file: Path, tmp_path: Path, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    (here / "saved_model.pb").write_bytes(b"")
    (here / "mine.txt").write_text("keep")
    monkeypatch.chdir(here)  # `-o .` emptied the current folder, then failed
    for name in (".", ".."):
        line = cli_error(invoke("export", model_file, "-f", "saved_model", "-o", name, "--overwrite"))
        assert "not an existing folder like . or .." in line
    assert sorted(p.name for p in here.iterdir()) == ["mine.txt", "saved_model.pb"]


def test_deblurs_own_saved_model_export_passes_the_allow_list(model_file: Path, tmp_path: Path, image: Path):
    out = tmp_path / "sm"
    assert invoke("export", model_file, "-f", "saved_model", "-o", out).exit_code == 0
    graphcheck.check_saved_model(out)
    result = invoke("predict", image, "-c", out, "-o", tmp_path / "restored")
    assert result.exit_code == 0, result.output
