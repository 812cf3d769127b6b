import json
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from conftest import smooth_image, write_png
from deblur.cli import app
from deblur.imaging.align import estimate
from deblur.imaging.metrics import psnr
from deblur.models import MODELS


def _shifted_pair(rng, dx: float, dy: float, h: int = 120, w: int = 160):
    sharp = smooth_image(rng, h, w).astype(np.float32) / 255
    moved = cv2.warpAffine(sharp, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REFLECT)
    return cv2.GaussianBlur(moved, (5, 5), 1.0), sharp


def test_ecc_recovers_a_shift_and_scores_the_overlap(rng):
    blurred, sharp = _shifted_pair(rng, 5, -3)
    found = estimate(blurred, sharp)
    assert found is not None
    np.testing.assert_allclose(found.homography[:2, 2], [5, -3], atol=0.1)
    y0, y1, x0, x1 = found.box
    assert x1 - x0 <= 160 - 5 and y1 - y0 <= 120 - 3  # only what both frames cover
    assert psnr(found.crop(sharp), found.crop(found.warp(blurred))) > psnr(sharp, blurred) + 10


def test_unrelated_images_are_reported_as_not_aligned(rng):
    a = smooth_image(rng, 80, 80).astype(np.float32) / 255
    b = rng.random((80, 80, 3)).astype(np.float32)
    assert estimate(a, b) is None


def test_eval_pairs_align_cli(tmp_path: Path, rng):
    for i, (dx, dy) in enumerate([(4, 2), (-3, 5), (2, -2)]):
        blurred, sharp = _shifted_pair(rng, dx, dy)
        write_png(tmp_path / "sharp" / f"{i}_CAM_S.png", (sharp * 255).round().astype(np.uint8))
        write_png(tmp_path / "blur" / f"{i}_CAM_M.png", (blurred * 255).round().astype(np.uint8))
    write_png(tmp_path / "sharp" / "9_CAM_S.png", smooth_image(rng, 120, 160))
    write_png(tmp_path / "blur" / "9_CAM_M.png", (rng.random((120, 160, 3)) * 255).astype(np.uint8))  # unalignable
    ckpt = tmp_path / "m.keras"
    MODELS.get("unet")(3, depth=2, base_filters=4, residual=True).save(ckpt)
    result = CliRunner().invoke(app, ["eval", str(ckpt), "--pairs", str(tmp_path / "blur"), str(tmp_path / "sharp"),
                                      "--align", "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "3 pairs aligned, 1 could not be aligned (9_CAM)" in result.output
    summary = json.loads((tmp_path / "out" / "metrics.json").read_text())
    a = summary["alignment"]
    assert a["aligned_psnr_input"] > a["unaligned_psnr_input"] + 10
    assert "unsharp" in summary["methods"] and "wiener" not in summary["methods"]
    assert (tmp_path / "out" / "gallery.png").is_file()
