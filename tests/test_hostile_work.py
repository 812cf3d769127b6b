"""Hostile input never loses work or prints a traceback (issue 12).

Run folders are deleted only when deblur made them, and locked while written; outputs never replace
inputs or each other; a killed job's temporaries are cleaned and its folder job can continue; files
get the permissions `open()` would give; every OS, memory and backend failure is one `error:` line;
multi-frame, EXIF-rotated and gray + alpha images are handled as they should be. The last test
drives the real CLI with generated arguments and checks nothing outside its output folder changes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps
from typer.testing import CliRunner

from conftest import cli_error, invoke, smooth_image, write_png
from deblur.cli import app
from deblur.core import atomic
from deblur.core.locks import FolderLock
from deblur.imaging import outputs
from deblur.imaging.imageio import read_image
from deblur.models import MODELS
from deblur.training.train import MARKER, prepare_run_dir

runner = CliRunner()


one_error = cli_error


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under root (links not followed): its content hash and mode."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if p.is_symlink():
                out[str(p.relative_to(root))] = (os.readlink(p), 0)
            else:
                out[str(p.relative_to(root))] = (hashlib.sha1(p.read_bytes()).hexdigest(), p.stat().st_mode)
    return out


@pytest.fixture
def tiny_config(tmp_path: Path, photo_folder: Path) -> Path:
    cfg = {"name": "tiny", "seed": 1,
           "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16, "crops_per_image": 2,
                    "batch_size": 4, "val_split": 0.25, "test_split": 0.25,
                    "degradation": {"kind": "gaussian", "sigma": [0.5, 1.5]}},
           "model": {"type": "unet", "depth": 1, "base_filters": 2},
           "train": {"epochs": 1, "steps_per_epoch": 1, "evaluate_after": False}}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def images(tmp_path: Path, rng) -> Path:
    folder = tmp_path / "in"
    for i in range(3):
        write_png(folder / f"img{i}.png", smooth_image(rng, 12, 16))
    return folder


# --------------------------------------------------------------------------------------------------
# Run folders: deleted only when deblur made them


def test_overwrite_refuses_a_folder_deblur_did_not_make(tmp_path: Path, tiny_config: Path):
    project = tmp_path / "thesis"
    (project / "src").mkdir(parents=True)
    (project / "config.yaml").write_text("title: my thesis\n")
    (project / "thesis.tex").write_text("\\documentclass{article}")
    (project / "src" / "main.py").write_text("print('hi')")
    before = tree(project)
    line = one_error(invoke("train", "-c", tiny_config, "--run-dir", project, "--overwrite"))
    assert "not made by deblur" in line and "delete it by hand" in line and "thesis.tex" in line
    assert tree(project) == before


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
    with pytest.raises(Exception, match="not made by deblur"):
        prepare_run_dir(old, resume=False, overwrite=True)
    assert (old / "eval-test" / "my-notes.md").read_text() == "mine"


def test_run_dir_that_is_a_file_or_a_link_with_overwrite_is_one_line(tmp_path: Path, tiny_config: Path):
    afile = tmp_path / "afile"
    afile.write_text("precious")
    assert "is a file, not a folder" in one_error(invoke("train", "-c", tiny_config, "--run-dir", afile))
    assert "is a file" in one_error(invoke("train", "-c", tiny_config, "--run-dir", afile / "sub"))
    target = tmp_path / "target"
    with prepare_run_dir(target, resume=False, overwrite=False):
        (target / "best.keras").write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(target)
    assert "symbolic link" in one_error(invoke("train", "-c", tiny_config, "--run-dir", link, "--overwrite"))
    assert (target / "best.keras").read_text() == "keep" and afile.read_text() == "precious"


# --------------------------------------------------------------------------------------------------
# One process per output folder


def test_a_second_train_into_a_locked_run_folder_stops_at_once(tmp_path: Path, tiny_config: Path):
    run = tmp_path / "run"
    with prepare_run_dir(run, resume=False, overwrite=False):  # as another `deblur train` holds it
        line = one_error(invoke("train", "-c", tiny_config, "--run-dir", run, "--overwrite"))
        assert str(run) in line and "in use by another deblur process" in line
        (run / "config.yaml").write_text("name: x\n")
        assert "in use" in one_error(invoke("train", "--run-dir", run, "--resume"))


def test_the_lock_of_a_killed_process_does_not_block(tmp_path: Path):
    folder = tmp_path / "run"
    folder.mkdir()
    code = ("import sys, time; from deblur.core.locks import FolderLock; FolderLock(sys.argv[1]); "
            "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(Exception, match="in use"):
            FolderLock(folder)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    FolderLock(folder).release()  # the kernel dropped the dead process's lock


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
            assert "in use by another deblur process" in one_error(invoke(*args))
    finally:
        lock.release()
    assert list(out.iterdir()) == []


# --------------------------------------------------------------------------------------------------
# Outputs never replace inputs or each other


def test_blur_refuses_two_inputs_with_one_stem_and_writing_over_its_inputs(tmp_path: Path, rng):
    folder = tmp_path / "sharp"
    write_png(folder / "a.png", smooth_image(rng, 10, 10))
    assert cv2.imwrite(str(folder / "a.jpg"), smooth_image(rng, 10, 10))
    before = tree(folder)
    # a.png and a.jpg give a.png and a.jpg (photos stay photos); written in one format, they collide
    assert "would both be written to" in one_error(invoke("blur", folder, "-o", tmp_path / "o", "--format", "png"))
    assert not (tmp_path / "o").exists()  # refused before any work, and the folder it made is gone
    line = one_error(invoke("blur", folder / "a.png", "-o", folder, "--overwrite"))
    assert "would replace its input" in line
    write_png(tmp_path / "chelsea.png", smooth_image(rng, 10, 10))
    assert "would both be written" in one_error(invoke("blur", tmp_path / "chelsea.png", "--sample", "chelsea",
                                                       "-o", tmp_path / "o"))
    assert tree(folder) == before


def test_an_output_never_replaces_any_input_even_through_a_hard_link(tmp_path: Path, rng):
    write_png(tmp_path / "src" / "x.jpg.png", smooth_image(rng, 8, 8))
    (tmp_path / "out").mkdir()
    os.link(tmp_path / "src" / "x.jpg.png", tmp_path / "out" / "x.png")  # out/x.png *is* the input
    with pytest.raises(Exception, match="would replace its input"):
        outputs.plan([("x", tmp_path / "src" / "x.jpg.png")], tmp_path / "out", overwrite=True)


# --------------------------------------------------------------------------------------------------
# Interrupted jobs: stale temporaries, --skip-existing


def test_a_rerun_removes_only_deblurs_own_stale_temporaries(tmp_path: Path, images: Path, model_file: Path):
    out = tmp_path / "out"
    out.mkdir()
    stale = [".img0.png.deblur-ab12cd34.tmp", ".img1.png.x9y8z7w6.tmp"]  # ours, and the naming before the tag
    kept = [".notes.tmp", "draft.tmp", ".img0.png.deblur-short.tmp"]
    for name in stale + kept:
        (out / name).write_text("partial")
    assert invoke("predict", images, "-c", model_file, "-o", out).exit_code == 0
    names = {p.name for p in out.iterdir()}
    assert not names & set(stale) and set(kept) <= names
    run = tmp_path / "run"
    run.mkdir()
    (run / ".best.deblur-q1w2e3r4.tmp.keras").write_text("partial")
    (run / ".last.a1b2c3d4.keras").write_text("partial")
    with prepare_run_dir(run, resume=False, overwrite=False):
        assert sorted(p.name for p in run.iterdir()) == [MARKER]


def test_skip_existing_continues_an_interrupted_folder_job(tmp_path: Path, images: Path, model_file: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "img1.png").write_bytes(b"done before the interruption")
    result = invoke("predict", images, "-c", model_file, "-o", out, "--skip-existing")
    assert result.exit_code == 0, result.output
    assert "restored 2 image(s)" in result.output and "1 already there, skipped" in result.output
    assert (out / "img1.png").read_bytes() == b"done before the interruption"
    assert read_image(out / "img0.png").shape == (12, 16, 3)
    assert "contradict" in one_error(invoke("predict", images, "-c", model_file, "-o", out, "--skip-existing",
                                            "--overwrite"))
    result = invoke("blur", images, "-o", out / "b", "--skip-existing")
    assert result.exit_code == 0 and "blurred 3 image(s)" in result.output
    result = invoke("blur", images, "-o", out / "b", "--skip-existing")
    assert result.exit_code == 0 and "blurred 0 image(s)" in result.output and "3 already there" in result.output


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_get_the_permissions_open_would_give(tmp_path: Path, umask: int):
    old = os.umask(umask)
    try:
        atomic.atomic_write_bytes(tmp_path / "r.json", b"{}")
        from deblur.restore.checkpoints import atomic_save

        atomic_save(MODELS.get("unet")(1, depth=1, base_filters=2), tmp_path / "best.keras")
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    want = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert want == 0o666 & ~umask
    for name in ("r.json", "best.keras"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == want, name


# --------------------------------------------------------------------------------------------------
# File system failures: one line, and how far the job got


def test_output_that_is_a_file_or_a_folder_where_an_image_goes(tmp_path: Path, images: Path, model_file: Path):
    afile = tmp_path / "afile.png"
    afile.write_bytes(b"precious")
    for cmd in (["predict", images, "-c", model_file], ["blur", images]):
        assert "is a file, not a folder" in one_error(invoke(*cmd, "-o", afile))
        assert "is a file" in one_error(invoke(*cmd, "-o", afile / "deeper"))
    (tmp_path / "out" / "img0.png").mkdir(parents=True)
    for cmd in (["predict", images, "-c", model_file], ["blur", images]):
        assert "is a folder; an image cannot be written there" in one_error(
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
        line = one_error(invoke(*cmd, "-o", out))
        assert os.strerror(code) in line and "stopped after 1 of 3 image(s)" in line and "--skip-existing" in line
        assert len(calls) == 2  # it stopped at the first failure instead of failing every image


def test_an_unwritable_output_folder_is_refused_before_any_work(tmp_path: Path, images: Path, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p).endswith("readonly") else real(p, mode, **k))
    assert "cannot write there" in one_error(invoke("blur", images, "-o", tmp_path / "readonly"))
    assert not (tmp_path / "readonly").exists()

    def no_mkdir(self, *a, **k):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))

    monkeypatch.setattr(Path, "mkdir", no_mkdir)
    assert "Read-only file system" in one_error(invoke("blur", images, "-o", tmp_path / "new"))


@pytest.mark.parametrize(("exc", "words", "status"), [
    (OSError(errno.ENOSPC, "No space left on device", "/x/best.keras"), "the disk is full", 1),
    (OSError(errno.EISDIR, "Is a directory", "/x/a.png"), "a folder is in the way", 1),
    (MemoryError(), "out of memory", 1),
    (type("ResourceExhaustedError", (RuntimeError,), {})("OOM when allocating tensor"), "out of memory", 1),
    (KeyError("oops"), "internal error: KeyError", 1),
    (KeyboardInterrupt(), "interrupted", 130),
])
def test_every_remaining_failure_is_one_line_at_the_command_boundary(tmp_path: Path, images: Path, model_file: Path,
                                                                     monkeypatch, exc, words, status):
    import deblur.restore.loading

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(deblur.restore.loading, "load_model", fail)
    result = invoke("predict", images, "-c", model_file, "-o", tmp_path / "o")
    assert result.exit_code == status and "Traceback" not in result.output
    if status != 130:
        assert words in one_error(result, status)
    assert not (tmp_path / "o").exists()


# --------------------------------------------------------------------------------------------------
# Impossible sizes and edited runs, refused up front


@pytest.mark.parametrize("setting", ["data.batch_size=100000000", "data.batch_size=1000000000000",
                                     "data.eval_batch_size=1e12"])
def test_batches_that_cannot_fit_in_memory_are_refused_up_front(tmp_path: Path, tiny_config: Path, setting):
    line = one_error(invoke("train", "-c", tiny_config, "--set", setting, "--run-dir", tmp_path / "r"))
    assert "GiB" in line and setting.split("=")[0] in line
    assert not (tmp_path / "r").exists()


def test_a_batch_too_big_for_the_images_read_is_refused_before_training(tmp_path: Path, tiny_config: Path):
    from deblur.core.limits import physical_memory

    batch = max(1, (physical_memory() or 2**34) // (3 * 4 * 4) // 2)  # passes the 1-pixel floor, not 40x48
    line = one_error(invoke("train", "-c", tiny_config, "--set", "data.crop=null", "--set", "data.eval_crop=null",
                            "--set", f"data.batch_size={batch}", "--run-dir", tmp_path / "r"))
    assert "data.batch_size" in line and "GiB" in line


@pytest.mark.parametrize(("args", "words"), [
    (["--sigma", "1e6"], "kernel"), (["--kind", "motion", "--length", "1e6"], "kernel"),
    (["--kind", "defocus", "--radius", "1e6"], "kernel"), (["--sigma", "nan"], "finite"),
    (["--kind", "motion", "--angle", "inf"], "finite"), (["--noise", "nan"], "finite"), (["--seed", "-1"], "--seed"),
])
def test_blur_parameters_the_machine_cannot_do_are_one_line(tmp_path: Path, images: Path, args, words):
    assert words in one_error(invoke("blur", images, "-o", tmp_path / "o", *args))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("setting", ["data.degradation={kind: gaussian, sigma: 1e6}",
                                     "data.degradation={kind: motion, length: [1, 1e6]}",
                                     "data.degradation=[{kind: none}, {kind: defocus, radius: 1e6}]",
                                     "data.degradation={kind: gaussian, sigma: 30}"])
def test_config_blurs_too_large_for_the_machine_or_the_images(tmp_path: Path, tiny_config: Path, setting):
    line = one_error(invoke("train", "-c", tiny_config, "--set", setting, "--run-dir", tmp_path / "r"))
    assert "data.degradation" in line and "kernel" in line
    if "30" in setting:  # a 181-pixel kernel fits the limit, not the 40-48 pixel photos
        assert "too large for" in line


def test_model_settings_keras_refuses_are_one_line(tmp_path: Path, tiny_config: Path):
    line = one_error(invoke("train", "-c", tiny_config, "--set", "model.base_filters=-1", "--run-dir", tmp_path / "r"))
    assert line.startswith("error: model: unet cannot be built with") and "base_filters=-1" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("shape", [(2, 2, 3), (1, 1, 1), (1, 5, 3), (3, 2, 4)])
def test_blur_of_images_smaller_than_the_kernel(tmp_path: Path, rng, shape):
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    path = tmp_path / "in" / "tiny.png"
    path.parent.mkdir()
    assert cv2.imwrite(str(path), image)
    result = invoke("blur", path, "-o", tmp_path / "o", "--sigma", "3")
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "o" / "tiny.png").shape == shape


def test_resume_after_the_model_was_edited_is_one_line(tmp_path: Path, tiny_config: Path):
    from deblur.config import load
    from deblur.training.train import RunPaths, save_config

    run = tmp_path / "run"
    with prepare_run_dir(run, resume=False, overwrite=False) as paths:
        save_config(load(tiny_config), paths, "test")
        MODELS.get("unet")(3, depth=2, base_filters=4).save(RunPaths(run).last)  # what the run trained
    line = one_error(invoke("train", "--run-dir", run, "--resume"))
    assert "another model" in line and "last.keras" in line


# --------------------------------------------------------------------------------------------------
# Frames, orientation and gray + alpha


def test_an_animated_gif_says_only_its_first_frame_is_restored(tmp_path: Path, model_file: Path):
    frames = [Image.fromarray(np.full((10, 12, 3), 40 * i, np.uint8)) for i in range(3)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    result = invoke("predict", gif, "-c", model_file, "-o", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "anim.gif: has 3 frames" in result.output and "only the first" in result.output


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow_in_every_format(tmp_path: Path, fmt: str, orientation: int):
    image = np.random.default_rng(orientation).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, exif=exif.tobytes(),
                                **({"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}))
    path = tmp_path / f"x.{fmt.lower()}"
    path.write_bytes(buf.getvalue())
    with Image.open(path) as im:
        want = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    got = read_image(path)
    assert got.shape == want.shape
    if fmt != "JPEG":
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_gray_alpha_comes_back_as_gray_alpha(tmp_path: Path, model_file: Path, rng, dtype):
    top = 65535 if dtype == np.uint16 else 255
    gray = (smooth_image(rng, 14, 18, 1).astype(np.float64) / 255 * top).astype(dtype)
    alpha = np.full_like(gray, top // 3)
    path = tmp_path / "in" / "ga.png"
    path.parent.mkdir()
    from deblur.imaging.imagemeta import encode_gray_alpha_png

    path.write_bytes(encode_gray_alpha_png(np.concatenate([gray, alpha], axis=2)))
    for cmd in (["predict", path, "-c", model_file, "-o", tmp_path / "p"], ["blur", path, "-o", tmp_path / "b"]):
        result = invoke(*cmd)
        assert result.exit_code == 0, result.output
        out = Path(str(cmd[-1])) / "ga.png"
        assert out.read_bytes()[25] == 4  # PNG colour type 4: gray + alpha, not tinted RGBA
        back = read_image(out, gray_alpha=True)
        assert back.shape == (14, 18, 2) and back.dtype == dtype
        np.testing.assert_array_equal(back[:, :, 1:], alpha)
    with Image.open(tmp_path / "b" / "ga.png") as im:
        assert im.size == (18, 14)


# --------------------------------------------------------------------------------------------------
# The real CLI with generated arguments: a status, one line at most, nothing outside its folder touched

NUMBERS = ["0", "1", "-1", "3", "16", "nan", "inf", "-inf", "1e6", "1e300", "0.5", "2.5", "99999999999999999999",
           "abc", ""]
SETS = ["data.batch_size=1e12", "data.batch_size=0", "data.batch_size=-3", "data.crop=1000", "data.crop=[4, 0]",
        "data.degradation={kind: gaussian, sigma: 1e6}", "data.degradation={kind: motion, length: .nan}",
        "data.degradation={kind: defocus, radius: [3, 1]}", "model.depth=0", "model.depth=40", "model.base_filters=-1",
        "train.epochs=0", "train.learning_rate=.inf", "data.eval_batch_size=1e12", "name=../x", "data.channels=2",
        "data.path=/nonexistent", "data.resize=[8, 8]", "model.type=nafnet", "junk", "=", "train.epochs=1"]


@pytest.fixture(scope="module")
def sandbox():
    """Inputs shared by every example: images of every layout, junk files, a model, a config."""
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        rng = np.random.default_rng(5)
        base = smooth_image(rng, 12, 14)
        write_png(root / "in" / "rgb.png", base)
        write_png(root / "in" / "gray.png", base[:, :, :1])
        assert cv2.imwrite(str(root / "in" / "rgba.png"), np.dstack([base, np.full(base.shape[:2], 99, np.uint8)]))
        write_png(root / "in" / "tiny.png", base[:2, :2])
        write_png(root / "pairs" / "blur" / "a.png", cv2.GaussianBlur(base, (3, 3), 0))
        write_png(root / "pairs" / "sharp" / "a.png", base)
        (root / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
        (root / "empty.jpg").write_bytes(b"")
        (root / "notes.txt").write_text("not an image")
        MODELS.get("unet")(3, depth=1, base_filters=2, residual=True).save(root / "m.keras")
        for i in range(6):
            write_png(root / "photos" / f"p{i}.png", smooth_image(rng, 24, 24))
        cfg = {"name": "tiny", "seed": 1,
               "data": {"source": "folder", "path": str(root / "photos"), "crop": 16, "eval_crop": 16,
                        "crops_per_image": 1, "batch_size": 2, "val_split": 0.34, "test_split": 0.17},
               "model": {"type": "unet", "depth": 1, "base_filters": 2},
               "train": {"epochs": 1, "steps_per_epoch": 1, "evaluate_after": False}}
        (root / "tiny.yaml").write_text(yaml.safe_dump(cfg))
        (root / "broken.yaml").write_text("data: [unclosed")
        yield root


def _paths(root: Path) -> st.SearchStrategy[str]:
    names = ["in", "in/rgb.png", "in/gray.png", "in/rgba.png", "in/tiny.png", "junk.png", "empty.jpg", "notes.txt",
             "m.keras", "missing.png", "pairs/blur", "pairs/sharp", "pairs", "tiny.yaml", "broken.yaml", "."]
    return st.sampled_from([str(root / n) for n in names] + ["", "-", "a\nb", "\x7f", "x" * 300])


def _outputs(root: Path, out: Path) -> st.SearchStrategy[str]:
    return st.sampled_from([str(out), str(out / "deep" / "er"), str(root / "in"), str(root / "in" / "rgb.png"),
                            str(root / "m.keras"), str(root / "in" / "rgb.png" / "sub"), "", "."])


def _arguments(root: Path, out: Path) -> dict[str, st.SearchStrategy[list[str]]]:
    paths, outs, numbers = _paths(root), _outputs(root, out), st.sampled_from(NUMBERS)
    flags = st.lists(st.sampled_from(["--overwrite", "--skip-existing", "--side-by-side", "--recursive"]),
                     max_size=2, unique=True)
    checkpoints = st.sampled_from([str(root / "m.keras"), "0", str(root / "junk.png"), str(root / "in")])
    tiles = st.sampled_from([[], ["--tile", "0"], ["--tile", "16", "--overlap", "4"]]) | numbers.map(
        lambda n: ["--tile", n])
    limits = st.just([]) | numbers.map(lambda n: ["--max-megapixels", n])
    predict = st.builds(lambda i, c, o, f, t, m: ["predict", *i, "-c", c, "-o", o, *f, *t, *m],
                        st.lists(paths, min_size=1, max_size=3), checkpoints, outs, flags, tiles, limits)
    blur = st.builds(lambda i, s, o, k, opts, f: ["blur", *i, *s, "-o", o, *k, *opts, *f],
                     st.lists(paths, max_size=2), st.sampled_from([[], ["--sample", "camera"], ["--sample", "nope"]]),
                     outs, st.sampled_from([[], ["--kind", "motion"], ["--kind", "defocus"], ["--kind", "junk"]]),
                     st.lists(st.tuples(st.sampled_from(["--sigma", "--length", "--angle", "--radius", "--noise",
                                                         "--seed"]), numbers).map(list), max_size=2).map(
                         lambda pairs: [x for p in pairs for x in p]), flags)
    evaluate = st.builds(lambda c, src, o, opts, f: ["eval", c, *src, "--output", o, *opts, *f],
                         st.sampled_from([str(root / "m.keras"), str(root / "junk.png"), str(root / "missing.keras")]),
                         st.sampled_from([["--pairs", str(root / "pairs/blur"), str(root / "pairs/sharp")],
                                          ["--data", str(root / "pairs")], ["--config", str(root / "tiny.yaml")],
                                          ["--pairs", str(root / "in"), str(root / "in")], []]),
                         outs, st.sampled_from([[], ["--split", "junk"], ["--crop-border", "-1"],
                                                ["--crop-border", "100"], ["--baselines", "nope"], ["--align"]]),
                         st.sampled_from([[], ["--overwrite"]]))
    train = st.builds(lambda c, sets, o, f: ["train", "-c", c, *[x for s in sets for x in ("--set", s)],
                                             "--run-dir", o, *f],
                      st.sampled_from([str(root / "tiny.yaml")] * 4 + [str(root / "broken.yaml"),
                                                                        str(root / "missing.yaml"),
                                                                        str(root / "in" / "rgb.png")]),
                      st.lists(st.sampled_from(SETS), max_size=2), outs,
                      st.sampled_from([[], ["--overwrite"], ["--resume"], ["--no-eval"]]))
    return {"predict": predict, "blur": blur, "eval": evaluate, "train": train}


@pytest.mark.parametrize("command", ["predict", "blur", "eval", "train"])
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(data=st.data())
def test_generated_commands_exit_cleanly_and_touch_only_their_output(sandbox: Path, command: str, data):
    with tempfile.TemporaryDirectory(dir=sandbox) as scratch, contextlib.chdir(scratch):
        out = Path(scratch) / "out"
        args = data.draw(_arguments(sandbox, out)[command])
        output = Path(args[args.index("--run-dir" if args[0] == "train" else "--output" if args[0] == "eval"
                                      else "-o") + 1] or ".")
        allowed = (output if output.is_absolute() else Path(scratch) / output).resolve()
        before = tree(sandbox)
        result = runner.invoke(app, args)
        after = tree(sandbox)
        assert result.exit_code in (0, 1, 2), (args, result.output)
        assert "Traceback" not in result.output, (args, result.output)
        assert "internal error" not in result.output, (args, result.output)  # a bug, not a user's mistake
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)

        def inside(name: str) -> bool:
            return allowed in (sandbox / name).resolve().parents or (sandbox / name).resolve() == allowed

        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k) and not inside(k)}
        assert not changed, (args, sorted(changed), result.output)
