"""Which file source a dataset folder's layout belongs to (for `deblur pack` without `--source`)."""

from __future__ import annotations

from pathlib import Path

from deblur.data.sources import kaggle_blur, pairs


def detect(root: Path) -> str:
    """`kaggle_blur` for its sharp/ + *_blurred/ folders, `pairs` for blur/ + sharp/ (at the root, per
    sequence, or under train/ and test/), else `folder`."""
    folders = kaggle_blur.FOLDERS
    if (root / folders["S"]).is_dir() and any((root / folders[t]).is_dir() for t in ("M", "F")):
        return "kaggle_blur"
    if root.is_dir() and (((root / "train").is_dir() and (root / "test").is_dir()) or pairs._pair_dirs(root)):
        return "pairs"
    return "folder"
