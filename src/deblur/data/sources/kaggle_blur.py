"""The Kaggle "blur-dataset" (kwentar) layout: `sharp/`, `motion_blurred/`, `defocused_blurred/`.

Files are `<n>_<DEVICE>_S|M|F.<ext>` for one scene, extension case varying. Pairs are made by scene;
the split is by scene too, so the motion and defocus shots of one scene never sit on both sides.
Note: the blurred and sharp shots are separate hand-held photos, not pixel-aligned.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from deblur.core.errors import DataError
from deblur.data import packed
from deblur.data.base import SOURCES, ImageSet, Source, Splits, describe_counts, resolve_path, split_groups
from deblur.data.sources._files import channels_of, pair_set
from deblur.imaging.imageio import list_images

FOLDERS = {"S": "sharp", "M": "motion_blurred", "F": "defocused_blurred"}
KINDS = {"motion": ["M"], "defocus": ["F"], "both": ["M", "F"]}
NAME = re.compile(r"^(?P<scene>.+)_(?P<tag>[SMF])$", re.IGNORECASE)


def _index(folder: Path, tag: str) -> tuple[dict[str, Path], list[Path]]:
    """Map scene -> file for one folder; files that do not follow the naming rule are returned apart."""
    found: dict[str, Path] = {}
    odd: list[Path] = []
    for p in list_images(folder, recursive=False):
        m = NAME.match(p.stem)
        if m and m["tag"].upper() == tag:
            found[m["scene"]] = p
        else:
            odd.append(p)
    return found, odd


def options(blur: Literal["motion", "defocus", "both"] = "both") -> None:
    """blur: which blurred shots to pair with the sharp one."""


def load(path: str | None, *, seed: int, val_split: float, test_split: float,
         blur: Literal["motion", "defocus", "both"] = "both") -> Splits:
    root = resolve_path(path, "Kaggle blur-dataset folder (with sharp/, motion_blurred/, defocused_blurred/)")
    tags = ["S", *KINDS[blur]]
    missing = [FOLDERS[t] for t in tags if not (root / FOLDERS[t]).is_dir()]
    if missing:
        raise DataError(f"{root}: missing folder(s) {', '.join(m + '/' for m in missing)} of the Kaggle layout")
    index = {}
    unpaired: list[str] = []
    for t in tags:
        index[t], odd = _index(root / FOLDERS[t], t)
        unpaired += [f"{FOLDERS[t]}/{p.name} (name not <n>_<DEVICE>_{t})" for p in odd]
    scenes = set().union(*(set(v) for v in index.values()))
    for scene in sorted(scenes):
        lacking = [FOLDERS[t] for t in tags if scene not in index[t]]
        if lacking:
            have = next(index[t][scene] for t in tags if scene in index[t])
            unpaired.append(f"{have.parent.name}/{have.name} (no twin in {', '.join(lacking)})")
    if unpaired:
        shown = "; ".join(unpaired[:10]) + (f"; and {len(unpaired) - 10} more" if len(unpaired) > 10 else "")
        raise DataError(f"{root}: {len(unpaired)} unpaired file(s): {shown}")
    if not scenes:
        raise DataError(f"{root}: no images in {', '.join(FOLDERS[t] + '/' for t in tags)}")
    pairs, names, groups = [], [], []
    for scene in sorted(scenes, key=_natural):
        for t in KINDS[blur]:
            pairs.append((index[t][scene], index["S"][scene]))
            names.append(f"{scene}_{t}")
            groups.append(scene)
    parts = split_groups(groups, val_split, test_split, seed)
    train, val, test = (ImageSet([], [], []) if not idx else pair_set([pairs[i] for i in idx], [names[i] for i in idx])
                        for idx in parts)
    channels = max((channels_of(s.sharp) for s in (train, val, test) if len(s)), default=3)
    splits = Splits(train, val, test, channels=channels, description="", paired=True)
    splits.description = describe_counts(f"Kaggle blur ({blur})", splits, f" ({root}, split by scene)")
    return splits


def _natural(scene: str) -> tuple[int, str]:
    head = scene.split("_", 1)[0]
    return (int(head) if head.isdigit() else 1 << 30, scene)


SOURCES.register("kaggle_blur")(Source(load=packed.readable("kaggle_blur", load), options=options, path="required",
                                       summary="Kaggle blur-dataset layout: real motion/defocus pairs"))
