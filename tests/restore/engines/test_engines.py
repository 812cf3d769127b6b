"""Runtime engines: every exported format restores like Keras, without importing TensorFlow or Keras; auto runs
the measured choice."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import EXPORTS, LIGHT, exported_as, smooth_image
from deblur.core.errors import ConfigError, DeblurError
from deblur.restore.engines import ENGINES, detect, load_engine, needs_keras
from deblur.restore.engines.base import DEFAULT_MULTIPLE
from deblur.restore.exported import sidecar_path


@pytest.mark.parametrize("engine", list(EXPORTS))
def test_every_engine_restores_like_keras(exports, engine: str, rng):
    from deblur.restore.predict import restore_image

    path = exported_as(exports, engine)
    assert detect(path) == engine
    loaded = load_engine(path)
    assert (loaded.name, loaded.channels, loaded.multiple, loaded.fixed_size) == (engine, 3, 2, None)
    keras_engine = load_engine(exports["keras"])
    image = smooth_image(rng, 37, 51)  # odd sizes: padded to the multiple, then tiled below
    for tile in (0, 32):
        ours = restore_image(loaded, image, tile=tile, overlap=8).astype(int)
        theirs = restore_image(keras_engine, image, tile=tile, overlap=8).astype(int)
        assert np.abs(ours - theirs).max() <= 1  # within 1/255
    batch = rng.random((2, 8, 12, 3), dtype=np.float32)
    assert loaded(batch).shape == (2, 8, 12, 3) and loaded(batch).dtype == np.float32


def test_without_a_sidecar_the_runtime_shape_and_a_safe_multiple_are_used(exports, tmp_path: Path):
    path = exported_as(exports, "onnx")
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(path.read_bytes())
    engine = load_engine(bare)
    assert (engine.channels, engine.multiple, engine.fixed_size) == (3, DEFAULT_MULTIPLE, None)


def test_a_missing_runtime_names_the_extra_that_installs_it(exports, monkeypatch):
    path = exported_as(exports, "onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(DeblurError, match=r'pip install "deblur\[onnx\]"'):
        load_engine(path)


@pytest.mark.parametrize("engine", LIGHT)
def test_a_damaged_export_is_one_line_naming_the_file(engine: str, tmp_path: Path):
    """Each runtime raises its own types (OpenVINO: a C++ location first); deblur says it in one line."""
    if importlib.util.find_spec(EXPORTS[engine][2]) is None:
        pytest.skip(f"{EXPORTS[engine][2]} is not installed")
    path = tmp_path / EXPORTS[engine][1]
    path.write_text("<net></net>" if engine == "openvino" else "garbage")
    path.with_suffix(".bin").write_bytes(b"x")
    # the graph check reads the file before the runtime does, and may be the one that says it is damaged
    with pytest.raises(DeblurError, match=path.name + r": (cannot load this model \((?!Exception from)|not an )"):
        load_engine(path)


def test_which_paths_need_keras(exports, tmp_path: Path):
    assert needs_keras(None) and needs_keras(exports["keras"])
    if "onnx" in exports:
        assert not needs_keras(exports["onnx"]) and needs_keras(exports["onnx"], "keras")
    with pytest.raises(ConfigError, match="unknown engine"):
        load_engine(exports["keras"], "tensorrt")
    assert sorted(ENGINES) == ["keras", "litert", "onnx", "openvino", "saved_model"]


def test_auto_runs_the_measured_choice_and_exports_once_into_the_cache(exports, tmp_path: Path, monkeypatch):
    import shutil

    import deblur.restore.export
    from deblur.api import open_engine
    from deblur.restore.engines import store_choice
    from deblur.restore.engines.cache import cached_choice

    onnx = exported_as(exports, "onnx")
    monkeypatch.setenv("DEBLUR_CACHE_DIR", str(tmp_path / "cache"))
    made = []

    def fake_export(checkpoint, fmt, out):  # deblur export's work is tested in tests/e2e/test_export.py
        made.append((Path(checkpoint), fmt))
        shutil.copy(onnx, out)
        shutil.copy(sidecar_path(onnx), sidecar_path(out))

    monkeypatch.setattr(deblur.restore.export, "export_model", fake_export)
    checkpoint = exports["keras"]
    assert open_engine(checkpoint).name == "keras"  # nothing measured: Keras, not an assumed winner
    with pytest.raises(ConfigError, match="unknown engine"):
        store_choice(checkpoint, "fastest")
    store_choice(checkpoint, "onnx", {"tiled_ms_per_mp": 1.0})
    first, again = open_engine(checkpoint), open_engine(checkpoint)
    assert first.name == again.name == "onnx" and made == [(checkpoint, "onnx")]  # exported once
    assert (tmp_path / "cache" / "exports").is_dir() and first.source.is_relative_to(tmp_path / "cache")
    assert open_engine(checkpoint, "keras").name == "keras"  # an explicit engine wins over the measured one
    copy = tmp_path / "other.keras"  # other bytes, another key: never measured
    copy.write_bytes(checkpoint.read_bytes() + b"\0")
    assert cached_choice(copy) is None and cached_choice(checkpoint) == "onnx"


def test_a_static_shape_export_without_fixed_size_is_refused_in_one_line(exports, tmp_path: Path):
    """An ONNX file converted at one size (by another tool; deblur's exporter keeps H and W dynamic) is
    refused, naming its size and how to get one deblur runs."""
    import keras

    if "onnx" not in exports:
        pytest.skip("onnxruntime is not installed")
    model = keras.saving.load_model(exports["keras"], compile=False)
    path = tmp_path / "static.onnx"
    model.export(str(path), format="onnx", input_signature=[keras.InputSpec(shape=(1, 32, 48, 3), dtype="float32")],
                 verbose=False)
    with pytest.raises(DeblurError, match=r"static\.onnx: its input size is fixed at 32x48; deblur runs exports with "
                                          r"dynamic height and width: re-export it with `deblur export`"):
        load_engine(path)


# The runtime and onnx are checked before the converter: without them the error rightly names them.
@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("onnxruntime", "onnx")),
                    reason="onnxruntime or onnx is not installed (the error names it before tf2onnx)")
def test_the_missing_runtime_of_an_engine_names_the_engine_option(exports, tmp_path: Path, monkeypatch):
    """`engine="onnx"` on a .keras file exports it first: a missing converter is said as the argument
    (`deblur predict` spells it --engine: tests/e2e)."""
    import deblur.restore.export
    from deblur.api import open_engine

    monkeypatch.setenv("DEBLUR_CACHE_DIR", str(tmp_path / "cache"))
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tf2onnx" else find_spec(name, *a))
    monkeypatch.setattr(deblur.restore.export, "export_model", lambda *a, **k: pytest.fail("exported"))
    with pytest.raises(DeblurError, match=r"^engine onnx needs the Python package 'tf2onnx'.*deblur\[onnx\]"):
        open_engine(exports["keras"], "onnx")


def test_cached_exports_are_keyed_by_versions_and_stale_temporaries_are_removed(exports, tmp_path: Path,
                                                                                monkeypatch):
    """An upgrade of deblur, Keras or the runtime exports again; a killed export's temporary folder
    (unlocked, over a minute old) is removed by the next export, a live (locked) one is left alone."""
    import shutil
    from importlib import metadata

    import deblur
    import deblur.restore.export
    from deblur.api import cached_export
    from deblur.core.atomic import locked_temp_dir
    from deblur.restore.engines import cache

    onnx = exported_as(exports, "onnx")
    monkeypatch.setenv("DEBLUR_CACHE_DIR", str(tmp_path / "cache"))
    made = []

    def fake_export(checkpoint, fmt, out):
        made.append(out)
        shutil.copy(onnx, out)

    monkeypatch.setattr(deblur.restore.export, "export_model", fake_export)
    checkpoint = exports["keras"]
    shard = cache.cache_dir() / cache.EXPORTS / cache.file_sha256(checkpoint)
    shard.mkdir(parents=True)
    dead, old = shard / ".onnx-k1lled00", time.time() - 7200  # a name mkdtemp makes (prefix + 8 characters)
    dead.mkdir()
    (dead / "model.onnx").write_bytes(b"half")
    os.utime(dead, (old, old))
    with locked_temp_dir(shard, ".onnx-") as live:
        os.utime(live, (old, old))
        first = cached_export(checkpoint, "onnx")
        assert not dead.exists() and live.is_dir()  # the killed one's removed, the live one's kept
    assert cached_export(checkpoint, "onnx") == first and len(made) == 1  # cached
    assert "deblur-" in first.parent.name and "onnxruntime-" in first.parent.name
    real = metadata.version
    monkeypatch.setattr(cache, "version", lambda name: "99.0" if name == "onnxruntime" else real(name))
    upgraded = cached_export(checkpoint, "onnx")
    assert upgraded != first and len(made) == 2 and "onnxruntime-99.0" in upgraded.parent.name
    monkeypatch.setattr(deblur, "__version__", "9.9.9")
    assert cached_export(checkpoint, "onnx") not in (first, upgraded) and len(made) == 3
    assert sorted(p.name for p in shard.iterdir() if p.name.startswith(".")) == []  # no temporaries left


def test_an_export_that_is_a_fifo_is_refused_unread(tmp_path: Path):
    from deblur.restore.engines import detect

    fifo = tmp_path / "m.onnx"
    os.mkfifo(fifo)  # a runtime would block opening it
    with pytest.raises(DeblurError, match="not a regular file"):
        detect(fifo)
