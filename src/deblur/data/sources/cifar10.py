"""CIFAR-10 from the official python archive, read without ever unpickling arbitrary objects.

Lookup order: `data.path` (the archive, its extracted `cifar-10-batches-py/` folder, or a folder that
holds either), then Keras's cache, then a download through Keras. The official test batch is the
test split; validation is cut from the training batches by seed.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from deblur.core.errors import DataError
from deblur.data.base import SOURCES, ImageSet, Source, Splits, describe_counts, split_indices
from deblur.data.sources._download import download, keras_cache

ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def hint() -> str:
    return (f"Put {ARCHIVE} (from {ORIGIN}) or its extracted {FOLDER}/ folder in {keras_cache()}, "
            "or set data.path to it.")


# The only globals a CIFAR batch needs: numpy array reconstruction (numpy 1 and 2 module names)
# and the codec Python 3 uses for byte strings in protocol-2 pickles.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def read_batch(stream: io.BufferedIOBase | io.BytesIO, name: str) -> np.ndarray:
    """Decode one pickled batch into N x 32 x 32 x 3 uint8 images."""
    try:
        batch = _RestrictedUnpickler(stream, encoding="bytes").load()
        batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}
        data = np.asarray(batch["data"], dtype=np.uint8)
        return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{name}: not a CIFAR-10 batch ({exc}); the file may be corrupt or malicious") from None
    except Exception as exc:
        raise DataError(f"{name}: not a CIFAR-10 batch ({type(exc).__name__}: {exc})") from None


def _read_file(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        return read_batch(f, str(path))


def _read_folder(folder: Path) -> tuple[list[np.ndarray], np.ndarray]:
    train = [_read_file(folder / b) for b in TRAIN_BATCHES if (folder / b).is_file()]
    if not train or not (folder / "test_batch").is_file():
        raise DataError(f"{folder}: expected data_batch_1..5 and test_batch in this folder. {hint()}")
    return train, _read_file(folder / "test_batch")


def _read_archive(archive: Path) -> tuple[list[np.ndarray], np.ndarray]:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}

            def get(name: str) -> np.ndarray:
                f = tar.extractfile(members[name])  # a file member (members holds only those): never None
                if f is None:
                    raise DataError(f"{archive}:{name}: not a file")
                return read_batch(io.BytesIO(f.read()), f"{archive}:{name}")

            train = [get(b) for b in TRAIN_BATCHES if b in members]
            if not train or "test_batch" not in members:
                raise DataError(f"{archive}: no CIFAR-10 batches inside. {hint()}")
            return train, get("test_batch")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{archive}: not a readable tar.gz archive ({exc}). {hint()}") from None


def locate(path: str | None) -> Path:
    """The archive or batch folder to read, following the documented lookup order."""
    candidates: list[Path] = []
    if path:
        p = Path(path).expanduser()
        if not p.exists():
            raise DataError(f"{p}: not found. {hint()}")
        candidates += [p, p / FOLDER, p / ARCHIVE]
    else:
        cache = keras_cache()
        candidates += [cache / FOLDER, cache / "cifar-10-batches-py-target" / FOLDER, cache / ARCHIVE,
                       cache / "cifar-10-batches-py.tar.gz"]
    for c in candidates:
        if (c.is_dir() and (c / "test_batch").is_file()) or (c.is_file() and tarfile.is_tarfile(c)):
            return c
    if path:
        raise DataError(f"{path}: no CIFAR-10 data there. {hint()}")
    return download(ARCHIVE, ORIGIN, "datasets", hint())


def options() -> None:
    """CIFAR-10 has no options: its split and image size are fixed by the dataset."""


def load(path: str | None, *, seed: int, val_split: float, test_split: float) -> Splits:
    where = locate(path)
    train_batches, test = _read_folder(where) if where.is_dir() else _read_archive(where)
    train_all = np.concatenate(train_batches)
    tr, va, _ = split_indices(len(train_all), val_split, 0.0, seed)
    names = [f"train_{i:05d}" for i in range(len(train_all))]
    train = ImageSet(sharp=train_all, names=names).subset(tr)
    val = ImageSet(sharp=train_all, names=names).subset(va)
    test_set = ImageSet(sharp=test, names=[f"test_{i:05d}" for i in range(len(test))])
    splits = Splits(train=train, val=val, test=test_set, channels=3, description="")
    splits.description = describe_counts("CIFAR-10", splits, f" ({where})")
    return splits


SOURCES.register("cifar10")(Source(load=load, options=options, path="optional",
                                   summary="CIFAR-10 (official python archive), blurred on the fly"))
