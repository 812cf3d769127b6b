"""A model whose output is NaN or inf has no score: it fails, everywhere a score is computed.

Before these tests, PSNR of a NaN MSE was the 60 dB cap (`min(cap, nan)`), so a model trained into
NaN "improved on the blurred input", ranked first in `deblur compare` and wrote black images in
`deblur predict` with exit status 0.
"""

import csv
import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from conftest import load_script, smooth_image, write_png
from deblur.cli import app
from deblur.config import load
from deblur.core.errors import DataError
from deblur.evaluation.evaluate import evaluate, json_safe
from deblur.imaging.imageio import from_float
from deblur.imaging.metrics import PSNR_CAP_DB, keras_psnr, keras_ssim, psnr_from_mse, score_image, summarize
from deblur.models import MODELS

ROOT = Path(__file__).resolve().parent.parent


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def strict_json(path: Path) -> dict:
    """json.loads that fails on NaN/Infinity, which Python writes by default and JSON does not allow."""
    def refuse(token: str) -> None:
        raise AssertionError(f"{path} holds {token}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def tiny_unet(depth: int = 1) -> keras.Model:
    return MODELS.get("unet")(3, depth=depth, base_filters=2, residual=True)


def nan_unet() -> keras.Model:
    """What `train.learning_rate=1e12` leaves in last.keras: every weight NaN, so every output NaN."""
    model = tiny_unet()
    model.set_weights([np.full(w.shape, np.nan, w.dtype) for w in model.get_weights()])
    return model


@pytest.fixture
def scored_config(tmp_path: Path, photo_folder: Path) -> Path:
    cfg = {"name": "hostile", "seed": 1,
           "data": {"source": "folder", "path": str(photo_folder), "eval_crop": 16, "val_split": 0.25,
                    "test_split": 0.25, "degradation": {"kind": "gaussian", "sigma": [0.5, 2.5]}},
           "model": {"type": "unet", "depth": 1, "base_filters": 2, "residual": True}}
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def nan_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "nan" / "last.keras"
    path.parent.mkdir()
    nan_unet().save(path)
    return path


# -- the metric card ------------------------------------------------------------------------------


def test_psnr_of_a_non_finite_mse_is_nan_never_the_cap():
    assert math.isnan(psnr_from_mse(math.nan)) and math.isnan(psnr_from_mse(math.inf))
    assert psnr_from_mse(0.0) == PSNR_CAP_DB and psnr_from_mse(0.01) == pytest.approx(20.0)
    sharp = np.full((16, 16, 3), 0.5)
    for bad in (np.nan, np.inf, -np.inf):  # clipping would have made +inf white and -inf black
        image = sharp.copy()
        image[3, 4, 1] = bad
        assert all(math.isnan(v) for v in score_image(sharp, image).values()), bad
    good = score_image(sharp, sharp)
    assert good["psnr"] == PSNR_CAP_DB and good["ssim"] == pytest.approx(1.0)
    means = summarize([good, score_image(sharp, np.full_like(sharp, np.nan))])
    assert all(math.isnan(v) for v in means.values())  # one failed item: the method has no score


def test_training_time_metrics_are_nan_for_a_sample_with_non_finite_output():
    truth = np.full((3, 16, 16, 3), 0.5, np.float32)
    pred = truth.copy()
    pred[0, 2, 2, 0] = np.nan
    pred[1, 5, 5, 2] = np.inf
    for metric in (keras_psnr, keras_ssim):
        values = np.asarray(metric(truth, pred))
        assert math.isnan(values[0]) and math.isnan(values[1]) and math.isfinite(values[2]), metric.__name__


def test_json_safe_writes_null_for_nan_and_inf():
    out = json_safe({"a": math.nan, "b": [np.float32(np.inf), 1.5, np.int64(2)], "c": (np.float64(-np.inf),)})
    assert out == {"a": None, "b": [None, 1.5, 2], "c": [None]}
    json.dumps(out, allow_nan=False)


# -- eval, compare, predict -----------------------------------------------------------------------


def test_eval_of_a_nan_model_reports_it_failed_and_exits_1(tmp_path: Path, scored_config: Path,
                                                           nan_checkpoint: Path):
    out = tmp_path / "ev"
    result = invoke("eval", nan_checkpoint, "--config", scored_config, "--baselines", "identity", "--output", out)
    assert result.exit_code == 1, result.output
    metrics = strict_json(out / "metrics.json")
    items = metrics["protocol"]["scored_items"]
    assert items > 1
    message = f"model (unet) produced non-finite output (NaN/inf) on {items} of {items} items: it failed"
    assert message in result.output
    assert "improves" not in result.output and "60.00" not in result.output
    assert metrics["failed"] == {"model": {"nonfinite_items": items, "items": items}}
    assert metrics["methods"]["model"] == {"psnr": None, "ssim": None, "mse": None, "psnr_of_mean_mse": None}
    assert metrics["gain"]["model"]["psnr"] is None and metrics["methods"]["input"]["psnr"] > 10
    with open(out / "per_image.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == items and all(r["psnr_model"] == "" and r["failed"] == "model" for r in rows)
    assert all(float(r["psnr_input"]) > 10 for r in rows)
    assert not (out / "gallery.png").exists()  # no best/median/worst for a model without a score


def test_compare_lists_a_failed_model_last_and_never_ranks_it(tmp_path: Path, scored_config: Path,
                                                              nan_checkpoint: Path):
    good = tmp_path / "good" / "best.keras"
    good.parent.mkdir()
    tiny_unet().save(good)
    out = tmp_path / "cmp"
    result = invoke("compare", nan_checkpoint, good.parent, "--config", scored_config, "--baselines", "identity",
                    "--output", out)
    assert result.exit_code == 1, result.output
    table = result.output.splitlines()
    good_row = next(i for i, line in enumerate(table) if line.strip().startswith("good "))
    failed_row = next(i for i, line in enumerate(table) if line.strip().startswith("last "))
    assert good_row < failed_row and "FAILED" in table[failed_row] and "60.00" not in table[failed_row]
    assert "last produced non-finite output (NaN/inf)" in result.output
    assert not any("last" in line and ("improves" in line or "WORSE" in line) for line in table)
    assert any(line.strip().startswith("-> good ") for line in table)  # the working model keeps its verdict
    metrics = strict_json(out / "metrics.json")
    assert list(metrics["methods"]) == ["input", "good", "last"] and list(metrics["failed"]) == ["last"]
    assert metrics["methods"]["good"]["psnr"] > 10


def test_a_model_that_fails_on_some_items_only_has_no_score(scored_config: Path):
    """inf on the items whose top-left pixel is bright, the identity elsewhere: N of M, 0 < N < M."""
    inputs = keras.Input((None, None, 3))
    outputs = keras.layers.Lambda(
        lambda x: keras.ops.where(x[:, :1, :1, :1] > 0.45, np.inf, x))(inputs)
    model = keras.Model(inputs, outputs, name="partly")
    result = evaluate(model, load(scored_config), "test", baselines="identity", gallery=False)
    failed = result.summary["failed"]["model"]
    assert 0 < failed["nonfinite_items"] < failed["items"], failed
    flagged = [r for r in result.rows if r.get("failed") == "model"]
    assert len(flagged) == failed["nonfinite_items"]
    assert all(math.isnan(r["psnr_model"]) for r in flagged)
    assert all(math.isfinite(r["psnr_model"]) for r in result.rows if "failed" not in r)
    assert math.isnan(result.summary["methods"]["model"]["psnr"])
    assert f"on {failed['nonfinite_items']} of {failed['items']} items: it failed" in result.table()
    assert "model (partly)" in result.table() and "improves" not in result.table()


def test_eval_names_the_model_the_checkpoint_holds_not_the_config(tmp_path: Path, scored_config: Path):
    ckpt = tmp_path / "ae.keras"
    MODELS.get("conv_ae")(3, filters=(2,), latent_filters=2, residual=True).save(ckpt)
    result = invoke("eval", ckpt, "--config", scored_config, "--baselines", "identity", "--output", tmp_path / "e")
    assert result.exit_code == 0, result.output
    assert "model (conv_ae)" in result.output and "model (unet)" not in result.output  # the config says unet
    assert strict_json(tmp_path / "e" / "metrics.json")["models"]["model"]["architecture"] == "conv_ae"


def test_predict_with_a_nan_model_writes_nothing_and_exits_1(tmp_path: Path, rng, nan_checkpoint: Path):
    for name in ("a", "b"):
        write_png(tmp_path / "in" / f"{name}.png", smooth_image(rng, 20, 24))
    out = tmp_path / "out"
    result = invoke("predict", tmp_path / "in", "-c", nan_checkpoint, "-o", out, "--side-by-side")
    assert result.exit_code == 1, result.output
    assert "2 failed" in result.output and "NaN or infinite" in result.output
    assert "a.png" in result.output and "b.png" in result.output
    assert not out.exists() or not any(out.iterdir())  # never an all-black image


def test_from_float_refuses_nan_and_inf_instead_of_writing_black_or_white():
    for bad in (np.nan, np.inf):
        image = np.full((4, 4, 3), 0.5, np.float32)
        image[1, 1, 1] = bad
        with pytest.raises(DataError, match=r"NaN or infinite values \(1 of 48\)"):
            from_float(image)
    assert from_float(np.full((2, 2, 1), 2.0, np.float32)).max() == 255  # finite but out of range: clipped


# -- the benchmark scripts ------------------------------------------------------------------------


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


def test_speed_benchmark_refuses_to_time_a_model_with_non_finite_output():
    speed = _script("bench_speed")
    with pytest.raises(SystemExit, match="non-finite output"):
        speed.inference(nan_unet(), repeats=1, big=(40, 40))


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

