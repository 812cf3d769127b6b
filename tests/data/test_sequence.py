"""deblur.data.sequence: the Keras (backend-independent) pipeline's batches, windows and validation pairs."""

from __future__ import annotations

import numpy as np
from keras import ops

from conftest import smooth_image, stream_digest, streamed_and_held
from deblur.config import from_dict
from deblur.data.base import ImageSet
from deblur.data.evalset import EvalSet
from deblur.data.on_device import Degrade
from deblur.data.sequence import PairBatches, TrainBatches


def _data_cfg(**data):
    base = {"source": "samples", "crop": 16, "eval_crop": 16, "batch_size": 4, "eval_batch_size": 5,
            "degradation": [{"kind": "gaussian", "sigma": [0.5, 2.5]}, {"kind": "motion", "length": [3, 9]}]}
    return from_dict({"data": {**base, **data}}).data


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

    cfg, streamed, held = streamed_and_held(photo_folder)
    a, b = TrainBatches(streamed.train, cfg.data, 1, False), TrainBatches(held.train, cfg.data, 1, False)
    assert stream_digest(a[i][0].values() for i in range(3)) == stream_digest(b[i][0].values() for i in range(3))
    assert a[0][1].shape == (4, 16, 16, 3)
