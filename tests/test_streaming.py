"""Streaming sources (issue 14): images read from disk on demand, bad files skipped mid-run.

File sources return `ImageStore`s; nothing decodes the dataset at start-up, both input pipelines cut
their crops from files as they go and give the same batches as the same images held in memory, test
sets stay bit-identical, and a file that breaks after start-up costs one image, never the run.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import shutil
import weakref
from pathlib import Path

import cv2
import numpy as np
import pytest

import deblur.data.store as store_module
from conftest import shared, smooth_image, write_png
from deblur.config import from_dict
from deblur.data.base import ImageSet, load_splits
from deblur.data.evalset import EvalSet
from deblur.data.headers import probe
from deblur.data.skips import SKIPS
from deblur.data.store import FileStore, ImageStore
from deblur.imaging.imageio import read_image


@pytest.fixture
def count_decodes(monkeypatch):
    """How many images FileStore decodes (it is the only reader of file sources)."""
    calls: list[Path] = []

    def counting(path, *args, **kwargs):
        calls.append(Path(path))
        return read_image(path, *args, **kwargs)

    monkeypatch.setattr(store_module, "read_image", counting)
    return calls


def _cfg(source: str, path: Path, **data):
    base = {"source": source, "path": str(path), "crop": 16, "eval_crop": 16, "batch_size": 4,
            "eval_batch_size": 3, "val_split": 0.2, "test_split": 0.2,
            "degradation": {"kind": "gaussian", "sigma": [0.5, 2.0]}}
    return from_dict({"data": {**base, **data}})


def _pairs_folder(root: Path, rng: np.random.Generator, gopro: bool) -> Path:
    """blur/ + sharp/ (flat) or GoPro's train|test/<sequence>/blur|sharp, of small PNG pairs."""
    layout = [("train/seqA", 3), ("train/seqB", 3), ("train/seqC", 2), ("test/seqD", 2)] if gopro else [("", 8)]
    for folder, n in layout:
        for k in range(n):
            sharp = smooth_image(rng, 36, 40)
            write_png(root / folder / "sharp" / f"{k:03d}.png", sharp)
            write_png(root / folder / "blur" / f"{k:03d}.png", cv2.GaussianBlur(sharp, (5, 5), 0))
    return root


def _digest(batches) -> str:
    h = hashlib.sha256()
    for batch in batches:
        for part in (batch.values() if isinstance(batch, dict) else batch):
            h.update(np.ascontiguousarray(np.asarray(part)).tobytes())
    return h.hexdigest()


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:60])


# ---- start-up reads headers only -----------------------------------------------------------------

@pytest.mark.parametrize("source", ["folder", "pairs", "pairs_gopro", "kaggle_blur"])
def test_startup_decodes_nothing_and_sources_stream(source, tmp_path, rng, photo_folder, kaggle_folder,
                                                    count_decodes):
    path = {"folder": photo_folder, "kaggle_blur": kaggle_folder,
            "pairs": tmp_path / "flat", "pairs_gopro": tmp_path / "gopro"}[source]
    if source.startswith("pairs"):
        _pairs_folder(path, rng, gopro=source == "pairs_gopro")
    cfg = _cfg(source.removesuffix("_gopro"), path)
    splits = load_splits(cfg.data, cfg.seed)
    assert count_decodes == []  # listing, splitting and size checks read headers only
    assert isinstance(splits.train.sharp, ImageStore)
    assert splits.paired == (source != "folder") and (splits.train.blurred is not None) == splits.paired
    EvalSet(splits.test, cfg.data, cfg.seed, "test", splits.paired)  # plans tiles from headers too
    assert count_decodes == []
    image = splits.train.sharp[0]
    assert image.dtype == np.uint8 and image.shape == splits.train.sharp.shape(0)
    assert len(count_decodes) == 1


def test_headers_give_the_decoded_shape(tmp_path, rng):
    """Gray, gray + alpha, RGBA, 16-bit, and EXIF-rotated JPEGs: the header's answer is what is decoded."""
    from PIL import Image

    files = {
        "gray.png": smooth_image(rng, 20, 30, 1)[:, :, 0],
        "gray16.png": (smooth_image(rng, 20, 30, 1)[:, :, 0].astype(np.uint16) * 257),
        "rgba.png": np.dstack([smooth_image(rng, 20, 30), np.full((20, 30), 200, np.uint8)]),
    }
    for name, im in files.items():
        assert cv2.imwrite(str(tmp_path / name), im)
    Image.fromarray(smooth_image(rng, 20, 30, 1)[:, :, 0]).convert("LA").save(tmp_path / "la.png")
    Image.fromarray(smooth_image(rng, 20, 30, 1)[:, :, 0]).save(tmp_path / "gray.jpg")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate a quarter turn: 30x20 as stored, 20x30 as shown
    Image.fromarray(smooth_image(rng, 20, 30)).save(tmp_path / "rotated.jpg", exif=exif)
    exif[0x0112] = 8
    png = cv2.imencode(".png", smooth_image(rng, 20, 30))[1].tobytes()
    for where, at in (("early", 33), ("late", len(png) - 12)):  # after IHDR; just before IEND (after the pixels)
        (tmp_path / f"exif_{where}.png").write_bytes(png[:at] + _chunk(b"eXIf", exif.tobytes()[6:]) + png[at:])
    paths = sorted(tmp_path.iterdir())
    store = FileStore(paths)
    for i, path in enumerate(paths):
        assert probe(path) == store[i].shape, path.name
    for name in ("rotated.jpg", "exif_early.png", "exif_late.png"):
        assert store.shape(paths.index(tmp_path / name)) == (30, 20, 3), name


def _chunk(tag: bytes, payload: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def test_a_store_keeps_no_decoded_image(tmp_path, rng):
    paths = []
    for i in range(12):
        paths.append(tmp_path / f"{i}.png")
        write_png(paths[-1], smooth_image(rng, 24, 24))
    store = FileStore(paths)
    refs = []
    for image in store:
        refs.append(weakref.ref(image))
        del image
    gc.collect()
    assert sum(r() is not None for r in refs) == 0  # nothing holds the dataset: memory is flat in N
    sub = store.subset([3, 5]).map(lambda im: im[:10], lambda s: (10, s[1], s[2]))
    assert len(sub) == 2 and sub.shape(1) == (10, 24, 3) and sub.label(0).endswith("3.png")
    np.testing.assert_array_equal(sub[1], read_image(paths[5])[:10])


# ---- both pipelines stream, with the batches of the same images held in memory --------------------

def _both(path: Path, **data):
    cfg = _cfg("folder", path, **data)
    streamed = load_splits(cfg.data, cfg.seed)
    held = load_splits(_cfg("folder", path, in_memory=True, **data).data, cfg.seed)
    assert isinstance(streamed.train.sharp, ImageStore) and not isinstance(held.train.sharp, ImageStore)
    return cfg, streamed, held


def test_tf_data_streams_the_same_batches(photo_folder):
    from deblur.data.pipeline import train_dataset

    cfg, streamed, held = _both(photo_folder)
    a = list(train_dataset(streamed.train, cfg.data, 1, paired=False).as_numpy_iterator())
    b = list(train_dataset(held.train, cfg.data, 1, paired=False).as_numpy_iterator())
    assert a[0][0].shape == (4, 16, 16, 3) and _digest(a) == _digest(b)


def test_tf_data_streams_pairs(tmp_path, rng):
    from deblur.data.pipeline import train_dataset

    cfg = _cfg("pairs", _pairs_folder(tmp_path / "p", rng, gopro=False))
    streamed = load_splits(cfg.data, cfg.seed)
    held = load_splits(_cfg("pairs", tmp_path / "p", in_memory=True).data, cfg.seed)
    a = list(train_dataset(streamed.train, cfg.data, 2, paired=True).as_numpy_iterator())
    b = list(train_dataset(held.train, cfg.data, 2, paired=True).as_numpy_iterator())
    assert a[0][0].shape == (4, 16, 16, 3) and _digest(a) == _digest(b)


def test_keras_pipeline_streams_the_same_batches(photo_folder):
    from deblur.data.sequence import TrainBatches

    cfg, streamed, held = _both(photo_folder)
    a, b = TrainBatches(streamed.train, cfg.data, 1, False), TrainBatches(held.train, cfg.data, 1, False)
    assert _digest(a[i][0].values() for i in range(3)) == _digest(b[i][0].values() for i in range(3))
    assert a[0][1].shape == (4, 16, 16, 3)


def test_in_memory_true_decodes_at_startup(photo_folder, count_decodes):
    cfg = _cfg("folder", photo_folder, in_memory=True)
    splits = load_splits(cfg.data, cfg.seed)
    assert len(count_decodes) == 8 and isinstance(splits.train.sharp, list | np.ndarray)


# ---- test sets stay bit-identical ----------------------------------------------------------------

def _eval_digests(path: Path, **data) -> tuple[str, str]:
    out = []
    for in_memory in (False, True):
        cfg = _cfg("folder", path, in_memory=in_memory, **data)
        splits = load_splits(cfg.data, cfg.seed)
        out.append(_digest(EvalSet(splits.test, cfg.data, cfg.seed, "test", False)))
    return out[0], out[1]


def test_eval_set_is_bit_identical_streamed_or_in_memory(photo_folder):
    streamed, held = _eval_digests(photo_folder)
    assert streamed == held


def test_eval_set_of_real_photos_is_bit_identical(tmp_path):
    photos = sorted(shared("photos").glob("*.jpg"))[:5]
    for p in photos:
        shutil.copy(p, tmp_path / p.name)
    streamed, held = _eval_digests(tmp_path, resize=[72, 96], eval_crop=None, val_split=0.2, test_split=0.4)
    assert streamed == held


def test_validation_batches_are_made_on_demand_in_order(photo_folder):
    cfg = _cfg("folder", photo_folder, val_split=0.4)
    splits = load_splits(cfg.data, cfg.seed)
    evalset = EvalSet(splits.val, cfg.data, cfg.seed, "val", False)
    pairs = evalset.pairs(multiple=4)
    whole = [(b["blurred"], b["sharp"]) for b in evalset]
    assert len(pairs) == len(whole) > 1
    assert _digest(pairs) == _digest(whole) == _digest(list(pairs)) == _digest(pairs[i] for i in range(len(pairs)))
    lean = EvalSet(splits.val, cfg.data, cfg.seed, "val", False).pairs(multiple=4)
    lean.budget = 0  # nothing kept: every access makes its batch again, the same
    assert _digest(lean[i] for i in reversed(range(len(lean)))) == _digest(reversed(whole))


# ---- a file that breaks after start-up is skipped, named and counted -----------------------------

@pytest.mark.parametrize("pipeline", ["tf_data", "keras"])
def test_file_broken_mid_run_is_skipped_named_and_counted(pipeline, photo_folder, caplog):
    cfg = _cfg("folder", photo_folder, val_split=0.0, test_split=0.0)
    splits = load_splits(cfg.data, cfg.seed)
    bad = Path(splits.train.sharp.label(2))
    _truncate(bad)
    SKIPS.take()
    caplog.set_level(logging.WARNING, logger="deblur.data")
    if pipeline == "tf_data":
        from deblur.data.pipeline import train_dataset

        batches = list(train_dataset(splits.train, cfg.data, 0, paired=False).as_numpy_iterator())
        sizes = [len(b[0]) for b in batches]
    else:
        from deblur.data.sequence import TrainBatches

        seq = TrainBatches(splits.train, cfg.data, 0, False)
        sizes = [len(seq[i][1]) for i in range(seq.steps)]
    assert sum(sizes) == len(splits.train)  # every slot filled: another image stood in
    assert SKIPS.take() == 1
    named = [r.getMessage() for r in caplog.records if str(bad) in r.getMessage()]
    assert len(named) == 1 and "not a readable image" in named[0]


def test_skip_report_counts_per_epoch(capsys):
    from deblur.data.skips import skip_report

    report, logs = skip_report(), {}
    report.on_train_begin()
    SKIPS.record("/x/a.png", "/x/a.png: gone")
    SKIPS.record("/x/a.png", "/x/a.png: gone")
    report.on_epoch_end(0, logs)
    assert logs["skipped"] == 2 and "epoch 1: skipped 2 unreadable images" in capsys.readouterr().out
    report.on_epoch_end(1, logs)
    assert logs["skipped"] == 0


def test_eval_set_skips_and_reports_an_unreadable_image(photo_folder, caplog):
    cfg = _cfg("folder", photo_folder, val_split=0.0, test_split=0.5)
    splits = load_splits(cfg.data, cfg.seed)
    whole = EvalSet(splits.test, cfg.data, cfg.seed, "test", False)
    before = sum(len(b["sharp"]) for b in whole)
    bad = splits.test.sharp.label(1)
    _truncate(Path(bad))
    evalset = EvalSet(splits.test, cfg.data, cfg.seed, "test", False)
    after = list(evalset)
    assert [label for label, _ in evalset.skipped] == [bad]
    assert "not a readable image" in evalset.skipped[0][1]
    lost = (splits.test.sharp.shape(1)[0] // 16) * (splits.test.sharp.shape(1)[1] // 16)
    assert sum(len(b["sharp"]) for b in after) == before - lost
    assert 1 not in np.concatenate([b["index"] for b in after])
    pairs = evalset.pairs()
    assert len(list(pairs)) == len(pairs)  # validation keeps its batch count


def test_arrays_still_work_in_memory(rng):
    images = ImageSet(sharp=np.stack([smooth_image(rng, 32, 32) for _ in range(3)]), names=["a", "b", "c"])
    assert images.shapes() == [(32, 32, 3)] * 3 and images.subset([0, 2]).sharp.shape == (2, 32, 32, 3)
    assert not images.streamed and images.in_memory() is not None


def test_combined_parts_on_disk_stay_on_disk(photo_folder, kaggle_folder, count_decodes):
    cfg = from_dict({"data": {"source": "combined", "val_split": 0.2, "test_split": 0.2, "options": {"parts": [
        {"source": "folder", "path": str(photo_folder)},
        {"source": "kaggle_blur", "path": str(kaggle_folder), "options": {"blur": "both"}}]}}})
    splits = load_splits(cfg.data, cfg.seed)
    assert isinstance(splits.train.sharp, ImageStore)
    # duplicates are found by pixels, as before streaming: only images of a shared size are decoded,
    # each distinct file once (a Kaggle scene's sharp file serves both its twins)
    assert len(count_decodes) == len(set(count_decodes)) < 8 + 3 * 2
    labels = [splits.train.sharp.label(i) for i in range(len(splits.train))]
    assert len(labels) == len(set(labels)) == 4 + 3  # a Kaggle scene's sharp file once


def test_pipeline_data_error_is_a_data_error_again():
    """tf.data re-raises a DataError of the streaming reader as an UnknownError: training unwraps it, so
    "no image ... can be read any more" is the user's error (exit 2), not an internal one."""
    import tensorflow as tf

    from deblur.core.errors import DataError
    from deblur.data.skips import data_error_inside

    def fail(i):
        raise DataError("no image of the training set can be read any more")

    ds = tf.data.Dataset.range(2).map(lambda i: tf.numpy_function(fail, [i], tf.int64, stateful=False))
    with pytest.raises(tf.errors.OpError) as caught:
        list(ds)
    inner = data_error_inside(caught.value)
    assert isinstance(inner, DataError) and str(inner) == "no image of the training set can be read any more"
    assert data_error_inside(ValueError("DataError: not from tf")) is None


def test_quiesce_stops_a_streamed_pipeline_from_reading(photo_folder, count_decodes):
    """Before its iterator is freed (fit raised) or the interpreter exits, a streamed tf.data pipeline is
    closed: no more file reads, batches of the right shape still, so no tf.data thread is left in Python."""
    from deblur.data import pipeline

    cfg = _cfg("folder", photo_folder, val_split=0.0, test_split=0.0)
    splits = load_splits(cfg.data, cfg.seed)
    it = iter(pipeline.train_dataset(splits.train, cfg.data, 0, paired=False, steps_per_epoch=50))
    next(it)
    pipeline.quiesce()
    read = len(count_decodes)
    assert all(s.closing and not s.running for s in pipeline._LIVE)
    for _ in range(3):
        assert next(it)[0].shape == (4, 16, 16, 3)
    assert len(count_decodes) == read  # closed: nothing more read from disk
    del it
