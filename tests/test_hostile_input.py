"""Hostile or broken input gives a result or deblur's own error, never a crash or a memory blow-up."""

import contextlib
import struct
import tempfile
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
from deblur.errors import DataError, DeblurError
from deblur.imageio import read_image
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
