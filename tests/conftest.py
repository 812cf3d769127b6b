"""Shared fixtures: tiny datasets written in the official formats, and the optional real subsets."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("DEBLUR_SHARED_DATA", REPO.parent / "shared" / "data"))


def smooth_image(rng: np.random.Generator, h: int, w: int, c: int = 3) -> np.ndarray:
    """A photo-like uint8 image: smooth shapes plus a little texture, so blur actually changes it."""
    base = rng.random((max(2, h // 8), max(2, w // 8), c)).astype(np.float32)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, c)
    yy, xx = np.mgrid[0:h, 0:w]
    stripes = (np.sin(xx / 2.5) * np.cos(yy / 3.5))[..., None] * 0.15
    return (np.clip(img + stripes, 0, 1) * 255).astype(np.uint8)


def write_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), image)


@pytest.fixture(autouse=True)
def _own_deblur_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """deblur's cache (measured `--engine auto` choices, exports made on the fly) is the test session's
    own: a choice measured on this machine must not change what a test runs, nor a test the user's."""
    monkeypatch.setenv("DEBLUR_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "deblur-cache"))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def photo_folder(tmp_path: Path, rng: np.random.Generator) -> Path:
    """Eight small colour photos in a folder (one in a sub-folder), for the folder source and the CLI."""
    root = tmp_path / "photos"
    for i in range(8):
        sub = root / "more" if i == 7 else root
        write_png(sub / f"img{i}.png", smooth_image(rng, 40 + 4 * (i % 3), 48))
    return root


def _cifar_batch(images: np.ndarray) -> bytes:
    """A batch pickled like the official archive: bytes keys, channel-planar uint8 rows, protocol 2."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    return pickle.dumps({b"batch_label": b"tiny", b"labels": [0] * len(images), b"data": data,
                         b"filenames": [b"x.png"] * len(images)}, protocol=2)


@pytest.fixture
def cifar_folder(tmp_path: Path, rng: np.random.Generator) -> Path:
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i in range(1, 3):
        (folder / f"data_batch_{i}").write_bytes(_cifar_batch(rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8)))
    (folder / "test_batch").write_bytes(_cifar_batch(rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)))
    return folder


@pytest.fixture
def cifar_tarball(tmp_path: Path, cifar_folder: Path) -> Path:
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(cifar_folder, arcname="cifar-10-batches-py")
    return archive


def idx_bytes(images: np.ndarray) -> bytes:
    n, h, w = images.shape
    return struct.pack(">IIII", 0x00000803, n, h, w) + images.astype(np.uint8).tobytes()


@pytest.fixture
def fmnist_folder(tmp_path: Path, rng: np.random.Generator) -> Path:
    folder = tmp_path / "fashion"
    folder.mkdir()
    for stem, n in (("train-images-idx3-ubyte", 20), ("t10k-images-idx3-ubyte", 5)):
        payload = idx_bytes(rng.integers(0, 256, (n, 28, 28)))
        (folder / f"{stem}.gz").write_bytes(gzip.compress(payload))
        labels = struct.pack(">II", 0x00000801, n) + bytes(n)
        (folder / stem.replace("images-idx3", "labels-idx1")).with_suffix(".gz").write_bytes(gzip.compress(labels))
    return folder


@pytest.fixture
def kaggle_folder(tmp_path: Path, rng: np.random.Generator) -> Path:
    root = tmp_path / "blur-dataset"
    devices = ["IPHONE-SE", "NIKON-D3400-35MM", "HUAWEI-MATE20", "XIAOMI-F1", "IPHONE-7"]
    for n, dev in enumerate(devices):
        ext = ".JPG" if n % 2 == 0 else ".jpg"
        sharp = smooth_image(rng, 36, 44)
        for tag, folder in (("S", "sharp"), ("M", "motion_blurred"), ("F", "defocused_blurred")):
            img = sharp if tag == "S" else cv2.GaussianBlur(sharp, (5, 5), 0)
            path = root / folder / f"{n}_{dev}_{tag}{ext}"
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    return root


def shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not present at {path}")
    return path


@pytest.fixture
def pickle_bomb() -> bytes:
    """A pickle that would run a shell command if unpickled without restriction."""
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /tmp/deblur-pwned",))

    buf = io.BytesIO()
    pickle.dump({b"data": Evil()}, buf, protocol=2)
    return buf.getvalue()


def invoke(*args: object):
    """The real CLI (typer's runner) with every argument as a string."""
    from typer.testing import CliRunner

    from deblur.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def cli_error(result, status: int = 2) -> str:
    """The single `error:` line a failure must end with, and never a traceback."""
    assert result.exit_code == status, result.output
    assert "Traceback" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output
    return errors[0]


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    """A tiny residual U-Net saved as a .keras checkpoint."""
    from deblur.models import MODELS

    path = tmp_path / "model" / "tiny.keras"
    path.parent.mkdir()
    MODELS.get("unet")(3, depth=1, base_filters=2, residual=True).save(path)
    return path


def load_script(name: str):
    """A module from scripts/ (they are not a package), registered so dataclasses and pickling work."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parent.parent / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


EVAL_BATCH = 4  # eval_config's batch: 4 test images x 6 tiles of 16x16 = 24 items, 6 batches, some starting mid-image


@pytest.fixture
def eval_config(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A folder of eight 32x48 photos and a config that scores them in 16x16 tiles, EVAL_BATCH a batch."""
    import yaml

    photos = tmp_path / "photos"
    for i in range(8):  # 32x48: 6 tiles of 16x16 each
        write_png(photos / f"img{i}.png", smooth_image(rng, 32, 48))
    cfg = {"name": "resume", "seed": 3,
           "data": {"source": "folder", "path": str(photos), "crop": 16, "eval_crop": 16,
                    "eval_batch_size": EVAL_BATCH, "val_split": 0.25, "test_split": 0.5,
                    "degradation": {"kind": "gaussian", "sigma": [0.5, 2.5]}},
           "model": {"type": "unet", "depth": 1, "base_filters": 2, "residual": True}}
    path = tmp_path / "resume.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def eval_metrics(folder: Path) -> dict:
    """metrics.json less what a resumed run may report differently: its timing and its notes."""
    import json

    m = json.loads((folder / "metrics.json").read_text())
    for model in m["models"].values():
        model.pop("ms_per_megapixel")
    m.pop("notes"), m.pop("resumed", None)
    return m


def interrupt_eval_after(monkeypatch: pytest.MonkeyPatch, batches: int) -> None:
    """Ctrl-C in the model call of batch number `batches` (0-based): that many batches are scored."""
    from deblur.evaluation import evaluate as ev

    original, calls = ev.restore_items, []

    def restore(model, blurred):
        calls.append(1)
        if len(calls) > batches:
            raise KeyboardInterrupt
        return original(model, blurred)

    monkeypatch.setattr(ev, "restore_items", restore)


DEEP = "[" * 100_000 + "]" * 100_000  # JSON past the parser's recursion limit


def finishes(fn, seconds: float = 20.0) -> object:
    """Run `fn` in a daemon thread and fail (rather than hang the suite) if it blocks, e.g. on a FIFO."""
    import threading

    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller below, whatever it is
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn} blocked for {seconds} s"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")
