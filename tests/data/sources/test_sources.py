"""What every source does: missing files and broken layouts are named, and paths never go to a shell."""

from pathlib import Path

import pytest

from conftest import load_source, smooth_image, write_png
from deblur.core.errors import DataError


def test_missing_dataset_files_are_named(tmp_path: Path):
    with pytest.raises(DataError, match="missing"):
        load_source("fashion_mnist", tmp_path)
    with pytest.raises(DataError, match="not found"):
        load_source("folder", tmp_path / "nope")


def test_more_broken_layouts_are_named(tmp_path: Path, kaggle_folder: Path, cifar_folder: Path, rng):
    import shutil

    shutil.rmtree(kaggle_folder / "defocused_blurred")
    with pytest.raises(DataError, match=r"missing folder\(s\) defocused_blurred/"):
        load_source("kaggle_blur", kaggle_folder)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images found"):
        load_source("folder", empty)
    mixed = tmp_path / "mixed"
    for i in range(4):
        write_png(mixed / f"{i}.png", smooth_image(rng, 20, 20))
    (mixed / "notes.txt").write_text("not an image")
    (mixed / ".DS_Store").write_bytes(b"\0\0")
    splits = load_source("folder", mixed)
    assert sum(len(s) for s in (splits.train, splits.val, splits.test)) == 4  # other files are ignored
    batch = cifar_folder / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(DataError, match="data_batch_2: not a CIFAR-10 batch"):
        load_source("cifar10", cifar_folder)


def test_paths_are_never_given_to_a_shell(tmp_path: Path, rng):
    odd = tmp_path / "a;touch pwned $(touch pwned2) `touch pwned3`"
    for i in range(4):
        write_png(odd / f"{i}.png", smooth_image(rng, 20, 20))
    assert sum(len(s) for s in (load_source("folder", odd).train, load_source("folder", odd).test)) >= 3
    assert not any(p.name.startswith("pwned") for p in tmp_path.iterdir())
    assert not any(Path.cwd().glob("pwned*"))
