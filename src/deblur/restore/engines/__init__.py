"""Runtimes that run a deblur model: Keras itself, or an exported file on a lighter runtime.

`load_engine(path, engine)` picks the runtime from the file (`.keras`, `.onnx`, `.xml` + `.bin`,
`.tflite`, a SavedModel folder). Only the keras and saved_model engines import TensorFlow or
Keras; running any other export needs its runtime alone. A `.keras` checkpoint run on another
engine is exported once into the cache (`deblur.restore.engines.cache`) by `deblur.api.open_engine`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from deblur.core.errors import DeblurError, arg
from deblur.core.registry import Registry
from deblur.restore.engines.base import Engine

AUTO = "auto"
KERAS = "keras"


@dataclass(frozen=True)
class EngineSpec:
    """How one runtime is found and loaded: `loader` is "module:function", imported only when used."""

    loader: str
    suffix: str  # what its files end with ("" for a folder)
    export_name: str  # the file (or folder) name of an on-the-fly export into the cache
    package: str  # the distribution that runs it: its version is part of a cached export's key

    def load(self, path: Path, trust: bool = False) -> Engine:
        """Load `path`; unless `trust`, an export's operations are checked first (deblur.restore.engines.graphcheck)."""
        import importlib

        module, function = self.loader.split(":")
        load = getattr(importlib.import_module(module), function)
        if self.package == KERAS:  # deblur.restore.loading already says what is wrong with a checkpoint (safe mode)
            return load(path)
        try:
            return load(path, trust=trust)
        except (DeblurError, MemoryError, OSError):  # the machine's failures keep their own one-line messages
            raise
        except Exception as exc:  # each runtime raises its own types for a damaged or foreign file
            lines = [s.strip() for s in str(exc).splitlines() if s.strip() and not s.startswith("Exception from ")]
            reason = (lines[0] if lines else type(exc).__name__)[:200]
            raise DeblurError(f"{path}: cannot load this model ({reason})") from None

    def matches(self, path: Path) -> bool:
        if not self.suffix:
            return path.is_dir() and (path / "saved_model.pb").is_file()
        return path.suffix.lower() == self.suffix


ENGINES: Registry[EngineSpec] = Registry("engine")
ENGINES.register(KERAS)(EngineSpec("deblur.restore.engines.keras_engine:load", ".keras", "", "keras"))
ENGINES.register("onnx")(EngineSpec("deblur.restore.engines.onnx_engine:load", ".onnx", "model.onnx", "onnxruntime"))
ENGINES.register("openvino")(EngineSpec("deblur.restore.engines.openvino_engine:load", ".xml", "model.xml", "openvino"))
ENGINES.register("litert")(EngineSpec("deblur.restore.engines.litert_engine:load", ".tflite", "model.tflite",
                                      "ai-edge-litert"))
ENGINES.register("saved_model")(EngineSpec("deblur.restore.engines.saved_model_engine:load", "", "saved_model",
                                           "tensorflow"))

ACCEPTED = ".keras, .onnx, .xml (OpenVINO, with its .bin), .tflite or a SavedModel folder"


def engine_names() -> list[str]:
    return [AUTO, *ENGINES.names()]


def detect(path: Path) -> str:
    """The engine a file or folder is made for; a folder without saved_model.pb or an unknown file is
    refused here (the keras loader names a run folder's best.keras)."""
    if not path.exists():
        raise DeblurError(f"{path}: checkpoint not found")
    if not (path.is_file() or path.is_dir()):  # a runtime would block on a FIFO, or read a device for ever
        raise DeblurError(f"{path}: not a regular file (a pipe or device); give {ACCEPTED}")
    for name in ENGINES:
        if ENGINES.get(name).matches(path):
            return name
    if path.is_dir():
        from deblur.restore.loading import check_checkpoint_file

        check_checkpoint_file(path)  # a run folder: names its best.keras
    raise DeblurError(f"{path}: not a model deblur can run (give {ACCEPTED})")


def needs_keras(path: Path | None, engine: str = AUTO) -> bool:
    """Whether running `path` with `engine` imports Keras/TensorFlow (None is the built-in .keras model);
    the CLI sets up the Keras backend only then."""
    if path is None or engine in (KERAS, "saved_model"):
        return True
    try:
        kind = detect(path)
    except DeblurError:
        return False  # the error is raised again when the engine loads, without Keras
    return kind in (KERAS, "saved_model")


def load_engine(path: str | Path, engine: str = AUTO, trust: bool = False) -> Engine:
    """Load `path` on its own runtime: a `.keras` checkpoint on Keras, an export on the runtime of its
    format (`engine` auto, or that runtime's name). Running a checkpoint on another runtime (exported
    on the fly) and the measured `auto` choice are `deblur.api.open_engine`'s: it sits above both
    this module and `deblur.restore.export`, which runs its exports through here to check them.

    An export is data, not code: unless `trust` (`--trust-model`, or an export deblur itself just made
    and checked), its operations must be on deblur's allow-list, read from the file before its runtime
    loads it (see deblur.restore.engines.graphcheck)."""
    path = Path(path)
    if engine != AUTO:
        ENGINES.get(engine, arg("engine"))
    kind = detect(path)
    if engine not in (AUTO, kind):
        if kind == KERAS:
            raise DeblurError(f"{path}: a .keras checkpoint runs on another engine through deblur.api.open_engine "
                              "(which exports it first), not load_engine")
        raise DeblurError(f"{path}: is a {kind} model; {arg('engine')} {engine} runs it only from a .keras "
                          f"checkpoint (use {arg('engine')} auto or {kind})")
    return ENGINES.get(kind).load(path, trust)


def store_choice(model_path: str | Path, engine: str, measured: dict | None = None) -> Path:
    """Make `engine` what `--engine auto` runs for this `.keras` checkpoint on this machine (from now
    on, until the file, a runtime version or the CPU changes); `measured` is kept beside it for
    reference. Returns the cache file. For `deblur benchmark-formats`, which measures the choice."""
    from deblur.restore.engines.cache import store_choice as store

    ENGINES.get(engine, "engine")  # a misspelt name would be cached, then ignored on every later run
    return store(Path(model_path), engine, measured)


def as_engine(model_or_engine) -> Engine:
    """An Engine as is; a Keras model wrapped in the keras engine (callers that hold a model)."""
    if isinstance(model_or_engine, Engine):
        return model_or_engine
    from deblur.restore.engines.keras_engine import KerasEngine

    return KerasEngine(model_or_engine)


__all__ = ["AUTO", "ENGINES", "Engine", "EngineSpec", "as_engine", "detect", "engine_names", "load_engine",
           "needs_keras", "store_choice"]
