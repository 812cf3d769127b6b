"""deblur.restore.engines.cache: a measured-choice cache that is a FIFO or deep JSON does not stop predict."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

DEEP = "[" * 100_000 + "]" * 100_000  # past the JSON parser's recursion limit

def finishes(fn: Callable[[], object], seconds: float = 20.0) -> object:
    """Run `fn` in a daemon thread and fail (rather than hang the suite) if it blocks, e.g. on a FIFO."""
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn} blocked for {seconds} s"
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box.get("value")


def test_engine_choice_cache_as_a_fifo_or_deep_json_does_not_stop_predict(model_file: Path, tmp_path: Path,
                                                                          monkeypatch):
    from deblur.restore.engines.cache import CHOICE_FILE, cached_choice

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("DEBLUR_CACHE_DIR", str(cache))
    os.mkfifo(cache / CHOICE_FILE)  # every plain `deblur predict` blocked on it
    assert finishes(lambda: cached_choice(model_file)) is None
    (cache / CHOICE_FILE).unlink()
    (cache / CHOICE_FILE).write_text(DEEP)
    assert cached_choice(model_file) is None
