"""The folder source: sub-folders, bad images refused, and run folders inside it left out."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import load_source, smooth_image, write_png
from deblur.core.errors import DataError


def test_folder_source_leaves_out_run_folders_inside_it(tmp_path: Path, rng):
    from deblur.data.sources.folder import load
    from deblur.training.train import MARKER, MARKER_TEXT

    for i in range(4):
        write_png(tmp_path / "photos" / f"p{i}.png", smooth_image(rng, 24, 24))
    run = tmp_path / "photos" / "runs" / "r"
    write_png(run / "eval-test" / "gallery.png", smooth_image(rng, 30, 90))  # shows test images
    (run / MARKER).write_text(MARKER_TEXT)
    splits = load(str(tmp_path / "photos"), seed=0, val_split=0.25, test_split=0.25)
    names = splits.train.names + splits.val.names + splits.test.names
    assert sorted(names) == ["p0", "p1", "p2", "p3"]


def test_folder_source_reads_subfolders_and_rejects_bad_images(photo_folder: Path):
    splits = load_source("folder", photo_folder)
    names = splits.train.names + splits.val.names + splits.test.names
    assert len(names) == 8 and "more/img7" in names
    assert not load_source("folder", photo_folder, recursive=False).test.names.count("more/img7")
    (photo_folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataError, match=r"broken\.jpg"):
        load_source("folder", photo_folder)
