"""Fetching an official dataset through Keras's own downloader, or saying exactly what to do offline."""

from __future__ import annotations

from pathlib import Path

from deblur.core.errors import DataError


def keras_cache() -> Path:
    """Keras's dataset cache (`$KERAS_HOME/datasets`, by default `~/.keras/datasets`)."""
    import os

    home = os.environ.get("KERAS_HOME") or str(Path.home() / ".keras")
    return Path(home).expanduser() / "datasets"


def download(fname: str, origin: str, cache_subdir: str, hint: str, extract: bool = False) -> Path:
    """Download `origin` into Keras's cache; on any failure, raise one line that says what to put where."""
    import keras

    try:
        return Path(keras.utils.get_file(fname, origin=origin, cache_dir=str(keras_cache().parent),
                                         cache_subdir=cache_subdir, extract=extract))
    except Exception as exc:  # network errors come in many types (URLError, HTTPError, OSError, ...)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"could not download {origin} ({reason[:120]}). {hint}") from None
