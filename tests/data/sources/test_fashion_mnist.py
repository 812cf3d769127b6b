"""The Fashion-MNIST source: gzip and plain IDX files, and a bad header named."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import idx_bytes, load_source, shared
from deblur.core.errors import DataError


def test_fashion_mnist_gz_and_plain(fmnist_folder: Path):
    splits = load_source("fashion_mnist", fmnist_folder)
    assert len(splits.test) == 5 and splits.channels == 1 and splits.test.sharp.shape[1:] == (28, 28, 1)
    for gz in fmnist_folder.glob("*.gz"):
        gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    assert len(load_source("fashion_mnist", fmnist_folder).test) == 5


def test_fashion_mnist_bad_header_names_file(fmnist_folder: Path):
    bad = fmnist_folder / "t10k-images-idx3-ubyte.gz"
    bad.write_bytes(gzip.compress(struct.pack(">IIII", 0x0801, 5, 28, 28) + bytes(10)))
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: bad IDX magic"):
        load_source("fashion_mnist", fmnist_folder)
    bad.write_bytes(gzip.compress(idx_bytes(np.zeros((5, 28, 28)))[:-7]))
    with pytest.raises(DataError, match="truncated"):
        load_source("fashion_mnist", fmnist_folder)


def test_shared_fashion_mnist_subset_loads():
    splits = load_source("fashion_mnist", shared("fashion-mnist"))
    assert len(splits.train) + len(splits.val) == 2000 and len(splits.test) == 557
