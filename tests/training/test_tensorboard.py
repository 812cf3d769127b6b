"""deblur.training.tensorboard: validation samples are few, one size and centre-cropped."""

from __future__ import annotations

import numpy as np

from deblur.training.tensorboard import side_by_side, validation_samples


def test_samples_are_few_one_size_and_centre_cropped(rng):
    big = {"blurred": rng.random((3, 300, 280, 3), dtype=np.float32), "sharp": rng.random((3, 300, 280, 3),
                                                                                         dtype=np.float32)}
    other = {"blurred": np.zeros((2, 40, 40, 3), np.float32), "sharp": np.zeros((2, 40, 40, 3), np.float32)}
    blurred, sharp = validation_samples([big, other, big], multiple=8, count=4)
    assert blurred.shape == sharp.shape == (4, 256, 256, 3)  # the 40x40 ones are skipped, not mixed in
    np.testing.assert_array_equal(sharp[0], big["sharp"][0, 22:278, 12:268])
    row = side_by_side(blurred - 2, sharp + 2)
    assert row.shape == (4, 256, 512, 3) and row.min() == 0 and row.max() == 1


def test_a_side_shorter_than_the_multiple_is_padded_not_cropped_empty(rng):
    """Validation images narrower than the model's multiple (12 px against 16) still give a sample the
    model takes: padded up to the multiple, the other side cropped down to it."""
    small = {"blurred": rng.random((2, 40, 12, 3), dtype=np.float32), "sharp": rng.random((2, 40, 12, 3),
                                                                                        dtype=np.float32)}
    blurred, sharp = validation_samples([small], multiple=16, count=2)
    assert blurred.shape == sharp.shape == (2, 32, 16, 3)
    np.testing.assert_array_equal(sharp[:, :, :12], small["sharp"][:, 4:36])
    np.testing.assert_array_equal(sharp[:, :, 12:], np.repeat(small["sharp"][:, 4:36, 11:12], 4, axis=2))
