"""The samples source: real photos, held out."""

import pytest

from deblur.core.errors import DataError
from deblur.data.sources import SOURCES


def _load(source: str, path, **options):
    return SOURCES.get(source).load(None if path is None else str(path), seed=1, val_split=0.2,
                                    test_split=0.2, **options)


def test_samples_are_real_and_held_out():
    splits = _load("samples", None)
    assert splits.test.names == ["chelsea", "coffee"] and splits.val.names == ["rocket"]
    assert not set(splits.train.names) & {"chelsea", "coffee", "rocket"}
    assert splits.test.sharp[0].shape == (300, 451, 3)
    with pytest.raises(DataError, match="unknown sample photo"):
        _load("samples", None, test_images=["lena"])
