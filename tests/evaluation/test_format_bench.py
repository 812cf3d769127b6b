"""deblur.evaluation.format_bench: one row per installed format; a subset of formats never replaces the stored
choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from deblur.restore.export import installed_formats

INSTALLED = installed_formats()


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
