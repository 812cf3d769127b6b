"""deblur.data.sequence: the Keras (backend-independent) pipeline's batches, windows and validation pairs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from keras import ops

from conftest import smooth_image
from deblur.config import from_dict
from deblur.data.base import ImageSet, load_splits
from deblur.data.evalset import EvalSet
from deblur.data.on_device import Degrade
from deblur.data.sequence import PairBatches, TrainBatches
from deblur.data.store import ImageStore


def _data_cfg(**data):
    base = {"source": "samples", "crop": 16, "eval_crop": 16, "batch_size": 4, "eval_batch_size": 5,
            "degradation": [{"kind": "gaussian", "sigma": [0.5, 2.5]}, {"kind": "motion", "length": [3, 9]}]}
    return from_dict({"data": {**base, **data}}).data


@pytest.fixture
def images(rng):
    return ImageSet(sharp=[smooth_image(rng, 40 + 3 * i, 44) for i in range(4)], names=[f"i{i}" for i in range(4)])


def _stream_cfg(source: str, path: Path, **data):
    base = {"source": source, "path": str(path), "crop": 16, "eval_crop": 16, "batch_size": 4,
            "eval_batch_size": 3, "val_split": 0.2, "test_split": 0.2,
            "degradation": {"kind": "gaussian", "sigma": [0.5, 2.0]}}
    return from_dict({"data": {**base, **data}})


def _stream_digest(batches) -> str:
    h = hashlib.sha256()
    for batch in batches:
        for part in (batch.values() if isinstance(batch, dict) else batch):
            h.update(np.ascontiguousarray(np.asarray(part)).tobytes())
    return h.hexdigest()


def _both(path: Path, **data):
    cfg = _stream_cfg("folder", path, **data)
    streamed = load_splits(cfg.data, cfg.seed)
    held = load_splits(_stream_cfg("folder", path, in_memory=True, **data).data, cfg.seed)
    assert isinstance(streamed.train.sharp, ImageStore) and not isinstance(held.train.sharp, ImageStore)
    return cfg, streamed, held


def test_keras_pipeline_batches_repeat_for_a_seed_and_cover_each_epoch(images):
    cfg = _data_cfg(crops_per_image=2)
    seq = TrainBatches(images, cfg, seed=3, paired=False, workers=1)
    assert seq.steps == 4 and seq.margin == Degrade(cfg.degradation).margin  # 4 images x 2 blurs x 2 crops / 4
    x, y = seq[0]
    again = TrainBatches(images, cfg, seed=3, paired=False, workers=1)[0]
    np.testing.assert_array_equal(x["image"], again[0]["image"])
    m = seq.margin
    np.testing.assert_array_equal(x["image"][:, m:-m, m:-m], y)  # the target is the window's centre
    assert x["image"].shape == (4, 16 + 2 * m, 16 + 2 * m, 3) and x["u"].shape == (4, 4)
    first = np.concatenate([seq._elements(i) for i in range(4)])
    assert sorted(first.tolist()) == sorted(list(range(8)) * 2)  # every (image, blur) twice per epoch
    assert not np.array_equal(first, np.concatenate([seq._elements(i) for i in range(4, 8)]))


def test_keras_pipeline_reflects_windows_of_small_images(rng):
    small = ImageSet(sharp=np.stack([smooth_image(rng, 16, 16) for _ in range(2)]), names=["a", "b"])
    x, y = TrainBatches(small, _data_cfg(batch_size=2), seed=0, paired=False, workers=1)[0]
    m = (x["image"].shape[1] - 16) // 2
    assert m > 0 and x["image"].shape[1:3] == (16 + 2 * m, 16 + 2 * m)
    np.testing.assert_array_equal(x["image"][:, m:-m, m:-m], y)


def test_validation_pairs_pass_through_the_blur_layer_unchanged(images):
    pairs = EvalSet(images, _data_cfg(), seed=1, split="val", paired=False).pairs()
    layer = Degrade(_data_cfg().degradation)
    x, _y = PairBatches(pairs, layer.margin, layer.as_given)[0]
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x["image"], x["u"], x["variant"])), pairs[0][0])


def test_keras_pipeline_streams_the_same_batches(photo_folder):
    from deblur.data.sequence import TrainBatches

    cfg, streamed, held = _both(photo_folder)
    a, b = TrainBatches(streamed.train, cfg.data, 1, False), TrainBatches(held.train, cfg.data, 1, False)
    assert _stream_digest(a[i][0].values() for i in range(3)) == _stream_digest(b[i][0].values() for i in range(3))
    assert a[0][1].shape == (4, 16, 16, 3)
