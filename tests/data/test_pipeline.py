"""deblur.data.pipeline: tf.data training batches (new kernels each epoch, repeatable for a seed), eval pairs,
streamed batches, and sizes checked before training."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import blur_sharp_folder, smooth_image, stream_cfg, stream_digest, streamed_and_held
from deblur.config import from_dict
from deblur.core.errors import ConfigError, DataError
from deblur.data.base import ImageSet, load_splits
from deblur.data.evalset import EvalSet
from deblur.data.pipeline import train_dataset


def _cfg(**data):
    base = {"source": "samples", "crop": 16, "eval_crop": 16, "batch_size": 4, "eval_batch_size": 5,
            "degradation": {"kind": "gaussian", "sigma": [0.5, 2.5]}}
    return from_dict({"data": {**base, **data}}).data


def _epoch(ds):
    return [tuple(np.asarray(t) for t in batch) for batch in ds]


def test_training_draws_new_kernels_each_epoch_but_repeats_for_a_seed(images):
    ds = train_dataset(images, _cfg(), seed=3, paired=False)
    first, second = _epoch(ds), _epoch(ds)
    assert [b[0].shape for b in first] == [(4, 16, 16, 3)]
    assert not np.allclose(first[0][0], second[0][0])  # new crops/kernels every epoch
    again = _epoch(train_dataset(images, _cfg(), seed=3, paired=False))
    np.testing.assert_array_equal(first[0][0], again[0][0])  # same seed, same run
    blurred, sharp = first[0]
    assert blurred.min() >= 0 and blurred.max() <= 1
    assert np.abs(blurred - sharp).mean() > 0.005  # it really is blurred


def test_crops_per_image_and_variants_multiply_the_epoch(images):
    cfg = _cfg(crops_per_image=3, degradation=[{"kind": "gaussian", "sigma": 1}, {"kind": "motion", "length": 5}])
    total = sum(b[0].shape[0] for b in _epoch(train_dataset(images, cfg, seed=0, paired=False)))
    assert total == 4 * 3 * 2


def test_eval_split_is_fixed_and_records_parameters(images):
    cfg = _cfg()
    test = EvalSet(images, cfg, seed=5, split="test", paired=False)
    a, b = list(test), list(EvalSet(images, cfg, seed=5, split="test", paired=False))
    c = list(EvalSet(images, cfg, seed=5, split="val", paired=False))
    assert len(a) == len(test) and [len(x["sharp"]) for x in a[:-1]] == [5] * (len(a) - 1)
    n_tiles = sum(len(x["sharp"]) for x in a)
    assert n_tiles == sum((im.shape[0] // 16) * (im.shape[1] // 16) for im in images.sharp)
    np.testing.assert_array_equal(a[0]["blurred"], b[0]["blurred"])
    assert not np.allclose(a[0]["sigma"], c[0]["sigma"])  # another split, other kernels
    sigmas = np.concatenate([x["sigma"] for x in a])
    assert ((sigmas >= 0.5) & (sigmas <= 2.5)).all() and np.isnan(np.concatenate([x["length"] for x in a])).all()
    tiles_of_first = [x["sigma"][x["index"] == 0] for x in a]
    assert len(np.unique(np.concatenate(tiles_of_first))) == 1  # one kernel per image, shared by its tiles


def test_eval_tiles_are_cut_from_the_image_blurred_whole(images):
    test = EvalSet(images, _cfg(), seed=5, split="test", paired=False)
    whole, sharp, _ = test.degrade(0)  # image 0 is 40x44: 2x2 tiles of 16, centred at (4, 6)
    first = next(iter(test))
    np.testing.assert_array_equal(first["blurred"][:4], [whole[4:20, 6:22], whole[4:20, 22:38],
                                                         whole[20:36, 6:22], whole[20:36, 22:38]])
    np.testing.assert_array_equal(first["sharp"][0], sharp[4:20, 6:22])
    assert first["index"].tolist() == [0, 0, 0, 0, 1] and first["tile"].tolist() == [0, 1, 2, 3, 0]


def test_eval_pairs_are_cropped_to_the_model_multiple(rng):
    same = ImageSet(sharp=np.stack([smooth_image(rng, 30, 45) for _ in range(3)]), names=["a", "b", "c"])
    pairs = EvalSet(same, _cfg(eval_crop=None), seed=5, split="val", paired=False).pairs(8)
    assert [b.shape for b, _ in pairs] == [(3, 24, 40, 3)]
    whole, _sharp, _ = EvalSet(same, _cfg(eval_crop=None), seed=5, split="val", paired=False).degrade(1)
    np.testing.assert_array_equal(pairs[0][0][1], whole[3:27, 2:42])


def test_paired_crops_stay_aligned(rng):
    sharp = [smooth_image(rng, 30, 30) for _ in range(3)]
    images = ImageSet(sharp=sharp, names=["a", "b", "c"], blurred=[255 - s for s in sharp])
    blurred, target = _epoch(train_dataset(images, _cfg(), seed=1, paired=True))[0]
    np.testing.assert_allclose(blurred + target, 1.0, atol=1e-6)


def test_sizes_are_checked_before_training(images):
    with pytest.raises(DataError, match="smallest image"):
        train_dataset(images, _cfg(crop=64), seed=0, paired=False)
    with pytest.raises(ConfigError, match="differ in size"):
        train_dataset(images, _cfg(crop=None), seed=0, paired=False)


def test_tf_data_streams_the_same_batches(photo_folder):
    from deblur.data.pipeline import train_dataset

    cfg, streamed, held = streamed_and_held(photo_folder)
    a = list(train_dataset(streamed.train, cfg.data, 1, paired=False).as_numpy_iterator())
    b = list(train_dataset(held.train, cfg.data, 1, paired=False).as_numpy_iterator())
    assert a[0][0].shape == (4, 16, 16, 3) and stream_digest(a) == stream_digest(b)


def test_tf_data_streams_pairs(tmp_path, rng):
    from deblur.data.pipeline import train_dataset

    cfg = stream_cfg("pairs", blur_sharp_folder(tmp_path / "p", rng, gopro=False))
    streamed = load_splits(cfg.data, cfg.seed)
    held = load_splits(stream_cfg("pairs", tmp_path / "p", in_memory=True).data, cfg.seed)
    a = list(train_dataset(streamed.train, cfg.data, 2, paired=True).as_numpy_iterator())
    b = list(train_dataset(held.train, cfg.data, 2, paired=True).as_numpy_iterator())
    assert a[0][0].shape == (4, 16, 16, 3) and stream_digest(a) == stream_digest(b)


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
