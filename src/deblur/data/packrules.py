"""The sources' rules on a pack: each kind keeps its source's listing filter (options), grouping and
split rule, so that a pack and its original folder give the same splits for a seed. `group` is stored
in the manifest (derived at pack time from the names exactly as the source groups them)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from deblur.core.registry import Registry
from deblur.data.shards import Record


@dataclass
class Item:
    name: str
    group: str
    split: str | None  # "test" for a pairs dataset's own test/ folder; None: split by the seed
    sharp: Record
    blurred: Record | None


@dataclass(frozen=True)
class PackRule:
    group: Callable[[str], str]  # name -> the unit a split keeps together
    select: Callable[..., Callable[[Item], bool]]  # the source's options -> which packed items it lists
    by_group: bool  # split_groups (scenes, sequences) rather than split_indices
    paired: bool
    label: Callable[..., str]
    pack_options: dict[str, Any]  # the source options that list everything when packing
    how: str = "split by seed {seed}"  # the split, as the source's description words it
    channels_from_train: bool = False  # pairs count colour on the training split, the others on every image


RULES: Registry[PackRule] = Registry("packable source")

RULES.register("folder")(PackRule(
    group=lambda name: name,
    select=lambda recursive=True: (lambda it: recursive or ("/" not in it.name and os.sep not in it.name)),
    by_group=False, paired=False, label=lambda **_: "folder", pack_options={"recursive": True}))
RULES.register("pairs")(PackRule(
    group=lambda name: name.rsplit("/", 1)[0] if "/" in name else name,
    select=lambda: (lambda it: True), by_group=True, paired=True, label=lambda **_: "pairs", pack_options={},
    channels_from_train=True))
_KAGGLE_TAGS = {"motion": ("M",), "defocus": ("F",), "both": ("M", "F")}
RULES.register("kaggle_blur")(PackRule(
    group=lambda name: name[:-2],  # <scene>_M / <scene>_F
    select=lambda blur="both": (lambda it: it.name[-1:] in _KAGGLE_TAGS[blur]),
    by_group=True, paired=True, label=lambda blur="both", **_: f"Kaggle blur ({blur})", pack_options={"blur": "both"},
    how="split by scene"))
