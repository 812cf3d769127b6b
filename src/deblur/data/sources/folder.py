"""Any folder of sharp images, blurred on the fly by the configured degradation."""

from __future__ import annotations

from pathlib import Path

from deblur.core.errors import DataError
from deblur.core.run_marker import MARKER
from deblur.data import packed
from deblur.data.base import SOURCES, ImageSet, Source, Splits, describe_counts, resolve_path, split_indices
from deblur.data.sources._files import channels_of
from deblur.data.store import FileStore
from deblur.imaging.imageio import IMAGE_EXTENSIONS, list_images


def options(recursive: bool = True) -> None:
    """recursive: also take images from sub-folders."""


def _in_run_folder(file: Path, root: Path) -> bool:
    """Whether `file` lies in a deblur run folder below `root` (say --run-dir inside data.path): its
    galleries show test images, so reading them back as training photos would leak the test split."""
    return any((root / parent / MARKER).is_file() for parent in file.relative_to(root).parents[:-1])


def load(path: str | None, *, seed: int, val_split: float, test_split: float, recursive: bool = True) -> Splits:
    root = resolve_path(path, "folder of sharp images")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    files = [f for f in list_images(root, recursive=recursive) if not _in_run_folder(f, root)]
    if not files:
        raise DataError(f"{root}: no images found ({', '.join(IMAGE_EXTENSIONS)})")
    names = [str(p.relative_to(root).with_suffix("")) for p in files]
    images = FileStore(files)  # read on demand; headers only here
    everything = ImageSet(sharp=images, names=names)
    train, val, test = (everything.subset(idx) for idx in split_indices(len(files), val_split, test_split, seed))
    splits = Splits(train, val, test, channels=channels_of(images), description="")
    splits.description = describe_counts("folder", splits, f" ({root}, split by seed {seed})")
    return splits


SOURCES.register("folder")(Source(load=packed.readable("folder", load), options=options, path="required",
                                  summary="any folder of sharp images, blurred on the fly"))
