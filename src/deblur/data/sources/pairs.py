"""Any `blur/` + `sharp/` folders with matching file names, or GoPro's `<sequence>/blur|sharp`.

If the root holds `train/` and `test/` folders (as GoPro does), those are the splits; otherwise the
split is deterministic by seed, by sequence for GoPro layouts (neighbouring frames are near-copies).
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

BLUR_NAMES = ("blur", "blurred", "input")
SHARP_NAMES = ("sharp", "gt", "target")


def _pair_dirs(root: Path) -> list[tuple[Path, Path]]:
    """Every (blur_dir, sharp_dir) below root: root itself or each sequence folder."""
    def pair_in(folder: Path) -> tuple[Path, Path] | None:
        blur = next((folder / n for n in BLUR_NAMES if (folder / n).is_dir()), None)
        sharp = next((folder / n for n in SHARP_NAMES if (folder / n).is_dir()), None)
        return (blur, sharp) if blur and sharp else None

    direct = pair_in(root)
    if direct:
        return [direct]
    return [p for d in sorted(root.iterdir()) if d.is_dir() and (p := pair_in(d))]


def _collect(root: Path) -> tuple[list[tuple[Path, Path]], list[str], list[str]]:
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (a pairs folder holds blur/ and sharp/)")
    dirs = _pair_dirs(root)
    if not dirs:
        raise DataError(f"{root}: no blur/ and sharp/ folders (nor <sequence>/blur, <sequence>/sharp) found")
    pairs, names, groups, unpaired = [], [], [], []
    for blur_dir, sharp_dir in dirs:
        blur = {p.stem: p for p in list_images(blur_dir, recursive=False)}
        sharp = {p.stem: p for p in list_images(sharp_dir, recursive=False)}
        unpaired += [str(blur[k]) for k in sorted(set(blur) - set(sharp))]
        unpaired += [str(sharp[k]) for k in sorted(set(sharp) - set(blur))]
        group = blur_dir.parent.name if blur_dir.parent != root else ""
        for stem in sorted(set(blur) & set(sharp)):
            pairs.append((blur[stem], sharp[stem]))
            names.append(f"{group}/{stem}" if group else stem)
            groups.append(group or stem)
    if unpaired:
        shown = "; ".join(unpaired[:10]) + (f"; and {len(unpaired) - 10} more" if len(unpaired) > 10 else "")
        raise DataError(f"{root}: {len(unpaired)} file(s) without a twin of the same name: {shown}")
    if not pairs:
        raise DataError(f"{root}: the blur and sharp folders hold no images")
    return pairs, names, groups


TAG = re.compile(r"_[A-Za-z]$")


def _match_key(stem: str) -> str:
    """Names may differ only by a one-letter tag (Kaggle's 0_IPHONE-SE_M vs 0_IPHONE-SE_S)."""
    return TAG.sub("", stem)


def load_dirs(blur_dir: Path, sharp_dir: Path) -> ImageSet:
    """All pairs from two folders, matched by name (or by name less a one-letter `_X` tag)."""
    for d in (blur_dir, sharp_dir):
        if not d.is_dir():
            raise DataError(f"{d}: not a folder")
    if blur_dir.samefile(sharp_dir):  # every image would be scored against itself, at the 60 dB cap
        raise DataError(f"--pairs: {blur_dir} and {sharp_dir} are the same folder; give the blurred photos' folder "
                        "first, then the sharp photos' folder")
    blur = {p.stem: p for p in list_images(blur_dir, recursive=False)}
    sharp = {p.stem: p for p in list_images(sharp_dir, recursive=False)}
    if not set(blur) & set(sharp):
        blur = {_match_key(k): v for k, v in blur.items()}
        sharp = {_match_key(k): v for k, v in sharp.items()}
    orphans = sorted(str(blur[k]) for k in set(blur) - set(sharp))
    orphans += sorted(str(sharp[k]) for k in set(sharp) - set(blur))
    if orphans:
        shown = "; ".join(orphans[:10]) + (f"; and {len(orphans) - 10} more" if len(orphans) > 10 else "")
        raise DataError(f"{len(orphans)} file(s) without a twin of the same name: {shown}")
    if not blur:
        raise DataError(f"{blur_dir}, {sharp_dir}: no images")
    keys = sorted(blur)
    return pair_set([(blur[k], sharp[k]) for k in keys], keys)


def load_all(root: Path) -> tuple[ImageSet, str]:
    """Every pair under a pairs folder or a Kaggle blur-dataset folder, for scoring without a config."""
    from deblur.data.sources import kaggle_blur

    layouts: list[tuple[Literal["motion", "defocus"], str]] = [("motion", "motion_blurred"),
                                                              ("defocus", "defocused_blurred")]
    kinds = [kind for kind, folder in layouts if (root / folder).is_dir()]
    if (root / "sharp").is_dir() and kinds:
        blur = "both" if len(kinds) == 2 else kinds[0]
        splits = kaggle_blur.load(str(root), seed=0, val_split=0.0, test_split=0.0, blur=blur)
        return splits.train, f"Kaggle blur layout ({root})"
    pairs, names, _ = _collect(resolve_path(str(root), "pairs folder"))
    return pair_set(pairs, names), f"pairs ({root})"


def options() -> None:
    """Pairs need no options: the folder layout says everything."""


def load(path: str | None, *, seed: int, val_split: float, test_split: float) -> Splits:
    root = resolve_path(path, "folder holding blur/ and sharp/ (or GoPro-style sequences)")
    if (root / "train").is_dir() and (root / "test").is_dir():
        pairs, names, groups = _collect(root / "train")
        tr, va, _ = split_groups(groups, val_split, 0.0, seed)
        test_pairs, test_names, _ = _collect(root / "test")
        train = pair_set([pairs[i] for i in tr], [names[i] for i in tr])
        val = pair_set([pairs[i] for i in va], [names[i] for i in va])
        test = pair_set(test_pairs, test_names)
        how = "its own train/ and test/"
    else:
        pairs, names, groups = _collect(root)
        train, val, test = (pair_set([pairs[i] for i in idx], [names[i] for i in idx])
                            for idx in split_groups(groups, val_split, test_split, seed))
        how = f"split by seed {seed}"
    splits = Splits(train, val, test, channels=channels_of(train.sharp), description="", paired=True)
    splits.description = describe_counts("pairs", splits, f" ({root}, {how})")
    return splits


SOURCES.register("pairs")(Source(load=packed.readable("pairs", load), options=options, path="required",
                                 summary="blur/ + sharp/ folders with matching names (GoPro layout too)"))
