"""deblur.core.limits: the decoded-pixel limit is a finite positive number, from the option or the environment."""

import math
from pathlib import Path

import pytest

from conftest import smooth_image, write_png
from deblur.core.errors import DataError, DeblurError
from deblur.imaging.imageio import read_image


def test_pixel_limit_must_be_a_finite_positive_number(tmp_path: Path, rng, monkeypatch):
    path = tmp_path / "a.png"
    write_png(path, smooth_image(rng, 8, 8))
    for bad in (math.nan, -1.0, 0.0, math.inf):
        with pytest.raises(DeblurError, match="megapixels above 0") as info:
            read_image(path, max_pixels_mp=bad)
        assert not isinstance(info.value, DataError)  # a setting to fix, not a bad image to skip
    for bad in ("nan", "-5", "inf"):
        monkeypatch.setenv("DEBLUR_MAX_MEGAPIXELS", bad)
        with pytest.raises(DeblurError, match="DEBLUR_MAX_MEGAPIXELS"):
            read_image(path)
