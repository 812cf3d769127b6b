"""deblur.training.train: run folders (made, emptied, resumed) are deblur's own; damaged histories and backups
are one line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import finishes, marked_run_folder
from deblur.core.errors import ConfigError, DeblurError
from deblur.models import MODELS
from deblur.training.train import MARKER, prepare_run_dir


def test_a_damaged_history_is_one_line_on_resume_and_no_curves_in_a_report(tmp_path: Path):
    from deblur.evaluation.report import read_history
    from deblur.training.train import best_so_far, history_rows, seconds_so_far

    history = tmp_path / "history.csv"
    history.write_bytes(b"\x85\xff\x00binary")
    with pytest.raises(DeblurError, match=r"damaged.*move it aside"):
        history_rows(history)
    assert read_history(history) == {}
    history.write_text("epoch,val_loss,train_seconds\n0,abc,xyz\n1,0.5,\n")
    assert best_so_far(history, "val_loss") == 0.5 and seconds_so_far(history) == 0.0


def test_resume_checks_the_model_against_best_keras_when_last_keras_is_damaged(tmp_path: Path):
    from deblur.training.train import RunPaths, check_same_model

    paths = RunPaths(tmp_path)
    model = MODELS.get("unet")(3, depth=1, base_filters=2)
    (tmp_path / "last.keras").write_bytes(b"PK\x03\x04 truncated")
    check_same_model(model, paths)  # nothing readable to compare with: the backup decides
    MODELS.get("unet")(3, depth=1, base_filters=4).save(tmp_path / "best.keras")
    with pytest.raises(ConfigError, match="another model"):
        check_same_model(model, paths)


def test_a_damaged_training_backup_is_one_line_that_does_not_send_you_back_to_resume(tmp_path: Path):
    from deblur.training.train import RunPaths, _backup_and_restore

    paths = RunPaths(tmp_path)
    paths.backup.mkdir()
    (paths.backup / "training_metadata.json").write_text('{"epoch": ')
    model = MODELS.get("unet")(3, depth=1, base_filters=2)
    model.compile(optimizer="adam", loss="mse")
    callback = _backup_and_restore(paths)
    callback.set_model(model)
    with pytest.raises(DeblurError, match="damaged") as info:
        callback.on_train_begin()
    assert "--overwrite" in str(info.value) and "init_from" in str(info.value)


def test_resume_refuses_a_hard_linked_or_fifo_history(tmp_path: Path):
    from deblur.training.train import prepare_run_dir

    run = marked_run_folder(tmp_path)
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("epoch\n0\n")
    os.link(outside, run / "history.csv")  # appending would change the other name's file too
    with pytest.raises(DeblurError, match="hard links"):
        prepare_run_dir(run, resume=True, overwrite=False)
    (run / "history.csv").unlink()
    os.mkfifo(run / "history.csv")  # Keras's CSVLogger would block opening it
    with pytest.raises(DeblurError, match="pipe"):
        prepare_run_dir(run, resume=True, overwrite=False)


def test_a_fifo_run_marker_does_not_block_train_overwrite(tmp_path: Path):
    from deblur.core.run_marker import MARKER
    from deblur.training.train import prepare_run_dir

    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("keep")
    os.mkfifo(run / MARKER)
    with pytest.raises(DeblurError, match="not made by deblur train"):
        finishes(lambda: prepare_run_dir(run, resume=False, overwrite=True))
    assert (run / "notes.txt").read_text() == "keep"


def test_a_marked_run_folder_is_emptied_and_an_old_unmarked_one_only_if_all_its_names_are_deblurs(tmp_path: Path):
    run = tmp_path / "run"
    with prepare_run_dir(run, resume=False, overwrite=False):
        assert (run / MARKER).read_text().startswith("deblur-run-folder")
        (run / "notes.txt").write_text("added by the user later")
        (run / "eval-test").mkdir()
    with prepare_run_dir(run, resume=False, overwrite=True):  # made by deblur: everything in it goes
        assert sorted(p.name for p in run.iterdir()) == [MARKER]
    old = tmp_path / "old"  # a run from before the marker
    (old / "eval-test").mkdir(parents=True)
    for name in ("config.yaml", "best.keras", "history.csv", "eval-test/metrics.json"):
        (old / name).write_text("x")
    with prepare_run_dir(old, resume=False, overwrite=True):
        assert sorted(p.name for p in old.iterdir()) == [MARKER]
    assert list(old.iterdir()) == []  # a start that wrote nothing leaves no marker behind
    (old / "config.yaml").write_text("x")
    (old / "eval-test").mkdir()
    (old / "eval-test" / "my-notes.md").write_text("mine")
    with pytest.raises(DeblurError, match="not made by deblur"):
        prepare_run_dir(old, resume=False, overwrite=True)
    assert (old / "eval-test" / "my-notes.md").read_text() == "mine"
