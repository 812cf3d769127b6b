"""Hostile or broken input gives a result or deblur's own error, never a crash or a memory blow-up."""

import contextlib
import math
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from conftest import smooth_image, write_png
from deblur.cli import app
from deblur.config import from_dict, read_yaml
from deblur.core.errors import DataError, DeblurError
from deblur.imaging.imageio import read_image
from deblur.models import MODELS


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header is rewritten to claim a huge size: a decompression bomb's header."""
    ok, buf = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    assert ok
    data = bytearray(buf.tobytes())
    ihdr = data[12:29]  # chunk type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    return bytes(data)


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(50_000, 50_000))
    with pytest.raises(DataError, match="2500 megapixels, over the limit of 100"):
        read_image(bomb)


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


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=2048),
                 st.builds(lambda head, tail: head + tail,
                           st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"BM", b"II*\x00", b"RIFF"]),
                           st.binary(max_size=512))))
def test_arbitrary_bytes_read_as_an_image_or_a_data_error(payload: bytes):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.png"
        path.write_bytes(payload)
        try:
            image = read_image(path)
        except DataError:
            return
        assert image.ndim == 3 and image.shape[2] in (1, 3, 4)


KEYS = ["name", "seed", "data", "model", "train", "source", "path", "options", "degradation", "kind", "sigma",
        "crop", "eval_crop", "batch_size", "epochs", "type", "depth", "loss", "learning_rate", "reduce_lr",
        "factor", "val_split", "channels", "resize", "ksize", "noise", "unknown"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=8), st.sampled_from(["unet", "samples", "gaussian", "mse", "folder"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
                      max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(KEYS), values, max_size=5))
def test_arbitrary_config_mappings_load_or_give_a_config_error(raw):
    try:
        from_dict(raw)
    except DeblurError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_yaml_text_reads_or_gives_a_config_error(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            raw = read_yaml(path)
        except DeblurError:
            return
        assert isinstance(raw, dict)
        with contextlib.suppress(DeblurError):
            from_dict(raw)


def test_yaml_with_python_tags_is_not_executed(tmp_path: Path):
    path = tmp_path / "evil.yaml"
    path.write_text("name: !!python/object/apply:os.system ['echo pwned > /tmp/deblur-yaml-pwned']\n")
    with pytest.raises(DeblurError):
        read_yaml(path)
    assert not Path("/tmp/deblur-yaml-pwned").exists()


# -- guards that must not be bypassed (issue 12) ---------------------------------------------------


def png_chunk(kind: bytes, payload: bytes, good_crc: bool = True) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc if good_crc else crc ^ 1)


def with_bad_text_chunk(png: bytes) -> bytes:
    """One ancillary tEXt chunk with a wrong CRC after IHDR: Pillow gives up on the file, libpng decodes it."""
    return png[:33] + png_chunk(b"tEXt", b"note\x00hello", good_crc=False) + png[33:]


def test_size_check_holds_when_pillow_cannot_parse_the_header(tmp_path: Path, rng):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(with_bad_text_chunk(png_claiming(12_000, 10_000)))  # 120 MP, over the 100 MP default
    with pytest.raises(DataError, match="12000x10000 is 120 megapixels, over the limit of 100"):
        read_image(bomb)
    # the same damage on an honest image: its size is read from IHDR by hand, and it still decodes
    image = smooth_image(rng, 9, 7)
    buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1]
    honest = tmp_path / "honest.png"
    honest.write_bytes(with_bad_text_chunk(buf.tobytes()))
    assert np.array_equal(read_image(honest), image)


def test_an_image_whose_size_cannot_be_read_from_its_header_is_refused_not_decoded(tmp_path: Path):
    ok, buf = cv2.imencode(".pam", np.full((4, 4, 3), 7, np.uint8))  # OpenCV decodes PAM, Pillow cannot read it
    assert ok and cv2.imdecode(buf, cv2.IMREAD_UNCHANGED) is not None
    path = tmp_path / "x.png"
    path.write_bytes(buf.tobytes())
    with pytest.raises(DataError, match="size cannot be read from its header"):
        read_image(path)


def test_a_header_that_understates_the_decoded_size_is_still_refused(tmp_path: Path, rng, monkeypatch):
    path = tmp_path / "a.png"
    write_png(path, smooth_image(rng, 40, 50))
    monkeypatch.setattr("deblur.imaging.imageio.header_size", lambda data: (1, 1))  # a header parser fooled
    with pytest.raises(DataError, match="decodes to 50x40 although its header says 1x1"):
        read_image(path, max_pixels_mp=0.001)


def test_a_float_image_with_nan_pixels_is_refused(tmp_path: Path):
    pixels = np.full((4, 4), 0.5, np.float32)
    pixels[1, 2] = np.nan
    path = tmp_path / "f.tif"
    assert cv2.imwrite(str(path), pixels)
    with pytest.raises(DataError, match="NaN or infinite pixel values"):
        read_image(path)


def test_pixel_limit_must_be_a_finite_positive_number(tmp_path: Path, rng, monkeypatch):
    path = tmp_path / "a.png"
    write_png(path, smooth_image(rng, 8, 8))
    for bad in (math.nan, -1.0, 0.0, math.inf):
        with pytest.raises(DeblurError, match="megapixels above 0") as info:
            read_image(path, max_pixels_mp=bad)
        assert not isinstance(info.value, DataError)  # a setting to fix, not a bad image to skip
    for bad in ("nan", "-5", "inf"):
        monkeypatch.setenv("DEBLUR_MAX_MEGAPIXELS", bad)
        with pytest.raises(DeblurError, match="DEBLUR_MAX_MEGAPIXELS"):
            read_image(path)


def _one_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[-1]


@pytest.fixture
def tiny_checkpoint(tmp_path: Path) -> Path:
    ckpt = tmp_path / "m.keras"
    MODELS.get("unet")(3, depth=1, base_filters=2, residual=True).save(ckpt)
    return ckpt


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
        assert "--max-megapixels" in _one_error(run("o3", "--max-megapixels", bad)), bad
    monkeypatch.setenv("DEBLUR_MAX_MEGAPIXELS", "nan")
    assert "DEBLUR_MAX_MEGAPIXELS" in _one_error(run("o4"))
    assert not (tmp_path / "o3").exists() and not (tmp_path / "o4").exists()


def test_tiles_smaller_than_the_model_needs_are_refused(tmp_path: Path, rng, tiny_checkpoint: Path):
    write_png(tmp_path / "in" / "a.png", smooth_image(rng, 16, 16))
    deep = tmp_path / "deep.keras"
    MODELS.get("unet")(3, depth=6, base_filters=1, residual=True).save(deep)  # needs multiples of 64

    def run(ckpt: Path, *options: str):
        return CliRunner().invoke(app, ["predict", str(tmp_path / "in"), "-c", str(ckpt), "-o", str(tmp_path / "o"),
                                        "--overwrite", *options])

    assert "--tile 1: use 0 (the whole image at once) or at least 32" in _one_error(run(tiny_checkpoint, "--tile", "1",
                                                                                         "--overlap", "0"))
    assert "less than half of --tile 32" in _one_error(run(tiny_checkpoint, "--tile", "32", "--overlap", "16"))
    assert "--overlap -1" in _one_error(run(tiny_checkpoint, "--overlap", "-1"))
    assert "multiples of 64" in _one_error(run(deep, "--tile", "48", "--overlap", "8"))
    assert not (tmp_path / "o").exists()
    for ok in (("--tile", "0"), ("--tile", "32", "--overlap", "8")):
        assert run(tiny_checkpoint, *ok).exit_code == 0


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return path


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
    assert "decompression bomb" in _one_error(result)

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


def billion_laughs(levels: int = 9) -> str:
    lines = ["name: laughs", "data:", "  options:", f"    l0: &l0 [{', '.join(['lol'] * 9)}]"]
    lines += [f"    l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_yaml_aliases_that_expand_without_bound_are_refused(tmp_path: Path):
    import time

    from deblur.config import load, parse_overrides

    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs())
    start = time.perf_counter()
    with pytest.raises(DeblurError, match=r"laughs.yaml: line \d+, column \d+: YAML: refused: its aliases"):
        read_yaml(path)
    assert time.perf_counter() - start < 5
    result = CliRunner().invoke(app, ["train", "-c", str(path), "--run-dir", str(tmp_path / "run")])
    assert "expand to more than 20,000 values" in _one_error(result) and not (tmp_path / "run").exists()

    path.write_text("name: loop\ndata:\n  options: &a {again: *a}\n")
    with pytest.raises(DeblurError, match="refers to the value that contains it"):
        read_yaml(path)
    path.write_text("name: deep\ndata:\n  options: {x: " + "[" * 3000 + "]" * 3000 + "}\n")
    with pytest.raises(DeblurError, match="nested too deeply"):
        read_yaml(path)
    with pytest.raises(DeblurError, match=r"--set data.options: refused: its aliases"):
        parse_overrides(["data.options={a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], b: &b [*a, *a, *a, *a, *a, *a, *a, "
                         "*a, *a, *a], c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b], d: &d [*c, *c, *c, *c, *c, "
                         "*c, *c, *c, *c, *c], e: [*d, *d, *d]}"])
    path.write_text(bytes(2 << 20).decode() + "\n")
    with pytest.raises(DeblurError, match="is not a config"):
        read_yaml(path)
    # aliases used as people use them still work
    path.write_text("name: ok\ndata:\n  degradation: [&g {kind: gaussian, sigma: 1}, *g]\n")
    specs = load(path).data.degradation
    assert len(specs) == 2 and all(d["kind"] == "gaussian" and d["sigma"] == 1 for d in specs)
