"""The refiner's training pairs (deblur.restore.refiner_data): the pipeline's own deconvolution of
blurred photos, with the kernel errors estimation makes, written as GoPro-style pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deblur.restore import kernels as K
from deblur.restore import refiner_data

from .helpers import scene


@pytest.mark.parametrize("seed", range(6))
def test_a_perturbed_kernel_is_a_centred_kernel_that_differs_from_the_true_one(seed: int) -> None:
    true = K.normalise(K.line(15, 35, 17))
    k, how = refiner_data.perturb(true, np.random.default_rng(seed))
    assert how in {"jitter", "scale", "size"}
    assert k.shape[0] % 2 == 1 and k.min() >= 0 and k.sum() == pytest.approx(1.0)
    cy, cx = K.centroid(k)
    assert abs(cy - k.shape[0] // 2) <= 0.5 and abs(cx - k.shape[0] // 2) <= 0.5
    same = K.fit(K.centre(true), k.shape[0]) if k.shape[0] >= true.shape[0] else None
    assert same is None or not np.allclose(same, k, atol=1e-4)


def test_an_example_is_the_deconvolution_of_a_blurred_photo_and_is_reproducible() -> None:
    sharp = scene(np.random.default_rng(3), 96, 128)
    a = refiner_data.make_example("p", sharp, np.random.default_rng(5), estimator=lambda b: K.delta(3))
    b = refiner_data.make_example("p", sharp, np.random.default_rng(5), estimator=lambda b: K.delta(3))
    assert a.kind in refiner_data.KINDS and a.source.split(":")[0] in refiner_data.SOURCES
    assert a.deconvolved.shape == sharp.shape and a.deconvolved.dtype == np.float32
    assert a.deconvolved.min() >= 0.0 and a.deconvolved.max() <= 1.0
    assert not np.array_equal(a.deconvolved, a.blurred)  # the deconvolution did something
    assert np.array_equal(a.deconvolved, b.deconvolved)


def test_pairs_are_written_one_sequence_per_photo_and_load_split_by_photo(tmp_path: Path) -> None:
    from deblur.data.sources import pairs

    rng = np.random.default_rng(0)
    for split, names in (("train", ["a", "b", "c", "d"]), ("test", ["e"])):
        for name in names:
            sharp = scene(rng, 64, 64)
            for d in range(2):
                ex = refiner_data.Example(name, sharp, sharp, np.clip(sharp + 0.05, 0, 1), "shake", "true")
                refiner_data.write_pair(tmp_path / split, ex, d)
    splits = pairs.load(str(tmp_path), seed=0, val_split=0.25, test_split=0.0)
    photos = {split: {n.split("/")[0] for n in getattr(splits, split).names} for split in ("train", "val", "test")}
    assert photos["test"] == {"e"} and len(photos["val"]) == 1
    assert not photos["train"] & photos["val"]  # both draws of a photo stay in one split
    assert len(splits.train) == 6 and len(splits.val) == 2
