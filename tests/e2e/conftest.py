"""Fixtures of the end-to-end tests: a training config, small input folders, a checkpoint of NaN weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import nan_unet, smooth_image, write_png, write_yaml


@pytest.fixture
def train_config(tmp_path: Path, photo_folder: Path) -> Path:
    """Two epochs of a depth-2 U-Net on photo_folder (Gaussian blur), evaluated after."""
    cfg = {
        "name": "tiny",
        "seed": 1,
        "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16,
                 "crops_per_image": 4, "batch_size": 8, "val_split": 0.25, "test_split": 0.25,
                 "degradation": {"kind": "gaussian", "sigma": [0.5, 2.5]}},
        "model": {"type": "unet", "depth": 2, "base_filters": 4, "residual": True},
        "train": {"epochs": 2, "learning_rate": 0.003},
    }
    return write_yaml(tmp_path / "tiny.yaml", cfg)


def _photos(folder: Path, rng: np.random.Generator, n: int) -> Path:
    for i in range(n):
        write_png(folder / f"img{i}.png", smooth_image(rng, 12, 16))
    return folder


@pytest.fixture
def two_images(tmp_path: Path, rng) -> Path:
    """tmp_path/in: two 12x16 photos."""
    return _photos(tmp_path / "in", rng, 2)


@pytest.fixture
def images(tmp_path: Path, rng) -> Path:
    """tmp_path/in: three 12x16 photos."""
    return _photos(tmp_path / "in", rng, 3)


@pytest.fixture
def image(tmp_path: Path, rng: np.random.Generator) -> Path:
    """tmp_path/in/a.png, a 32x32 photo."""
    path = tmp_path / "in" / "a.png"
    write_png(path, smooth_image(rng, 32, 32))
    return path


@pytest.fixture
def nan_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "nan" / "last.keras"
    path.parent.mkdir()
    nan_unet().save(path)
    return path
