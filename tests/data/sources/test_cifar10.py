"""The CIFAR-10 source: folder and archive, channel-planar layout, pickles without code, the offline error and
Keras's cache."""

from pathlib import Path

import numpy as np
import pytest

from conftest import load_source, shared
from deblur.core.errors import DataError


@pytest.mark.parametrize("fixture", ["cifar_folder", "cifar_tarball"])
def test_cifar_reads_folder_and_archive(fixture, request):
    splits = load_source("cifar10", request.getfixturevalue(fixture))
    assert len(splits.train) + len(splits.val) == 20 and len(splits.test) == 6
    assert splits.train.sharp.shape[1:] == (32, 32, 3) and splits.channels == 3


def test_cifar_channel_planar_layout_is_decoded(tmp_path: Path):
    import io
    import pickle

    from deblur.data.sources.cifar10 import read_batch

    image = np.zeros((1, 32, 32, 3), np.uint8)
    image[0, :, :, 0] = 200  # red plane
    data = image.transpose(0, 3, 1, 2).reshape(1, -1)
    out = read_batch(io.BytesIO(pickle.dumps({b"data": data, b"labels": [1]}, protocol=2)), "x")
    assert out[0, 5, 5].tolist() == [200, 0, 0]


def test_cifar_refuses_code_in_pickles(cifar_folder: Path, pickle_bomb: bytes):
    (cifar_folder / "data_batch_1").write_bytes(pickle_bomb)
    with pytest.raises(DataError, match=r"refusing to load (posix|os)\.system"):
        load_source("cifar10", cifar_folder)
    assert not Path("/tmp/deblur-pwned").exists()


def test_cifar_offline_error_says_where_to_put_the_file(tmp_path: Path, monkeypatch):
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def offline(*args, **kwargs):
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(DataError) as info:
        load_source("cifar10", None)
    msg = str(info.value)
    assert "cifar-10-python.tar.gz" in msg and str(tmp_path / "keras" / "datasets") in msg and "\n" not in msg


def test_cifar_uses_keras_cache(tmp_path: Path, monkeypatch, cifar_folder: Path):
    cache = tmp_path / "home" / "datasets"
    cache.mkdir(parents=True)
    cifar_folder.rename(cache / "cifar-10-batches-py")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    assert len(load_source("cifar10", None).test) == 6


def test_shared_cifar10_subset_loads():
    splits = load_source("cifar10", shared("cifar-10-batches-py"))
    assert len(splits.train) + len(splits.val) == 3728 and len(splits.test) == 932
    assert 40 < splits.test.sharp.mean() < 200  # real photos, not zeros
