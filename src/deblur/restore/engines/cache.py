"""deblur's per-user cache: the measured engine choice for `--engine auto`, and exports made on the fly.

`--engine auto` on a `.keras` checkpoint runs the runtime that was measured fastest for that very file
on this machine with these runtime versions (`deblur benchmark-formats` measures and calls
`deblur.restore.engines.store_choice`, which checks the name and stores it here); never one assumed to be
faster. Nothing measured means Keras.
The cache lives in $DEBLUR_CACHE_DIR, else $XDG_CACHE_HOME/deblur, else ~/.cache/deblur.
"""

from __future__ import annotations

import json
import os
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from deblur.core.digest import file_sha256

CHOICE_FILE = "engine-choice.json"
EXPORTS = "exports"
# the packages whose versions decide which runtime is fastest (a new release can change the answer)
RUNTIME_PACKAGES = ("keras", "tensorflow", "jax", "torch", "onnxruntime", "openvino", "ai-edge-litert")


def cache_dir() -> Path:
    if os.environ.get("DEBLUR_CACHE_DIR"):
        return Path(os.environ["DEBLUR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "deblur"


def runtime_versions() -> dict[str, str]:
    """Installed versions of the runtimes, read from package metadata (nothing is imported)."""
    found = {}
    for name in RUNTIME_PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def cpu_name() -> str:
    """The CPU model and core count: a choice measured on another machine does not carry over."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
    except OSError:
        pass
    return f"{model} x{os.cpu_count()}"


def choice_key(model_path: Path) -> str:
    """What a measurement is valid for: this checkpoint's bytes, these runtime versions, this CPU."""
    versions = ",".join(f"{k}={v}" for k, v in sorted(runtime_versions().items()))
    keras_backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    return f"{file_sha256(model_path)}|{versions}|KERAS_BACKEND={keras_backend}|{cpu_name()}"


def _read_choices() -> dict[str, Any]:
    from deblur.core.safefile import UnsafeFile, read_json

    try:  # checked before it is read: a FIFO here blocked every plain `deblur predict`
        data = read_json(cache_dir() / CHOICE_FILE, what="engine-choice cache")
    except (OSError, UnsafeFile):  # none yet, or damaged: measure again
        return {}
    return data if isinstance(data, dict) else {}


def cached_choice(model_path: Path) -> str | None:
    """The engine measured fastest for this checkpoint here, or None if it was never measured."""
    entry = _read_choices().get(choice_key(Path(model_path)))
    engine = entry.get("engine") if isinstance(entry, dict) else None
    return engine if isinstance(engine, str) else None


def store_choice(model_path: str | Path, engine: str, measured: dict[str, Any] | None = None) -> Path:
    """Record `engine` as the one `--engine auto` runs for this checkpoint on this machine (with what
    was measured, for the curious); returns the cache file. Written atomically: another process may
    be reading it."""
    from deblur.core.atomic import atomic_write_bytes

    choices = _read_choices()
    choices[choice_key(Path(model_path))] = {"engine": engine, "model": str(Path(model_path).resolve()),
                                             **(measured or {})}
    path = cache_dir() / CHOICE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(choices, indent=1, sort_keys=True) + "\n").encode())
    return path


def export_dir(model_path: Path, engine: str, package: str) -> Path:
    """Where an on-the-fly export of this checkpoint for `engine` (run by the distribution `package`)
    lives: keyed by the file's content and the versions of deblur, Keras and the runtime, so that an
    upgrade of any of them exports again instead of running what an older one made."""
    from deblur import __version__

    versions = [f"deblur-{__version__}", *(f"{p}-{_installed(p)}" for p in dict.fromkeys(["keras", package]))]
    return cache_dir() / EXPORTS / file_sha256(model_path) / "_".join([engine, *versions])


def _installed(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "none"
