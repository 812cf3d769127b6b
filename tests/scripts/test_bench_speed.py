"""scripts/bench_speed.py and the other scripts' --help: target checks, report plumbing, a tiny end-to-end
speed run, non-finite output refused."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, load_script, nan_unet

_script = load_script
ROOT = REPO
_module = load_script

def _summary(model_pmm: float, model_ssim: float, bins: list[tuple[float, float]]) -> dict:
    methods = {"input": {"psnr": 28.0, "ssim": 0.80, "mse": 0.006, "psnr_of_mean_mse": 22.0},
               "wiener": {"psnr": 34.0, "ssim": 0.90, "mse": 0.002, "psnr_of_mean_mse": 26.7},
               "best": {"psnr": 35.0, "ssim": model_ssim, "mse": 0.001, "psnr_of_mean_mse": model_pmm}}
    return {"methods": methods, "breakdown": [{"group": f"sigma {i}-{i + 1}", "psnr": {"input": a, "best": b}}
                                              for i, (a, b) in enumerate(bins)]}


def test_speed_benchmark_refuses_to_time_a_model_with_non_finite_output():
    speed = _script("bench_speed")
    with pytest.raises(SystemExit, match="non-finite output"):
        speed.inference(nan_unet(), repeats=1, big=(40, 40))


def test_speed_section_marks_a_training_whose_loss_became_nan():
    speed = _script("bench_speed")
    spread = {"median": 1.0, "min": 1.0, "max": 1.0, "n": 1}
    row = {"epoch": spread, "images_per_second": spread, "megapixels_per_second": spread, "peak_rss": 2**20}
    result = {"training": {"plain": {**row, "prep_seconds": 0.1, "finite_loss": True},
                           "deblur": {**row, "finite_loss": False}},
              "image_size": [16, 16], "images": 8, "data": "folder", "model": "unet", "model_kwargs": {},
              "batch_size": 4, "epochs_timed": 1, "inference_model": "m", "inference_parameters": 10,
              "inference": {}}
    text = speed.section(result, "test")
    assert "| deblur **(FAILED: its loss became NaN/inf)** |" in text and "| plain |" in text


def test_targets_are_computed_from_the_numbers():
    bench = _module("benchmark")
    protocol = bench.Protocol("p", "t", bench.TRAININGS["cifar10_unet"], "x", ("best",), "r",
                              targets=(("best", "ssim", 0.92), ("best", "gain_pmm_input", 6.0),
                                       ("best", "gain_pmm_wiener", 1.0), ("best", "every_bin", 0.0),
                                       ("absent", "ssim", 0.5)))
    met = bench.check_targets(protocol, _summary(28.5, 0.93, [(40.0, 41.0), (30.0, 33.0)]))
    assert [ok for _, ok, _ in met] == [True, True, True, True, False]
    missed = bench.check_targets(protocol, _summary(27.0, 0.91, [(40.0, 39.5), (30.0, 33.0)]))
    assert [ok for _, ok, _ in missed][:4] == [False, False, False, False]
    assert missed[3][2] == "worst bin -0.50 dB"


def test_speed_section_replaces_only_itself(tmp_path: Path):
    speed = _module("bench_speed")
    bench = _module("benchmark")
    out = tmp_path / "BENCHMARKS.md"
    out.write_text("# Benchmarks\n\n## cifar10-u03\n\ntable\n")
    speed.replace_section(out, "## Speed\n\nfirst\n")
    speed.replace_section(out, "## Speed\n\nsecond\n")
    text = out.read_text()
    assert "table" in text and "second" in text and "first" not in text and text.count("## Speed") == 1
    assert bench.speed_section(out).strip() == "## Speed\n\nsecond".strip()


def test_speed_benchmark_runs_end_to_end_on_tiny_data(tmp_path: Path, photo_folder: Path):
    cfg = {"name": "speed", "seed": 1,
           "data": {"source": "folder", "path": str(photo_folder), "resize": [16, 16], "batch_size": 4,
                    "val_split": 0.25, "test_split": 0.25, "degradation": {"kind": "gaussian", "sigma": [0.5, 2]}},
           "model": {"type": "unet", "depth": 2, "base_filters": 4, "residual": True}}
    path = tmp_path / "speed.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "B.md"
    proc = subprocess.run([sys.executable, "scripts/bench_speed.py", "--config", str(path), "--epochs", "2",
                           "--repeats", "1", "--photo", "64", "96", "--output", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = out.read_text()
    for row in ("| plain |", "| deblur |", "| pipeline only |", "| deblur + XLA |", "| deblur + bfloat16 |",
                "| deblur, Keras pipeline |", "| 96x64 tiled"):
        assert row in text
    result = json.loads((tmp_path / "BENCHMARKS_speed.json").read_text())
    assert result["training"]["plain"]["epoch"]["n"] == 2
    assert all(r["images_per_second"]["median"] > 0 for r in result["training"].values())


@pytest.mark.parametrize("script", ["benchmark", "bench_speed"])
def test_scripts_explain_themselves(script: str):
    proc = subprocess.run([sys.executable, f"scripts/{script}.py", "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and "usage" in proc.stdout
