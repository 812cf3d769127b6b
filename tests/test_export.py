"""`deblur export` and `deblur benchmark-formats`: every installed format round-trips a tiny model, a bad
export is caught and removed, missing runtimes name their extra, nothing is overwritten by accident."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import cli_error, invoke
from deblur.restore import exported
from deblur.restore.export import FORMATS, default_output, installed_formats, sha256

INSTALLED = installed_formats()


def needs(fmt: str) -> None:
    if fmt not in INSTALLED:
        pytest.skip(f"{fmt}: its runtime is not installed ({FORMATS.get(fmt).missing_module()})")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny residual U-Net (pooling factor 2) saved as a .keras checkpoint, shared by the module."""
    import keras

    from deblur.models import MODELS

    keras.utils.set_random_seed(0)  # the same weights every run
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    MODELS.get("unet")(3, depth=1, base_filters=2, residual=True).save(path)
    return path


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


def test_default_output_names() -> None:
    assert default_output(Path("runs/a/best.keras"), "onnx") == Path("runs/a/best.onnx")
    assert default_output(Path("runs/a/best.keras"), "saved_model") == Path("runs/a/best_saved_model")
    assert default_output(None, "litert") == Path("deblur_default.tflite")


def test_benchmark_formats_measures_and_chooses(tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real thing on one format (each format's export and engine are covered above; every format
    here would cost CI ~20 s more): exported, measured in subprocesses, tabled, the fastest cached."""
    needs("onnx")
    monkeypatch.setenv("DEBLUR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("deblur.restore.export.installed_formats", lambda: ["onnx"])  # --formats covers all installed
    report = tmp_path / "formats.json"
    result = invoke("benchmark-formats", tiny, "--formats", "onnx", "--size", 32, "--big", 0.01, "--runs", 1,
                    "--json", report)
    assert result.exit_code == 0, result.output
    data = json.loads(report.read_text())
    rows = {r["format"]: r for r in data["rows"]}
    assert list(rows) == ["keras", "onnx"]
    for name, row in rows.items():
        assert row["error"] is None, (name, row)
        assert row["ms_per_mp"] > 0 and row["tiled_ms_per_mp"] > 0 and row["peak_mb"] > 10
        assert 0 <= row["max_diff_levels"] < 1 and 0 < row["psnr_db"] < 100  # an untrained model: any PSNR
    assert rows["onnx"]["file_mb"] > 0 and rows["onnx"]["export_s"] > 0
    assert abs(rows["onnx"]["psnr_db"] - rows["keras"]["psnr_db"]) < 0.05
    assert rows["keras"]["peak_mb"] > rows["onnx"]["peak_mb"]  # onnxruntime's process never loads TensorFlow
    fastest = min(rows.values(), key=lambda r: r["tiled_ms_per_mp"])["format"]
    assert data["engine_auto"] == fastest and f"--engine auto now runs {fastest}" in result.output
    assert "tiled ms/MP" in result.output and "\nonnx " in result.output

    from deblur.restore.engines.cache import cached_choice

    assert cached_choice(tiny) == fastest
    assert "already exists" in cli_error(invoke("benchmark-formats", tiny, "--json", report))


def test_benchmark_formats_row_per_installed_format(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --formats every installed format gets a row; one that fails is shown with its error
    and the others are still measured (the measuring itself is faked here: see the test above)."""
    from deblur.evaluation import format_bench
    from deblur.restore.export import ExportResult

    def fake_export(source: Path, name: str, folder: Path) -> ExportResult:
        if name == INSTALLED[0]:
            raise RuntimeError("converter exploded\nsecond line")
        return ExportResult(folder / name, name, folder / "s", None, 0, 0.25, 1.5, 2**20)

    monkeypatch.setattr(format_bench, "_export", fake_export)
    monkeypatch.setattr(format_bench, "_write_check_images", lambda source, folder: None)
    speeds = {name: 10.0 + i for i, name in enumerate(["keras", *INSTALLED])}
    monkeypatch.setattr(format_bench, "_measure_in_subprocess", lambda engine, *a: {
        "ms_per_mp": 1.0, "tiled_ms_per_mp": speeds[engine], "peak_mb": 100.0, "psnr_db": 30.0})
    rows, _ = format_bench.run_benchmark(tiny, None, 32, 0.01, log=lambda s: None)
    assert [r.format for r in rows] == ["keras", *INSTALLED]
    assert rows[1].error == "converter exploded" and rows[1].tiled_ms_per_mp is None
    assert all(r.error is None and r.tiled_ms_per_mp == speeds[r.format] and r.max_diff_levels == 0.25
               for r in rows[2:])
    assert format_bench.fastest(rows).format == "keras"
    text = format_bench.table(rows)
    assert "error: converter exploded" in text and len(text.splitlines()) == len(rows) + 1


def test_a_subset_of_formats_never_replaces_the_choice(tiny: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The best of `--formats X` is stored only when X covers every installed format: otherwise an earlier
    full run's choice would be replaced by the best of a few."""
    from deblur.evaluation.format_bench import Row, store_fastest
    from deblur.restore.engines.cache import cached_choice

    monkeypatch.setenv("DEBLUR_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("deblur.restore.export.installed_formats", lambda: ["onnx", "openvino"])
    rows = [Row("keras", tiled_ms_per_mp=20.0), Row("onnx", tiled_ms_per_mp=10.0)]
    best, left_out = store_fastest(tiny, rows)
    assert best.format == "onnx" and left_out == ["openvino"] and cached_choice(tiny) is None
    best, left_out = store_fastest(tiny, [*rows, Row("openvino", tiled_ms_per_mp=5.0)])
    assert best.format == "openvino" and left_out == [] and cached_choice(tiny) == "openvino"
