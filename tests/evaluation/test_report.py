"""deblur.evaluation.report: names that are not UTF-8 reach reports and pictures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def test_names_that_are_not_utf8_reach_reports_and_pictures(tmp_path: Path, rng):
    from deblur.evaluation.report import gallery
    from deblur.imaging.imageio import atomic_write_text

    name = os.fsdecode(b"n\xff")  # a lone surrogate, as Python reads such a file name
    image = rng.random((16, 16, 3)).astype(np.float32)
    picture = gallery([(f"best: {name}", image, image, image, 30.0, 31.0)])  # OpenCV crashed (SIGSEGV) here
    assert picture.ndim == 3
    atomic_write_text(tmp_path / "rows.csv", f"image\n{name}\n")
    assert (tmp_path / "rows.csv").read_bytes() == b"image\nn\xff\n"
