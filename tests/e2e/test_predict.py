"""`deblur predict`: checkpoints and the built-in network, photos kept photos (format, EXIF, ICC), hostile
inputs, exports that do not match their sidecar, and failures costing one file only."""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, JpegImagePlugin
from typer.testing import CliRunner

from conftest import (
    cli_error,
    hostile_saved_model,
    invoke,
    png_claiming,
    quiet_error,
    save_photo,
    smooth_image,
    write_png,
)
from deblur.cli import app
from deblur.core.errors import DataError, DeblurError
from deblur.imaging.imageio import encode_image, read_image
from deblur.imaging.imagemeta import MAX_EXIF_BYTES, Metadata, read_metadata
from deblur.models import MODELS
from deblur.restore.exported import sidecar_path
from deblur.training.train import MARKER, prepare_run_dir


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    ckpt = tmp_path / "m.keras"
    MODELS.get("unet")(3, depth=1, base_filters=2, residual=True).save(ckpt)
    return ckpt


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return path


@pytest.fixture
def odd_image(tmp_path: Path, rng: np.random.Generator) -> Path:
    path = tmp_path / "odd" / "a.png"
    write_png(path, smooth_image(rng, 43, 45))
    return path


def _export_saved_model(keras_file: Path, out: Path) -> Path:
    result = invoke("export", keras_file, "-f", "saved_model", "-o", out)
    assert result.exit_code == 0, result.output
    return out


def _edit_sidecar(export: Path, **changes: object) -> None:

    path = sidecar_path(export)
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


@pytest.fixture
def long_named(tmp_path: Path, rng: np.random.Generator) -> Path:
    """Three images, the middle one named so long that its output's temporary name is too long."""
    folder = tmp_path / "in"
    for name in ("a", "m" * 245, "z"):
        write_png(folder / f"{name}.png", smooth_image(rng, 32, 32))
    return folder


DATE = "2021:05:01 10:00:00"
GPS = {1: "N", 2: (52.0, 22.0, 1.5), 3: "E", 4: (13.0, 24.0, 0.25)}
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
DATE_TAG, EXIF_IFD, GPS_IFD, ORIENTATION = 0x9003, 0x8769, 0x8825, 0x0112

def camera_exif(orientation: int = 6) -> bytes:
    """EXIF as a phone writes it: orientation, the date taken (Exif IFD) and a location (GPS IFD)."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "deblur-test-camera"  # Make
    exif.get_ifd(EXIF_IFD)[DATE_TAG] = DATE
    exif.get_ifd(GPS_IFD).update(GPS)
    return exif.tobytes()


def with_app1(jpeg: bytes, payload: bytes) -> bytes:
    """A JPEG with one more APP1 segment right after SOI (for blocks Pillow would not write)."""
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def png_with_chunk(png: bytes, tag: bytes, payload: bytes) -> bytes:
    chunk = struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))
    return png[:33] + chunk + png[33:]  # right after IHDR


def notes_of(result) -> str:
    return "\n".join(line for line in result.output.splitlines() if line.startswith("note: "))


@pytest.fixture
def sideways_photo(tmp_path: Path, rng) -> Path:
    """A 30 (wide) x 20 JPEG stored sideways (Orientation 6), with date, GPS and an sRGB profile."""
    return save_photo(tmp_path / "in" / "photo.jpg", smooth_image(rng, 20, 30), quality=90, exif=camera_exif(6),
                      icc_profile=SRGB)


def check_photo(path: Path, size: tuple[int, int]) -> None:
    """`path` is a 4:4:4 JPEG of `size` (as viewers show it) with the camera's EXIF, upright, and sRGB."""
    with Image.open(path) as im:
        assert im.format == "JPEG" and im.size == size
        assert JpegImagePlugin.get_sampling(im) == 0  # 4:4:4: no chroma subsampling
        exif = im.getexif()
        assert exif[ORIENTATION] == 1  # the pixels are upright: a kept 6 would make viewers turn them again
        assert exif[0x010F] == "deblur-test-camera"
        assert exif.get_ifd(EXIF_IFD)[DATE_TAG] == DATE
        assert exif.get_ifd(GPS_IFD) == GPS
        assert im.info["icc_profile"] == SRGB
        quant = im.quantization
    buf = io.BytesIO()  # quality 95: the quantisation tables Pillow writes for 95
    Image.new("RGB", (8, 8)).save(buf, "JPEG", quality=95, subsampling=0)
    assert Image.open(buf).quantization == quant


def test_predict_skips_unreadable_images_and_says_so(tmp_path: Path, rng):
    import keras

    from deblur.models import MODELS

    model = MODELS.get("unet")(3, depth=1, base_filters=2, residual=True)
    ckpt = tmp_path / "m.keras"
    model.save(ckpt)
    inputs = tmp_path / "in"
    write_png(inputs / "ok.png", smooth_image(rng, 12, 12))
    (inputs / "zero.jpg").write_bytes(b"")
    (inputs / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    result = invoke("predict", inputs, "-c", ckpt, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "restored 1 image(s)" in result.output and "2 failed" in result.output
    assert "zero.jpg" in result.output and "junk.png" in result.output
    assert (tmp_path / "out" / "ok.png").is_file()
    del keras


def test_fixed_size_models_say_they_resize(tmp_path: Path, rng):
    from deblur.models import MODELS

    ckpt = tmp_path / "dense.keras"
    MODELS.get("dense_ae")(3, input_size=[16, 16], filters=[4], latent_dim=4).save(ckpt)
    write_png(tmp_path / "in" / "wide.png", smooth_image(rng, 20, 64))
    result = invoke("predict", tmp_path / "in", "-c", ckpt, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert "only takes 16x16 images: 64x20 is resized" in result.output and "x0.25 wide" in result.output
    assert cv2.imread(str(tmp_path / "out" / "wide.png")).shape == (20, 64, 3)


def test_checkpoint_that_is_not_a_model(tmp_path: Path, rng):
    fake = tmp_path / "fake.keras"
    fake.write_text("hello")
    write_png(tmp_path / "a.png", smooth_image(rng, 8, 8))
    line = cli_error(invoke("predict", tmp_path / "a.png", "-c", fake, "-o", tmp_path / "o"))
    assert "not a Keras .keras checkpoint" in line


def test_checkpoints_with_code_or_of_the_wrong_kind_are_refused(tmp_path: Path, rng):
    import keras

    inp = keras.Input((None, None, 3))
    keras.Model(inp, keras.layers.Lambda(lambda x: x * 2)(inp)).save(tmp_path / "lambda.keras")
    vec = keras.Input((10,))
    keras.Model(vec, keras.layers.Dense(2)(vec)).save(tmp_path / "classifier.keras")
    (tmp_path / "corrupt.keras").write_bytes((tmp_path / "classifier.keras").read_bytes()[:300])
    write_png(tmp_path / "a.png", smooth_image(rng, 16, 16))
    for name, expected in (("lambda", "Lambda layer"), ("classifier", "not an image restoration model"),
                           ("corrupt", "not a Keras .keras checkpoint")):
        line = cli_error(invoke("predict", tmp_path / "a.png", "-c", tmp_path / f"{name}.keras",
                                      "-o", tmp_path / "o"))
        assert expected in line, line


def test_predict_with_the_builtin_network_name(tmp_path: Path, rng, monkeypatch):
    image = smooth_image(rng, 40, 56)
    write_png(tmp_path / "in.png", image)
    monkeypatch.chdir(tmp_path)
    result = invoke("predict", tmp_path / "in.png", "--checkpoint", "builtin-network")
    assert result.exit_code == 0, result.output
    restored = cv2.imread(str(tmp_path / "restored" / "in.png"))
    assert restored is not None and restored.shape == image.shape

    import deblur.pretrained

    monkeypatch.setattr(deblur.pretrained, "DEFAULT_NAME", "missing.keras")
    line = cli_error(invoke("predict", tmp_path / "in.png", "-c", "builtin-network", "--output",
                                  tmp_path / "other"))
    assert "no built-in model" in line and "--checkpoint" in line


def test_a_pipe_or_device_named_like_an_image_is_refused_without_reading(tmp_path: Path, model_file: Path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # reading it would block for ever
    with pytest.raises(DataError, match="not a regular file"):
        read_image(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        read_image("/dev/zero")
    result = invoke("predict", fifo, "-c", model_file, "-o", tmp_path / "out")
    assert result.exit_code == 1 and "not a regular file" in result.output, result.output


def test_recursive_predict_into_a_subfolder_never_reads_its_own_outputs(tmp_path: Path, two_images: Path,
                                                                       model_file: Path):
    out = two_images / "restored"
    assert invoke("predict", two_images, "-r", "-c", model_file, "-o", out).exit_code == 0
    again = invoke("predict", two_images, "-r", "-c", model_file, "-o", out, "--overwrite")
    assert again.exit_code == 0 and "restored 2 image(s)" in again.output, again.output
    assert sorted(p.name for p in out.iterdir()) == ["img0.png", "img1.png"]
    skip = invoke("predict", two_images, "-r", "-c", model_file, "-o", out, "--skip-existing")
    assert skip.exit_code == 0 and "2 already there" in skip.output, skip.output


def test_a_broken_link_at_an_output_name_is_kept_unless_overwrite(tmp_path: Path, two_images: Path, model_file: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "img0.png").symlink_to(tmp_path / "nowhere" / "x.png")
    assert "broken symbolic link" in quiet_error(invoke("predict", two_images, "-c", model_file, "-o", out))
    assert (out / "img0.png").is_symlink()
    assert invoke("predict", two_images, "-c", model_file, "-o", out, "--overwrite").exit_code == 0
    assert not (out / "img0.png").is_symlink() and not (tmp_path / "nowhere").exists()


def test_an_unusable_keras_backend_is_one_line(tmp_path: Path):
    env = {**os.environ, "KERAS_BACKEND": "nosuchbackend"}
    # a network needs Keras (the built-in restorer does not, and would only miss the file)
    result = subprocess.run([sys.executable, "-m", "deblur", "predict", str(tmp_path / "x.png"), "--checkpoint",
                             "builtin-network"], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: KERAS_BACKEND=nosuchbackend"), result.stderr


@pytest.mark.parametrize("layer", ["strided", "valid"])
def test_a_model_whose_output_is_another_size_is_refused_not_cropped(tmp_path: Path, two_images: Path, layer: str):
    import keras

    x = keras.Input((None, None, 3))
    y = (keras.layers.Conv2D(3, 3, strides=2, padding="same") if layer == "strided"
         else keras.layers.Conv2D(3, 3, padding="valid"))(x)
    path = tmp_path / "odd.keras"
    keras.Model(x, y).save(path)
    assert "output has its input's size" in quiet_error(invoke("predict", two_images, "-c", path, "-o", tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_pixel_limit_is_configurable_and_predict_skips_with_the_reason(tmp_path: Path, rng, monkeypatch):
    write_png(tmp_path / "in" / "ok.png", smooth_image(rng, 16, 16))
    (tmp_path / "in" / "bomb.png").write_bytes(png_claiming(50_000, 50_000))
    ckpt = tmp_path / "m.keras"
    MODELS.get("unet")(3, depth=1, base_filters=2, residual=True).save(ckpt)
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "in"), "-c", str(ckpt), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "over the limit of 100" in result.output and "1 failed" in result.output
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "in" / "ok.png"), "-c", str(ckpt),
                                      "-o", str(tmp_path / "o2"), "--max-megapixels", "0.0001"])
    assert result.exit_code == 1 and "over the limit of 0.0001" in result.output
    monkeypatch.setenv("DEBLUR_MAX_MEGAPIXELS", "0.0001")
    with pytest.raises(DataError, match="DEBLUR_MAX_MEGAPIXELS"):
        read_image(tmp_path / "in" / "ok.png")


def test_predict_takes_the_pixel_limit_from_the_environment_unless_the_option_is_given(
        tmp_path: Path, rng, monkeypatch, tiny_checkpoint: Path):
    write_png(tmp_path / "in" / "a.png", smooth_image(rng, 16, 16))
    def run(out: str, *options: str):
        return CliRunner().invoke(app, ["predict", str(tmp_path / "in"), "-c", str(tiny_checkpoint),
                                        "-o", str(tmp_path / out), *options])

    monkeypatch.setenv("DEBLUR_MAX_MEGAPIXELS", "0.0001")
    result = run("o")
    assert result.exit_code == 1 and "over the limit of 0.0001" in result.output, result.output
    result = run("o2", "--max-megapixels", "1")  # the option, when given, wins over the environment
    assert result.exit_code == 0 and (tmp_path / "o2" / "a.png").is_file(), result.output
    for bad in ("nan", "-1", "0", "inf"):
        assert "--max-megapixels" in cli_error(run("o3", "--max-megapixels", bad)), bad
    monkeypatch.setenv("DEBLUR_MAX_MEGAPIXELS", "nan")
    assert "DEBLUR_MAX_MEGAPIXELS" in cli_error(run("o4"))
    assert not (tmp_path / "o3").exists() and not (tmp_path / "o4").exists()


def test_tiles_smaller_than_the_model_needs_are_refused(tmp_path: Path, rng, tiny_checkpoint: Path):
    write_png(tmp_path / "in" / "a.png", smooth_image(rng, 16, 16))
    deep = tmp_path / "deep.keras"
    MODELS.get("unet")(3, depth=6, base_filters=1, residual=True).save(deep)  # needs multiples of 64

    def run(ckpt: Path, *options: str):
        return CliRunner().invoke(app, ["predict", str(tmp_path / "in"), "-c", str(ckpt), "-o", str(tmp_path / "o"),
                                        "--overwrite", *options])

    assert "--tile 1: use 0 (the whole image at once) or at least 32" in cli_error(run(tiny_checkpoint, "--tile", "1",
                                                                                         "--overlap", "0"))
    assert "less than half of --tile 32" in cli_error(run(tiny_checkpoint, "--tile", "32", "--overlap", "16"))
    assert "--overlap -1" in cli_error(run(tiny_checkpoint, "--overlap", "-1"))
    assert "multiples of 64" in cli_error(run(deep, "--tile", "48", "--overlap", "8"))
    assert not (tmp_path / "o").exists()
    for ok in (("--tile", "0"), ("--tile", "32", "--overlap", "8")):
        assert run(tiny_checkpoint, *ok).exit_code == 0


def test_checkpoint_zip_bombs_are_refused_from_the_directory_before_anything_is_inflated(tmp_path: Path,
                                                                                       monkeypatch):
    from deblur.pretrained import default_checkpoint
    from deblur.restore.checkpoints import check_archive
    from deblur.restore.loading import load_model

    config = b'{"class_name": "Functional", "config": {}}'
    bomb = _zip(tmp_path / "bomb.keras", {"metadata.json": b"{}", "config.json": config,
                                          "model.weights.h5": bytes(16 << 20)})  # 16 MiB of zeros in ~16 KB
    assert bomb.stat().st_size < 100_000
    with pytest.raises(DeblurError, match=r"model.weights.h5 would inflate from .* to 16,777,216 bytes"):
        load_model(bomb)
    result = CliRunner().invoke(app, ["predict", str(bomb), "-c", str(bomb), "-o", str(tmp_path / "o")])
    assert "decompression bomb" in cli_error(result)

    many = _zip(tmp_path / "many.keras", {f"assets/{i}": b"x" for i in range(300)})
    with pytest.raises(DeblurError, match="holds 300 files"):
        check_archive(many)
    escape = _zip(tmp_path / "escape.keras", {"config.json": config, "../../evil": b"x"})
    with pytest.raises(DeblurError, match="points outside the archive"):
        check_archive(escape)
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04" + bytes(40))
    with pytest.raises(DeblurError, match="not a readable Keras"):
        check_archive(broken)

    check_archive(default_checkpoint())  # the built-in model (4.2 MiB, stored) passes
    monkeypatch.setattr("deblur.restore.checkpoints.MAX_CHECKPOINT_BYTES", 1 << 20)
    with pytest.raises(DeblurError, match="inflate to 4 MiB, over the limit of 1 MiB"):
        check_archive(default_checkpoint())


def test_a_saved_model_that_writes_a_file_is_refused_before_it_runs(tmp_path: Path, image: Path):
    target = tmp_path / "outside.txt"
    model = hostile_saved_model(tmp_path / "sm", "write", target)
    line = cli_error(invoke("predict", image, "-c", model, "-o", tmp_path / "out"))
    assert "WriteFile" in line and "--trust-model" in line
    assert not target.exists()  # was written, rc 0
    # the user may vouch for a model: then it runs (and writes, as it was made to)
    result = invoke("predict", image, "-c", model, "-o", tmp_path / "out2", "--trust-model")
    assert result.exit_code == 0, result.output
    assert target.read_text() == "pwned"


def test_a_sidecar_with_the_wrong_multiple_is_one_line(model_file: Path, tmp_path: Path, odd_image: Path):
    export = _export_saved_model(model_file, tmp_path / "sm")
    _edit_sidecar(export, multiple=1)  # the model pools once: 45x43 cannot go through it
    line = cli_error(invoke("predict", odd_image, "-c", export, "-o", tmp_path / "out"))
    assert "the model failed on a 1x43x45x3 input" in line and "multiple of 1" in line  # was: internal error


def test_a_deep_model_exported_without_its_sidecar_is_one_line(tmp_path: Path, odd_image: Path):
    from deblur.models import MODELS

    keras_file = tmp_path / "deep.keras"
    MODELS.get("unet")(3, depth=5, base_filters=2).save(keras_file)  # needs a multiple of 32
    export = _export_saved_model(keras_file, tmp_path / "sm")
    sidecar_path(export).unlink()
    line = cli_error(invoke("predict", odd_image, "-c", export, "-o", tmp_path / "out"))
    assert "the model failed on a 1x48x48x3 input" in line and "deblur export" in line


@pytest.mark.parametrize(("changes", "said"), [({"fixed_size": [1, 1]}, "only 1x1 images"),
                                               ({"multiple": 10**9}, "size multiple of 1,000,000,000")])
def test_a_sidecar_that_contradicts_the_model_is_refused_at_load(model_file: Path, tmp_path: Path, odd_image: Path,
                                                                 changes: dict, said: str):
    export = _export_saved_model(model_file, tmp_path / "sm")
    _edit_sidecar(export, **changes)
    line = cli_error(invoke("predict", odd_image, "-c", export, "-o", tmp_path / "out"))
    assert said in line


@pytest.mark.parametrize("command", ["predict", "blur"])
def test_a_name_too_long_to_write_costs_that_file_only(model_file: Path, long_named: Path, tmp_path: Path,
                                                        command: str):
    out = tmp_path / "out"
    extra = ("-c", model_file) if command == "predict" else ()
    result = invoke(command, long_named, "-o", out, *extra)
    assert result.exit_code == 1, result.output  # was: exit 2, z.png never written
    assert "Traceback" not in result.output and "File name too long" in result.output
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["a.png", "z.png"]
    assert "2 image(s)" in result.output and "1 failed" in result.output


def test_out_of_memory_on_one_image_costs_that_image_only(model_file: Path, long_named: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch):
    from deblur.restore import predict

    (long_named / f"{'m' * 245}.png").unlink()
    original = predict.restore_image

    def restore(engine: object, image: np.ndarray, *args: object) -> np.ndarray:
        if restore.calls == 0:  # the first image is too large for this machine
            restore.calls += 1
            raise MemoryError("Unable to allocate 64.0 GiB")
        return original(engine, image, *args)

    restore.calls = 0
    monkeypatch.setattr(predict, "restore_image", restore)
    out = tmp_path / "out"
    result = invoke("predict", long_named, "-o", out, "-c", model_file)
    assert result.exit_code == 1, result.output  # was: out of memory, the batch stopped at its first image
    assert "out of memory restoring this 32x32 image" in result.output
    assert (out / "z.png").is_file() and not (out / "a.png").exists()


def test_predict_with_a_nan_model_writes_nothing_and_exits_1(tmp_path: Path, rng, nan_checkpoint: Path):
    for name in ("a", "b"):
        write_png(tmp_path / "in" / f"{name}.png", smooth_image(rng, 20, 24))
    out = tmp_path / "out"
    result = invoke("predict", tmp_path / "in", "-c", nan_checkpoint, "-o", out, "--side-by-side")
    assert result.exit_code == 1, result.output
    assert "2 failed" in result.output and "NaN or infinite" in result.output
    assert "a.png" in result.output and "b.png" in result.output
    assert not out.exists() or not any(out.iterdir())  # never an all-black image


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
    assert "contradict" in cli_error(invoke("predict", images, "-c", model_file, "-o", out, "--skip-existing",
                                            "--overwrite"))
    result = invoke("blur", images, "-o", out / "b", "--skip-existing")
    assert result.exit_code == 0 and "blurred 3 image(s)" in result.output
    result = invoke("blur", images, "-o", out / "b", "--skip-existing")
    assert result.exit_code == 0 and "blurred 0 image(s)" in result.output and "3 already there" in result.output


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
        assert words in cli_error(result, status)
    assert not (tmp_path / "o").exists()


def test_an_animated_gif_says_only_its_first_frame_is_restored(tmp_path: Path, model_file: Path):
    frames = [Image.fromarray(np.full((10, 12, 3), 40 * i, np.uint8)) for i in range(3)]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:])
    result = invoke("predict", gif, "-c", model_file, "-o", tmp_path / "o")
    assert result.exit_code == 0, result.output
    assert "anim.gif: has 3 frames" in result.output and "only the first" in result.output


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


def test_a_jpeg_gives_a_jpeg_with_its_exif_gps_and_icc_and_orientation_1(tmp_path: Path, sideways_photo: Path,
                                                                         model_file: Path):
    out = tmp_path / "out"
    result = invoke("predict", sideways_photo, "-c", model_file, "-o", out, "--side-by-side")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["photo.jpg", "photo_side_by_side.jpg"]
    check_photo(out / "photo.jpg", (20, 30))  # stored 30 x 20, shown (and written) 20 wide, 30 high
    with Image.open(out / "photo_side_by_side.jpg") as im:
        assert im.format == "JPEG" and im.getexif()[ORIENTATION] == 1 and im.info["icc_profile"] == SRGB
    # read back by deblur itself (which applies orientation): the same shape as the input, not turned twice
    assert read_image(out / "photo.jpg").shape == read_image(sideways_photo).shape == (30, 20, 3)
    assert notes_of(result).count("note:") <= 1  # only the engine's; nothing about the metadata

    blurred = tmp_path / "blurred"
    result = invoke("blur", sideways_photo, "--sample", "chelsea", "-o", blurred)
    assert result.exit_code == 0, result.output
    check_photo(blurred / "photo.jpg", (20, 30))
    assert (blurred / "chelsea.png").exists()  # a built-in sample is no JPEG file: PNG, as before


def test_a_png_stays_a_png(tmp_path: Path, model_file: Path, rng):
    image = smooth_image(rng, 14, 18)
    write_png(tmp_path / "in" / "a.png", image)
    result = invoke("predict", tmp_path / "in", "-c", model_file, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]
    with Image.open(tmp_path / "out" / "a.png") as im:
        assert im.format == "PNG" and im.size == (18, 14) and "icc_profile" not in im.info and not im.getexif()


def test_format_png_keeps_the_metadata_in_the_png(tmp_path: Path, sideways_photo: Path, model_file: Path):
    out = tmp_path / "out"
    result = invoke("predict", sideways_photo, "-c", model_file, "-o", out, "--format", "png")
    assert result.exit_code == 0, result.output
    assert [p.name for p in out.iterdir()] == ["photo.png"]
    with Image.open(out / "photo.png") as im:
        assert im.format == "PNG" and im.size == (20, 30) and im.info["icc_profile"] == SRGB
        exif = im.getexif()
        assert exif[ORIENTATION] == 1 and exif.get_ifd(EXIF_IFD)[DATE_TAG] == DATE and exif.get_ifd(GPS_IFD) == GPS
    assert read_image(out / "photo.png").shape == (30, 20, 3)  # deblur reads a PNG's eXIf too: not turned twice


def test_sixteen_bits_and_alpha_are_never_jpeg(tmp_path: Path, model_file: Path, rng):
    base = smooth_image(rng, 12, 16)
    write_png(tmp_path / "in" / "deep.png", base.astype(np.uint16) * 257)
    write_png(tmp_path / "in" / "alpha.png", np.dstack([base, np.full(base.shape[:2], 90, np.uint8)]))
    write_png(tmp_path / "in" / "plain.png", base)
    save_photo(tmp_path / "in" / "web.webp", np.dstack([base, np.full(base.shape[:2], 90, np.uint8)]), lossless=True)
    out = tmp_path / "out"
    result = invoke("predict", tmp_path / "in", "-c", model_file, "-o", out, "--format", "jpeg")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["alpha.png", "deep.png", "plain.jpg", "web.png"]
    for name in ("deep.png", "alpha.png", "web.webp"):
        assert f"note: {name}: written as PNG, not JPEG" in result.output
    assert read_image(out / "deep.png").dtype == np.uint16
    assert read_image(out / "alpha.png").shape == (12, 16, 4)
    with Image.open(out / "plain.jpg") as im:
        assert im.format == "JPEG"


def test_strip_metadata(tmp_path: Path, sideways_photo: Path, model_file: Path):
    out = tmp_path / "out"
    result = invoke("predict", sideways_photo, "-c", model_file, "-o", out, "--strip-metadata")
    assert result.exit_code == 0, result.output
    with Image.open(out / "photo.jpg") as im:
        assert im.size == (20, 30) and not im.getexif() and "icc_profile" not in im.info
    result = invoke("blur", sideways_photo, "-o", tmp_path / "b", "--strip-metadata", "--format", "png")
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "b" / "photo.png") as im:
        assert not im.getexif() and "icc_profile" not in im.info


def test_damaged_or_oversized_metadata_is_dropped_with_a_note(tmp_path: Path, model_file: Path, rng):
    image = smooth_image(rng, 12, 16)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=90)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "garbage.jpg").write_bytes(with_app1(buf.getvalue(), b"Exif\x00\x00" + b"\xde\xad" * 40))
    truncated = camera_exif(6)[6:][:30]  # a directory that runs past the end of its block
    (folder / "truncated.jpg").write_bytes(with_app1(buf.getvalue(), b"Exif\x00\x00" + truncated))
    bad_icc = bytearray(SRGB)
    bad_icc[36:40] = b"nope"
    save_photo(folder / "badicc.jpg", image, icc_profile=bytes(bad_icc))
    png = io.BytesIO()
    Image.fromarray(image).save(png, "PNG")
    huge_exif = b"MM\x00*\x00\x00\x00\x08" + b"\x00" * (MAX_EXIF_BYTES + 10)
    (folder / "huge.png").write_bytes(png_with_chunk(png.getvalue(), b"eXIf", huge_exif))
    bomb = zlib.compress(b"\x00" * (64 << 20), 9)  # 64 MiB of zeros in a small chunk
    (folder / "bomb.png").write_bytes(png_with_chunk(png.getvalue(), b"iCCP", b"icc\x00\x00" + bomb))
    out = tmp_path / "out"
    result = invoke("predict", folder, "-c", model_file, "-o", out)
    assert result.exit_code == 0, result.output
    assert "restored 5 image(s)" in result.output and "Traceback" not in result.output
    for name, what in (("garbage.jpg", "EXIF block"), ("truncated.jpg", "EXIF block"), ("badicc.jpg", "ICC profile"),
                       ("huge.png", "EXIF block"), ("bomb.png", "ICC profile")):
        assert f"note: {name}: its {what} is dropped" in result.output, name
    for name in ("garbage.jpg", "truncated.jpg", "badicc.jpg", "huge.png", "bomb.png"):
        with Image.open(out / name) as im:
            assert not im.getexif() and "icc_profile" not in im.info, name


def test_a_profile_of_another_colour_space_is_left_out(tmp_path: Path, model_file: Path, rng):
    """A CMYK JPEG decodes to RGB: its CMYK profile would misdescribe every colour of the output."""
    cmyk = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cmyk = cmyk[:16] + b"CMYK" + cmyk[20:]
    image = smooth_image(rng, 8, 8)
    for suffix in (".jpg", ".png"):
        with Image.open(io.BytesIO(encode_image(image, suffix, Metadata(None, cmyk)))) as im:
            assert "icc_profile" not in im.info
        with Image.open(io.BytesIO(encode_image(image[:, :, :1], suffix, Metadata(None, SRGB)))) as im:
            assert "icc_profile" not in im.info  # an RGB profile on a gray image
    path = save_photo(tmp_path / "g.jpg", image, icc_profile=SRGB)
    assert read_metadata(path).icc == SRGB
    save_photo(tmp_path / "in" / "print.jpg", image, icc_profile=cmyk, exif=camera_exif(1))  # CMYK profile, RGB
    Image.fromarray(image).convert("CMYK").save(tmp_path / "in" / "cmyk.jpg", icc_profile=cmyk)
    result = invoke("predict", tmp_path / "in", "-c", model_file, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    for name in ("print.jpg", "cmyk.jpg"):
        assert f"note: {name}: its ICC profile is dropped (a CMYK profile" in result.output
        with Image.open(tmp_path / "out" / name) as im:
            assert im.mode == "RGB" and "icc_profile" not in im.info
    with Image.open(tmp_path / "out" / "print.jpg") as im:
        assert im.getexif().get_ifd(EXIF_IFD)[DATE_TAG] == DATE  # the EXIF is still kept
