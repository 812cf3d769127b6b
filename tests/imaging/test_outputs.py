"""deblur.imaging.outputs: an output never replaces an input (even through a hard link); a lying header fails
that image only."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import smooth_image, write_png
from deblur.core.errors import DeblurError
from deblur.imaging import outputs
from deblur.imaging.imageio import read_image


def test_an_output_never_replaces_any_input_even_through_a_hard_link(tmp_path: Path, rng):
    write_png(tmp_path / "src" / "x.jpg.png", smooth_image(rng, 8, 8))
    (tmp_path / "out").mkdir()
    os.link(tmp_path / "src" / "x.jpg.png", tmp_path / "out" / "x.png")  # out/x.png *is* the input
    with pytest.raises(DeblurError, match="would replace its input"):
        outputs.plan([("x", tmp_path / "src" / "x.jpg.png")], tmp_path / "out", overwrite=True)


def test_a_header_that_lies_about_its_depth_fails_that_image_only(tmp_path: Path, rng, monkeypatch):
    """Planned as JPEG from its header, decoded as 16 bits: nothing written (never a JPEG that lost
    8 bits), the image reported as failed, and the job goes on."""
    deep = smooth_image(rng, 8, 8).astype(np.uint16) * 257
    write_png(tmp_path / "in" / "deep.png", deep)
    monkeypatch.setattr(outputs, "jpeg_facts", lambda path: (True, True))
    plan = outputs.plan([("deep", tmp_path / "in" / "deep.png")], tmp_path / "out", fmt="jpeg")
    assert plan.jobs[0].targets[0].name == "deep.jpg"
    summary = outputs.WriteSummary()
    outputs.write_job(plan.jobs[0], [read_image(tmp_path / "in" / "deep.png")], summary, 1)
    assert summary.written == [] and "rerun with --format png" in summary.failed[0][1]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
