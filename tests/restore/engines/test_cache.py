"""deblur.restore.engines.cache: a measured-choice cache that is a FIFO or deep JSON does not stop predict."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import DEEP, finishes


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
