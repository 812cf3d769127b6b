"""`deblur compare`: a failed model is listed last and never ranked; the same checks as eval."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import invoke, quiet_error, strict_json, tiny_unet
from deblur.models import MODELS


def test_compare_refuses_one_checkpoint_given_twice(tmp_path: Path, model_file: Path):
    other = tmp_path / "model" / "." / "tiny.keras"
    assert "same checkpoint" in quiet_error(invoke("compare", model_file, other))


@pytest.mark.parametrize(("option", "words"), [(["--split", "train"], "--split: 'train'"),
                                               (["--split", "junk"], "--split: 'junk'"),
                                               (["--crop-border", "-1"], "--crop-border -1"),
                                               (["--shift", "-1"], "--shift -1: must be from 0 to"),
                                               (["--shift", "18"], "--shift 18: must be from 0 to 17")])
def test_compare_checks_split_crop_border_and_shift_as_eval_does(tmp_path: Path, model_file: Path, option, words):
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
