"""The workflow functions (`deblur.train`, `evaluate`, `compare`, `predict`, `export`) called directly: what
they return, and errors that name their arguments, not the command line's flags."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

import deblur
from conftest import write_png
from deblur.core.errors import DeblurError, Spelling, Stopped, arg, spelled


def test_train_evaluate_compare_predict_in_python(tmp_path: Path, tiny_config: Path, rng):
    run = tmp_path / "run"
    trained = deblur.train(tiny_config, run_dir=run, overrides=["train.epochs=1"], echo=lambda _: None)
    assert trained.run_dir == run and trained.best.is_file() and trained.epochs_run == 1
    assert trained.scores is not None and (run / "eval-test" / "metrics.json") in trained.scores.reports
    assert "model" in trained.scores.table() and trained.scores.failures() == []
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["meta"]["command"].startswith("deblur.train(") and "train.epochs=1" in saved["meta"]["command"]

    scores = deblur.evaluate(run, split="val", crop_border=1, output=tmp_path / "val")  # a run folder: best.keras
    assert scores.summary["protocol"]["split"] == "val" and scores.summary["metric_card"]["crop_border"] == 1
    assert "shift" not in scores.summary["metric_card"]
    shifted = deblur.evaluate(run, split="val", shift=2, output=tmp_path / "val-shift")
    assert "up to 2 px" in shifted.summary["metric_card"]["shift"] and "shift: best" in shifted.table()
    # each method at its best shift scores at least what it scores unshifted on the same interior
    same_interior = deblur.evaluate(run, split="val", crop_border=2, output=tmp_path / "val-crop")
    for method, s in shifted.summary["methods"].items():
        assert s["psnr"] >= same_interior.summary["methods"][method]["psnr"], method
    assert {p.name for p in scores.reports} >= {"metrics.json", "per_image.csv"}

    (tmp_path / "copy").mkdir()
    (tmp_path / "copy" / "other.keras").write_bytes(trained.best.read_bytes())
    both = deblur.compare([run, tmp_path / "copy" / "other.keras"])
    assert both.reports == [] and {"run", "other"} <= set(both.summary["labels"].values())

    photo = tmp_path / "in" / "a.png"
    write_png(photo, (rng.random((24, 32, 3)) * 255).astype(np.uint8))
    summary = deblur.predict([photo.parent], checkpoint=trained.best, output=tmp_path / "out", tile=0)
    assert [p.name for p in summary.written] == ["a.png"] and summary.failed == []


def test_a_run_folder_is_one_checkpoint_even_by_another_path(tmp_path: Path, model_file: Path):
    from deblur.api.workflows.scoring import distinct_checkpoints

    run = model_file.parent
    (run / "best.keras").symlink_to(model_file)
    with pytest.raises(DeblurError, match="are the same checkpoint; give each run once"):
        distinct_checkpoints([run, model_file])
    assert distinct_checkpoints([model_file]) == {"tiny": model_file}


@pytest.mark.parametrize(("call", "python", "flag"), [
    (lambda m, t: deblur.evaluate(m, split="train"), "split: 'train' is not allowed", "--split: 'train'"),
    (lambda m, t: deblur.evaluate(m, crop_border=-1), "crop_border -1: must be 0 or more", "--crop-border -1"),
    (lambda m, t: deblur.evaluate(m, shift=-1), "shift -1: must be from 0 to 17", "--shift -1: must be"),
    (lambda m, t: deblur.evaluate(m, shift=18), "shift 18: must be from 0 to 17", "--shift 18: must be"),
    (lambda m, t: deblur.evaluate(m, shift=1.5), "shift 1.5: must be a whole number", "--shift 1.5: must be"),
    (lambda m, t: deblur.compare([m], shift=-2), "shift -2: must be from 0 to 17", "--shift -2: must be"),
    (lambda m, t: deblur.evaluate(m, align=True), "align applies to real pairs: use it with pairs or data",
     "--align applies to real pairs: use it with --pairs or --data"),
    (lambda m, t: deblur.evaluate(m, pairs=(t, t), data=t), "give pairs or data, not both",
     "give --pairs or --data, not both"),
    (lambda m, t: deblur.compare([m], resume=True), "resume=True continues the rows journaled in output DIR",
     "--resume continues the rows journaled in --output DIR"),
    (lambda m, t: deblur.train(), "config is required", "--config is required"),
    (lambda m, t: deblur.train(resume=True), "resume=True needs run_dir (or config,", "--resume needs --run-dir"),
    (lambda m, t: deblur.predict([t], checkpoint=m, refiner=False, output=t / "o"),
     "refiner=False leaves the built-in restorer's refiner out; a checkpoint network",
     "--no-refiner leaves the built-in restorer's refiner out; a --checkpoint network"),
    (lambda m, t: deblur.predict([t], checkpoint=m, save_kernel=True, output=t / "o"),
     "save_kernel works with the built-in restorer", "--save-kernel works with the built-in restorer"),
    (lambda m, t: deblur.predict([t], checkpoint=m, engine="x", output=t / "o"), "engine: unknown engine 'x'",
     "--engine: unknown engine 'x'"),
    (lambda m, t: deblur.predict([t], checkpoint=m, tile=8, output=t / "o"), "tile 8: use 0", "--tile 8: use 0"),
    (lambda m, t: deblur.export(m, fmt="nope"), "fmt: unknown", "--format: unknown"),
    (lambda m, t: deblur.benchmark_formats(m, size=0), "size and runs must be positive",
     "--size and --runs must be positive"),
])
def test_errors_name_arguments_in_python_and_flags_on_the_command_line(tmp_path: Path, model_file: Path, call,
                                                                       python: str, flag: str):
    with pytest.raises(DeblurError) as caught:
        call(model_file, tmp_path)
    assert str(caught.value).startswith(python) or python in str(caught.value)
    assert "--" not in str(caught.value).split(";")[0]
    from deblur.cli.app import Flags

    with spelled(Flags()), pytest.raises(DeblurError) as caught:
        call(model_file, tmp_path)
    assert flag in str(caught.value)


def test_the_restorer_api_names_its_engine_argument(model_file: Path):
    with pytest.raises(DeblurError, match=r"^engine: unknown engine 'x'"):
        deblur.Restorer.load(model_file, engine="x")
    with pytest.raises(DeblurError, match=r"^engine: unknown engine 'x'"):
        deblur.Restorer.load(engine="x")


def test_the_cli_says_flags_and_how_to_continue():
    from deblur.cli.app import Flags

    flags, python = Flags(), Spelling()
    assert [flags.arg(n) for n in ("crop_border", "resume=True", "refiner=False", "fmt", "json_path")] == [
        "--crop-border", "--resume", "--no-refiner", "--format", "--json"]
    assert Flags(checkpoint="CHECKPOINT").arg("checkpoint") == "CHECKPOINT"
    assert flags.again("train", Path("runs/x")) == "deblur train --run-dir runs/x --resume"
    assert flags.again("evaluate", Path("r/best.keras")) == "deblur eval r/best.keras --resume"
    assert python.again("train", Path("runs/x")) == "deblur.train(run_dir='runs/x', resume=True)"
    assert arg("split") == "split"
    with spelled(flags):
        assert arg("split") == "--split"
    assert arg("split") == "split"  # the spelling ends with the command
    assert issubclass(Stopped, KeyboardInterrupt)
