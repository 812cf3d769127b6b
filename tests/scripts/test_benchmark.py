"""scripts/benchmark.py marks a failed model and keeps a training whose model failed its evaluation."""

import json
import math
from pathlib import Path

from conftest import load_script, strict_json

_script = load_script


def test_benchmark_report_marks_a_failed_model_and_writes_valid_json(tmp_path: Path):
    bench = _script("benchmark")
    nan = {"psnr": math.nan, "ssim": math.nan, "mse": math.nan, "psnr_of_mean_mse": math.nan}
    summary = {"protocol": {"dataset": "d", "split": "test", "scored_items": 4, "item_size": [16, 16],
                            "degradation": ["gaussian"], "seed": 1},
               "labels": {"input": "blurred input"}, "notes": [],
               "methods": {"input": {"psnr": 25.0, "ssim": 0.8, "mse": 0.003, "psnr_of_mean_mse": 25.2},
                           "cifar10_nafnet": nan},
               "gain": {"cifar10_nafnet": dict(nan)}, "models": {},
               "failed": {"cifar10_nafnet": {"nonfinite_items": 3, "items": 4}},
               "breakdown": [{"group": "sigma 0-1", "n": 4, "psnr": {"input": 25.0, "cifar10_nafnet": math.nan}}]}
    protocol = bench.PROTOCOLS[0]
    targets = bench.check_targets(protocol, summary)
    assert targets and all(not ok and "non-finite" in measured for _, ok, measured in targets)
    result = {"protocol": protocol, "summary": summary, "facts": {}, "skipped": [], "score_seconds": 1.0,
              "config": {}}
    text = "\n".join(bench.protocol_section(result, tmp_path, tmp_path))
    row = next(line for line in text.splitlines() if line.startswith("| cifar10_nafnet"))
    assert "FAILED: non-finite output (NaN/inf) on 3 of 4 items" in row
    assert row.split(" | ")[1:6] == ["—"] * 5  # PSNR, SSIM, MSE, PSNR of mean MSE, gain: no number, not "nan"
    assert "| sigma 0-1 | 4 | 25.00 | — |" in text
    bench.write_report([result], tmp_path, tmp_path, tmp_path / "B.md", "test")
    records = strict_json(tmp_path / "B.json")
    assert records[0]["summary"]["methods"]["cifar10_nafnet"]["psnr"] is None


def test_benchmark_keeps_a_training_whose_model_failed_its_evaluation(tmp_path: Path):
    """`deblur train` exits 1 when its final evaluation finds NaN output; that is a result, not a crash."""
    bench = _script("benchmark")
    (tmp_path / "eval-test").mkdir()
    assert not bench.evaluation_failed(tmp_path)  # no report: a crash, to be resumed
    (tmp_path / "eval-test" / "metrics.json").write_text(json.dumps({"failed": {}}))
    assert not bench.evaluation_failed(tmp_path)
    (tmp_path / "eval-test" / "metrics.json").write_text(
        json.dumps({"failed": {"model": {"nonfinite_items": 2, "items": 2}}}))
    assert bench.evaluation_failed(tmp_path)
