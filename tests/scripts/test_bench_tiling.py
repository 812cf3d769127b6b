"""scripts/bench_tiling.py reports both tiling modes."""

from __future__ import annotations

import json

import pytest

from conftest import load_script


def test_bench_script_reports_both_modes(model_file, tmp_path, capsys):
    bench = load_script("bench_tiling")
    out = tmp_path / "bench.json"
    result = bench.main(["--checkpoint", str(model_file), "--runs", "1", "--images", "1", "--size", "96",
                         "--tile", "64", "--overlap", "8", "--json", str(out)])
    assert result["whole_s"] > 0 and result["tiled_s"] > 0 and result["layout"]["tile"] == "52x52"
    assert result["layout"]["pixel_overhead"] == pytest.approx(4 * 52 * 52 / 96**2 - 1, abs=1e-4)  # 2x2 tiles
    assert json.loads(out.read_text())["time_overhead"] == result["time_overhead"]
    assert "pixel overhead" in capsys.readouterr().out
