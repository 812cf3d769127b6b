"""deblur.evaluation.showcase and report.gallery: with the `blind` baseline each gallery row shows its output and
its estimated kernel beside the true one; without it the gallery is what it always was."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import smooth_image, write_png


@pytest.fixture
def motion_config(tmp_path: Path, rng: np.random.Generator) -> Path:
    """Four 96x96 photos (large enough for the blind restorer to estimate a kernel on), blurred by a motion
    kernel, one scored whole. No validation split: the blind baseline then takes the middle of its grid
    rather than being tuned, which runs the (slow) restorer three times more."""
    for i in range(4):
        write_png(tmp_path / "photos" / f"img{i}.png", smooth_image(rng, 96, 96))
    cfg = {"name": "gallery", "seed": 1,
           "data": {"source": "folder", "path": str(tmp_path / "photos"), "crop": 32, "eval_batch_size": 1,
                    "val_split": 0.0, "test_split": 0.25, "degradation": {"kind": "motion", "length": 9, "angle": 30}},
           "model": {"type": "unet", "depth": 1, "base_filters": 2, "residual": True}}
    path = tmp_path / "gallery.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_blind_baseline_adds_its_output_and_kernels_and_leaves_other_galleries_alone(motion_config, model_file):
    from deblur.config import load
    from deblur.evaluation.evaluate import evaluate
    from deblur.evaluation.report import PANEL_MIN
    from deblur.restore.loading import load_model

    cfg, model = load(motion_config, []), load_model(model_file)
    plain = evaluate(model, cfg, baselines="identity", progress=None).gallery
    other = evaluate(model, cfg, baselines="identity,wiener", progress=None).gallery
    blind = evaluate(model, cfg, baselines="identity,blind", progress=None).gallery
    assert plain is not None and other is not None and blind is not None
    # a baseline that estimates no kernel changes nothing: the very same picture
    assert other.shape == plain.shape and np.array_equal(other, plain)
    # one more image panel and the kernel column, on the same rows
    assert blind.shape[0] == plain.shape[0]
    assert blind.shape[1] >= plain.shape[1] + PANEL_MIN + 6 + PANEL_MIN // 2
    # blurred and restored (and the titles above them) are drawn as before; the blind output comes next
    left = 2 * PANEL_MIN + 6
    assert np.array_equal(blind[:, :left], plain[:, :left])
    # the kernel column (the last ~half panel) holds a kernel picture: the true kernel is always known here
    assert blind[:, -PANEL_MIN // 3:].max() > 0


def test_gallery_says_when_the_restorer_left_the_image_unchanged(rng):
    from deblur.evaluation.report import BlindShown, gallery

    image = rng.random((32, 32, 3)).astype(np.float32)
    true = np.zeros((9, 9), np.float32)
    true[4, :] = 1 / 9
    estimated = np.full((5, 5), 1 / 25, np.float32)
    row = ("best", image, image, image, 30.0, 31.0)
    plain = gallery([row])
    shown = [BlindShown("blind", image, 29.0, True, estimated, true),
             BlindShown("blind", image, 29.0, False, None, true),  # triage: no kernel was used
             BlindShown("builtin", image, 29.0, True, estimated, None)]  # a real pair: no true kernel
    for s in shown:
        picture = gallery([row], [s])
        assert picture.shape[0] == plain.shape[0] and picture.shape[1] > plain.shape[1] + image.shape[1]
    # an unchanged image shows no estimated kernel: the column's top half is its label's bar only
    changed, unchanged = gallery([row], shown[:1]), gallery([row], shown[1:2])
    assert not np.array_equal(changed, unchanged)
