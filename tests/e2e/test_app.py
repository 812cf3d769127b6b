"""The deblur command as a whole: help, `models`, one-line errors for user mistakes, locked or unusable output
folders, a full or read-only disk."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from conftest import cli_error, invoke, write_png
from deblur.core import atomic
from deblur.core.locks import FolderLock


@pytest.mark.parametrize(("args", "expected"), [
    (["train", "--config", "/nope.yaml"], "config file not found"),
    (["train"], "--config is required"),
    (["eval", "/nope.keras"], "checkpoint not found"),
    (["predict", "/nope.png", "-c", "/nope.keras", "-o", "/tmp/x"], "no such file"),
    (["blur", "--sample", "lena"], "unknown sample photo"),
    (["blur", "--sample", "chelsea", "--kind", "motion", "--sigma", "2"], "--sigma does not apply"),
])
def test_user_mistakes_are_one_line(args, expected):
    assert expected in cli_error(invoke(*args))


def test_models_lists_models_and_sources():
    result = invoke("models")
    assert result.exit_code == 0, result.output
    assert "14,758,819" not in result.output  # defaults are the SSN sizes, not GNR638's
    for name in ("unet", "conv_ae", "dense_ae", "cifar10", "kaggle_blur", "samples"):
        assert name in result.output
    assert "chelsea" in invoke("models", "--samples").output


def test_python_m_deblur_help():
    out = subprocess.run([sys.executable, "-m", "deblur", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "train" in out.stdout and "predict" in out.stdout


def test_predict_blur_and_eval_refuse_a_folder_another_job_is_writing(tmp_path: Path, images: Path, model_file: Path):
    out = tmp_path / "out"
    out.mkdir()
    sharp = tmp_path / "sharp"  # the images' twins (a pair is never one image twice)
    for p in images.iterdir():
        write_png(sharp / p.name, 255 - cv2.imread(str(p)))
    lock = FolderLock(out)  # as another job writing there holds it
    try:
        for args in (["predict", images, "-c", model_file, "-o", out], ["blur", images, "-o", out],
                     ["eval", model_file, "--pairs", images, sharp, "-o", out]):
            assert "in use by another deblur process" in cli_error(invoke(*args))
    finally:
        lock.release()
    assert list(out.iterdir()) == []


def test_output_that_is_a_file_or_a_folder_where_an_image_goes(tmp_path: Path, images: Path, model_file: Path):
    afile = tmp_path / "afile.png"
    afile.write_bytes(b"precious")
    for cmd in (["predict", images, "-c", model_file], ["blur", images]):
        assert "is a file, not a folder" in cli_error(invoke(*cmd, "-o", afile))
        assert "is a file" in cli_error(invoke(*cmd, "-o", afile / "deeper"))
    (tmp_path / "out" / "img0.png").mkdir(parents=True)
    for cmd in (["predict", images, "-c", model_file], ["blur", images]):
        assert "is a folder; an image cannot be written there" in cli_error(
            invoke(*cmd, "-o", tmp_path / "out", "--overwrite"))
    assert afile.read_bytes() == b"precious"


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_full_or_read_only_disk_stops_with_how_many_were_written(tmp_path: Path, images: Path,
                                                                   model_file: Path, monkeypatch, code):
    real = atomic.atomic_write_bytes
    calls = []

    def failing(path, payload):
        calls.append(path)
        if len(calls) > 1:
            raise OSError(code, os.strerror(code), str(Path(path).parent / ".x.deblur-12345678.tmp"))
        real(path, payload)

    monkeypatch.setattr(atomic, "atomic_write_bytes", failing)
    for cmd in (["predict", images, "-c", model_file], ["blur", images]):
        calls.clear()
        out = tmp_path / cmd[0]
        line = cli_error(invoke(*cmd, "-o", out))
        assert os.strerror(code) in line and "stopped after 1 of 3 image(s)" in line and "--skip-existing" in line
        assert len(calls) == 2  # it stopped at the first failure instead of failing every image
