"""deblur.data.store: streaming sources decode nothing at start-up and keep no decoded image; in_memory decodes once."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path

import numpy as np
import pytest

import deblur.data.store as store_module
from conftest import blur_sharp_folder, smooth_image, stream_cfg, write_png
from deblur.config import from_dict
from deblur.data.base import ImageSet, load_splits
from deblur.data.evalset import EvalSet
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


@pytest.mark.parametrize("source", ["folder", "pairs", "pairs_gopro", "kaggle_blur"])
def test_startup_decodes_nothing_and_sources_stream(source, tmp_path, rng, photo_folder, kaggle_folder,
                                                    count_decodes):
    path = {"folder": photo_folder, "kaggle_blur": kaggle_folder,
            "pairs": tmp_path / "flat", "pairs_gopro": tmp_path / "gopro"}[source]
    if source.startswith("pairs"):
        blur_sharp_folder(path, rng, gopro=source == "pairs_gopro")
    cfg = stream_cfg(source.removesuffix("_gopro"), path)
    splits = load_splits(cfg.data, cfg.seed)
    assert count_decodes == []  # listing, splitting and size checks read headers only
    assert isinstance(splits.train.sharp, ImageStore)
    assert splits.paired == (source != "folder") and (splits.train.blurred is not None) == splits.paired
    EvalSet(splits.test, cfg.data, cfg.seed, "test", splits.paired)  # plans tiles from headers too
    assert count_decodes == []
    image = splits.train.sharp[0]
    assert image.dtype == np.uint8 and image.shape == splits.train.sharp.shape(0)
    assert len(count_decodes) == 1


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


def test_in_memory_true_decodes_at_startup(photo_folder, count_decodes):
    cfg = stream_cfg("folder", photo_folder, in_memory=True)
    splits = load_splits(cfg.data, cfg.seed)
    assert len(count_decodes) == 8 and isinstance(splits.train.sharp, list | np.ndarray)


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


def test_quiesce_stops_a_streamed_pipeline_from_reading(photo_folder, count_decodes):
    """Before its iterator is freed (fit raised) or the interpreter exits, a streamed tf.data pipeline is
    closed: no more file reads, batches of the right shape still, so no tf.data thread is left in Python."""
    from deblur.data import pipeline

    cfg = stream_cfg("folder", photo_folder, val_split=0.0, test_split=0.0)
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
