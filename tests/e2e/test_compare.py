"""`deblur compare`: a failed model is listed last and never ranked; the same checks as eval."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from conftest import cli_error, invoke
from deblur.models import MODELS


def quiet_error(result, status: int = 2) -> str:
    assert "Warning" not in result.output, result.output  # and no library warning either
    return cli_error(result, status)


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


def test_compare_refuses_one_checkpoint_given_twice(tmp_path: Path, model_file: Path):
    other = tmp_path / "model" / "." / "tiny.keras"
    assert "same checkpoint" in quiet_error(invoke("compare", model_file, other))


@pytest.mark.parametrize(("option", "words"), [(["--split", "train"], "--split: 'train'"),
                                               (["--split", "junk"], "--split: 'junk'"),
                                               (["--crop-border", "-1"], "--crop-border -1")])
def test_compare_checks_split_and_crop_border_as_eval_does(tmp_path: Path, model_file: Path, option, words):
    other = tmp_path / "other.keras"
    MODELS.get("unet")(3, depth=1, base_filters=4).save(other)
    assert words in quiet_error(invoke("compare", model_file, other, *option))


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
