"""The samples source: real photos, held out."""

import pytest

from conftest import load_source
from deblur.core.errors import DataError


def test_samples_are_real_and_held_out():
    splits = load_source("samples", None)
    assert splits.test.names == ["chelsea", "coffee"] and splits.val.names == ["rocket"]
    assert not set(splits.train.names) & {"chelsea", "coffee", "rocket"}
    assert splits.test.sharp[0].shape == (300, 451, 3)
    with pytest.raises(DataError, match="unknown sample photo"):
        load_source("samples", None, test_images=["lena"])
