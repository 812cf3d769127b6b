"""`deblur benchmark-formats`: measures the installed formats, chooses one, and overwrites only its own report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import cli_error, invoke, needs
from deblur.restore.export import installed_formats

INSTALLED = installed_formats()


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


def test_benchmark_json_overwrite_replaces_only_its_own_report(model_file: Path, tmp_path: Path):
    mine = tmp_path / "mine.json"
    mine.write_text('{"mine": 1}')
    line = cli_error(invoke("benchmark-formats", model_file, "--json", mine, "--overwrite"))
    assert "not a report deblur benchmark-formats wrote" in line and mine.read_text() == '{"mine": 1}'


@pytest.mark.parametrize("big", ["nan", "inf", "-1", "1e12"])
def test_benchmark_formats_checks_big_before_any_export(model_file: Path, monkeypatch, big: str):
    from deblur.restore import export

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("exported before the arguments were checked")

    monkeypatch.setattr(export, "export_model", no_export)
    line = cli_error(invoke("benchmark-formats", model_file, "--big", big))
    assert "--big" in line
