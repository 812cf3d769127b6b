"""Shared fixtures: tiny datasets written in the official formats, and the optional real subsets."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest

if TYPE_CHECKING:
    import keras

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


def write_resume_config(photos: Path, path: Path, rng: np.random.Generator) -> Path:
    """Eight 32x48 photos in `photos` and, at `path`, a config that scores them in 16x16 tiles, EVAL_BATCH a
    batch."""
    import yaml

    for i in range(8):  # 32x48: 6 tiles of 16x16 each
        write_png(photos / f"img{i}.png", smooth_image(rng, 32, 48))
    cfg = {"name": "resume", "seed": 3,
           "data": {"source": "folder", "path": str(photos), "crop": 16, "eval_crop": 16,
                    "eval_batch_size": EVAL_BATCH, "val_split": 0.25, "test_split": 0.5,
                    "degradation": {"kind": "gaussian", "sigma": [0.5, 2.5]}},
           "model": {"type": "unet", "depth": 1, "base_filters": 2, "residual": True}}
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def eval_config(tmp_path: Path, rng: np.random.Generator) -> Path:
    """A folder of eight 32x48 photos and a config that scores them in 16x16 tiles, EVAL_BATCH a batch."""
    return write_resume_config(tmp_path / "photos", tmp_path / "resume.yaml", rng)


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


def write_yaml(path: Path, cfg: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    return path


# ---- configs shared by the end-to-end tests and the module tests ---------------------------------------------

@pytest.fixture
def tiny_config(tmp_path: Path, photo_folder: Path) -> Path:
    """A depth-1 U-Net trained one epoch on photo_folder (Gaussian blur): the quickest full run."""
    cfg = {"name": "tiny", "seed": 1,
           "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16, "crops_per_image": 2,
                    "batch_size": 8, "val_split": 0.25, "test_split": 0.25,
                    "degradation": {"kind": "gaussian", "sigma": [0.5, 2.5]}},
           "model": {"type": "unet", "depth": 1, "base_filters": 2, "residual": True},
           "train": {"epochs": 1, "learning_rate": 0.003}}
    return write_yaml(tmp_path / "tiny.yaml", cfg)


@pytest.fixture
def mixed_blur_config(tmp_path: Path, photo_folder: Path) -> Path:
    """Two epochs of a depth-2 U-Net on noisy Gaussian and motion blur (the other backends' run)."""
    cfg = {"name": "tiny", "seed": 4,
           "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16, "batch_size": 4,
                    "val_split": 0.25, "test_split": 0.25,
                    "degradation": [{"kind": "gaussian", "sigma": [0.5, 2.5], "noise": 0.01},
                                    {"kind": "motion", "length": [3, 7]}]},
           "model": {"type": "unet", "depth": 2, "base_filters": 4, "residual": True},
           "train": {"epochs": 2, "reduce_lr": {"enabled": False}}}
    return write_yaml(tmp_path / "tiny.yaml", cfg)


@pytest.fixture
def dist_config(tmp_path: Path, photo_folder: Path) -> Path:
    """One step of one epoch, global batch 8, no evaluation: for the distributed runs."""
    cfg = {
        "name": "dist", "seed": 3,
        "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16, "crops_per_image": 4,
                 "batch_size": 8, "val_split": 0.25, "test_split": 0.25,
                 "degradation": {"kind": "gaussian", "sigma": [0.5, 2.5]}},
        "model": {"type": "unet", "depth": 2, "base_filters": 4, "residual": True},
        "train": {"epochs": 1, "steps_per_epoch": 1, "learning_rate": 0.003, "evaluate_after": False,
                  "reduce_lr": {"enabled": False}, "early_stopping": {"enabled": False}},
    }
    return write_yaml(tmp_path / "dist.yaml", cfg)


@pytest.fixture
def shard_config(tmp_path: Path, photo_folder: Path) -> Path:
    cfg = {
        "name": "shard", "seed": 3,
        "data": {"source": "folder", "path": str(photo_folder), "crop": 16, "eval_crop": 16, "batch_size": 2,
                 "crops_per_image": 2, "val_split": 0.25, "test_split": 0.0,
                 "degradation": {"kind": "gaussian", "sigma": 1.0}},
        "model": {"type": "unet", "depth": 1, "base_filters": 2, "residual": True},
        "train": {"epochs": 1, "evaluate_after": False, "reduce_lr": {"enabled": False},
                  "early_stopping": {"enabled": False}},
    }
    return write_yaml(tmp_path / "shard.yaml", cfg)


@pytest.fixture
def scored_config(tmp_path: Path, photo_folder: Path) -> Path:
    cfg = {"name": "hostile", "seed": 1,
           "data": {"source": "folder", "path": str(photo_folder), "eval_crop": 16, "val_split": 0.25,
                    "test_split": 0.25, "degradation": {"kind": "gaussian", "sigma": [0.5, 2.5]}},
           "model": {"type": "unet", "depth": 1, "base_filters": 2, "residual": True}}
    return write_yaml(tmp_path / "hostile.yaml", cfg)


# ---- subprocesses: other backends without TensorFlow, two logical CPUs -----------------------------------------

NO_TF = REPO / "tests" / "no_tensorflow"


def no_tf_env(backend: str, **extra: str) -> dict[str, str]:
    """The environment of a subprocess on `backend` in which `import tensorflow` fails."""
    path = os.pathsep.join([str(NO_TF), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": path, "CUDA_VISIBLE_DEVICES": "-1", **extra}


# Runs deblur's CLI with the CPU split into two logical devices (possible only before TF starts).
TWO_CPUS = (
    "import sys, tensorflow as tf;"
    "cpu = tf.config.list_physical_devices('CPU')[0];"
    "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2);"
    "from deblur.cli import main; sys.argv[0] = 'deblur'; main()"
)


def run_on_two_cpus(args: list[str], env: dict[str, str] | None = None, code: str = TWO_CPUS):
    """`python -c CODE ARGS` (by default deblur's CLI on two logical CPUs), output and errors on one pipe."""
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "CUDA_VISIBLE_DEVICES": "-1", **(env or {})})


def wait_ok(proc, timeout: float = 240) -> str:
    """The output of a process from run_on_two_cpus, which must exit 0."""
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


# ---- the CLI's outputs and files -------------------------------------------------------------------------------

def quiet_error(result, status: int = 2) -> str:
    """cli_error, and no library warning either."""
    assert "Warning" not in result.output, result.output
    return cli_error(result, status)


def strict_json(path: Path) -> dict:
    """json.loads that fails on NaN/Infinity, which Python writes by default and JSON does not allow."""
    import json

    def refuse(token: str) -> None:
        raise AssertionError(f"{path} holds {token}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under root (links not followed): its content hash and mode."""
    import hashlib

    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if p.is_symlink():
                out[str(p.relative_to(root))] = (os.readlink(p), 0)
            else:
                out[str(p.relative_to(root))] = (hashlib.sha1(p.read_bytes()).hexdigest(), p.stat().st_mode)
    return out


def save_photo(path: Path, image: np.ndarray, **kwargs: object) -> Path:
    """`image` saved by Pillow (format by suffix, `kwargs` to Image.save)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, **kwargs)
    return path


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header is rewritten to claim a huge size: a decompression bomb's header."""
    import zlib

    ok, buf = cv2.imencode(".png", np.zeros((4, 4), np.uint8))
    assert ok
    data = bytearray(buf.tobytes())
    ihdr = data[12:29]  # chunk type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    return bytes(data)


def shifted_pair(rng, dx: float, dy: float, h: int = 120, w: int = 160):
    """A blurred copy of a photo moved by (dx, dy), and the photo, as float32 in [0, 1]."""
    sharp = smooth_image(rng, h, w).astype(np.float32) / 255
    moved = cv2.warpAffine(sharp, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), borderMode=cv2.BORDER_REFLECT)
    return cv2.GaussianBlur(moved, (5, 5), 1.0), sharp


def marked_run_folder(tmp_path: Path) -> Path:
    """tmp_path/run, marked as deblur's own, whose config names a data folder that does not exist."""
    from deblur.core.run_marker import MARKER, MARKER_TEXT

    run = tmp_path / "run"
    run.mkdir()
    (run / MARKER).write_text(MARKER_TEXT)
    (run / "config.yaml").write_text(
        "name: x\ndata: {source: folder, path: " + str(tmp_path / "missing") + "}\nmodel: {type: unet}\n")
    return run


# ---- models and exports ----------------------------------------------------------------------------------------

def tiny_unet(depth: int = 1) -> keras.Model:
    from deblur.models import MODELS

    return MODELS.get("unet")(3, depth=depth, base_filters=2, residual=True)


def nan_unet() -> keras.Model:
    """What `train.learning_rate=1e12` leaves in last.keras: every weight NaN, so every output NaN."""
    model = tiny_unet()
    model.set_weights([np.full(w.shape, np.nan, w.dtype) for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny residual U-Net (pooling factor 2) saved as a .keras checkpoint, shared by the module."""
    import keras

    from deblur.models import MODELS

    keras.utils.set_random_seed(0)  # the same weights every run
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    MODELS.get("unet")(3, depth=1, base_filters=2, residual=True).save(path)
    return path


def needs(fmt: str) -> None:
    """Skip unless the runtime of export format `fmt` is installed."""
    from deblur.restore.export import FORMATS, installed_formats

    if fmt not in installed_formats():
        pytest.skip(f"{fmt}: its runtime is not installed ({FORMATS.get(fmt).missing_module()})")


# engine -> (Keras export format, file name, the module that runs it)
EXPORTS = {
    "onnx": ("onnx", "m.onnx", "onnxruntime"),
    "openvino": ("openvino", "m.xml", "openvino"),
    "litert": ("litert", "m.tflite", "ai_edge_litert"),
    "saved_model": ("tf_saved_model", "saved", "tensorflow"),
}

LIGHT = ["onnx", "openvino", "litert"]  # the engines that must run without TensorFlow


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    """A tiny residual U-Net (size multiple 2) as .keras and exported by Keras itself to every format
    whose converter is installed, each with a sidecar giving its multiple."""
    import importlib.util
    import json

    import keras

    from deblur.models import MODELS
    from deblur.restore.exported import sidecar_path

    root = tmp_path_factory.mktemp("exports")
    model = MODELS.get("unet")(3, depth=1, base_filters=2, residual=True)
    found = {"keras": root / "m.keras"}
    model.save(found["keras"])
    signature = [keras.InputSpec(shape=(None, None, None, 3), dtype="float32")]
    for engine, (fmt, name, module) in EXPORTS.items():
        if importlib.util.find_spec(module) is None:
            continue
        model.export(str(root / name), format=fmt, input_signature=signature, verbose=False)
        sidecar_path(root / name).write_text(json.dumps({"format": engine, "channels": 3, "multiple": 2,
                                                         "fixed_size": None}))
        found[engine] = root / name
    return found


def exported_as(exports: dict[str, Path], engine: str) -> Path:
    """The export for `engine` from the exports fixture; skipped where its runtime is not installed."""
    if engine not in exports:
        pytest.skip(f"{EXPORTS[engine][2]} is not installed")
    return exports[engine]


def hostile_saved_model(folder: Path, body: str, target: Path | None = None) -> Path:
    """A tiny SavedModel (tf.Module + tf.function) whose serving function does `body` before returning
    its input: what a hostile export would hide in an image restorer."""
    import tensorflow as tf

    class Hostile(tf.Module):
        @tf.function
        def inner(self, x: tf.Tensor) -> tf.Tensor:  # a nested function: found in the function library
            if body == "loop":
                tf.while_loop(lambda i: i >= 0, lambda i: i + 1, [tf.constant(0)])
            elif body == "py_func":
                tf.py_function(lambda: 0.0, [], tf.float32)
            elif body == "print":
                tf.print("hello")
            return x

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def __call__(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            if body == "write":
                tf.io.write_file(str(target), "pwned")
            return {"out": self.inner(x)}

    module = Hostile()
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.__call__})
    return folder


# ---- data: packs, streamed sources, files ----------------------------------------------------------------------

def pack_cli(data: Path, out: Path, *extra: object) -> Path:
    """`deblur pack DATA OUT EXTRA...`, which must succeed; OUT."""
    result = invoke("pack", data, out, *extra)
    assert result.exit_code == 0, result.output
    return out


def packed_photos(tmp_path: Path, photo_folder: Path) -> tuple[Path, object]:
    """photo_folder packed into tmp_path/pack, and the pack loaded whole (no val or test split)."""
    from deblur.data import packed

    out = tmp_path / "pack"
    result = invoke("pack", photo_folder, out)
    assert result.exit_code == 0, result.output
    return out, packed.load(out, "folder", seed=0, val_split=0.0, test_split=0.0)


def stream_cfg(source: str, path: Path, **data):
    """A whole config (from_dict) for `source` at `path`: 16x16 crops and tiles, 20% val and test."""
    from deblur.config import from_dict

    base = {"source": source, "path": str(path), "crop": 16, "eval_crop": 16, "batch_size": 4,
            "eval_batch_size": 3, "val_split": 0.2, "test_split": 0.2,
            "degradation": {"kind": "gaussian", "sigma": [0.5, 2.0]}}
    return from_dict({"data": {**base, **data}})


def streamed_and_held(path: Path, **data):
    """A folder's config and its splits twice: streamed (the default) and held in memory."""
    from deblur.data.base import load_splits
    from deblur.data.store import ImageStore

    cfg = stream_cfg("folder", path, **data)
    streamed = load_splits(cfg.data, cfg.seed)
    held = load_splits(stream_cfg("folder", path, in_memory=True, **data).data, cfg.seed)
    assert isinstance(streamed.train.sharp, ImageStore) and not isinstance(held.train.sharp, ImageStore)
    return cfg, streamed, held


def stream_digest(batches) -> str:
    """One hash of every array of every batch (tuples or dicts), in order."""
    import hashlib

    h = hashlib.sha256()
    for batch in batches:
        for part in (batch.values() if isinstance(batch, dict) else batch):
            h.update(np.ascontiguousarray(np.asarray(part)).tobytes())
    return h.hexdigest()


def blur_sharp_folder(root: Path, rng: np.random.Generator, gopro: bool) -> Path:
    """blur/ + sharp/ (flat) or GoPro's train|test/<sequence>/blur|sharp, of small PNG pairs."""
    layout = [("train/seqA", 3), ("train/seqB", 3), ("train/seqC", 2), ("test/seqD", 2)] if gopro else [("", 8)]
    for folder, n in layout:
        for k in range(n):
            sharp = smooth_image(rng, 36, 40)
            write_png(root / folder / "sharp" / f"{k:03d}.png", sharp)
            write_png(root / folder / "blur" / f"{k:03d}.png", cv2.GaussianBlur(sharp, (5, 5), 0))
    return root


def truncate(path: Path) -> None:
    """Keep a file's first 60 bytes: a header, no image."""
    path.write_bytes(path.read_bytes()[:60])


def noisy_image(rng: np.random.Generator, h: int, w: int, c: int = 3) -> np.ndarray:
    """A uint8 image of smooth shapes plus 10% noise (the recorded eval sets' images)."""
    base = rng.random((max(2, h // 6), max(2, w // 6), c)).astype(np.float32)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC).reshape(h, w, c)
    return (np.clip(img + rng.random((h, w, c), dtype=np.float32) * 0.1, 0, 1) * 255).astype(np.uint8)


def write_image(path: Path, image: np.ndarray) -> None:
    """PNG or JPEG by suffix, through OpenCV with fixed settings (RGB(A) in)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    params = [cv2.IMWRITE_JPEG_QUALITY, 90] if path.suffix == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    assert cv2.imwrite(str(path), image, params)


def load_source(source: str, path, **options):
    """A data source's splits (seed 1, 20% val and test) from `path` (None: the source's own images)."""
    from deblur.data.sources import SOURCES

    return SOURCES.get(source).load(None if path is None else str(path), seed=1, val_split=0.2,
                                    test_split=0.2, **options)


def psnr_of(a, b) -> float:
    """PSNR in dB of `a` against `b`, both in [0, 1]."""
    return 10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2))
