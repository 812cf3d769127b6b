"""Fixtures of the data tests."""

from __future__ import annotations

import pytest

from conftest import smooth_image


@pytest.fixture
def images(rng):
    """Four photos of 40..49 x 44 as an ImageSet."""
    from deblur.data.base import ImageSet

    return ImageSet(sharp=[smooth_image(rng, 40 + 3 * i, 44) for i in range(4)], names=[f"i{i}" for i in range(4)])
