"""deblur.core.safefile: small files deblur reads (JSON, markers) are refused when they are FIFOs, devices,
huge or nested too deeply."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

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


def test_safe_reads_refuse_fifos_devices_huge_and_deep_files(tmp_path: Path):
    from deblur.core.safefile import UnsafeFile, read_json, read_small

    fifo = tmp_path / "x.json"
    os.mkfifo(fifo)
    with pytest.raises(UnsafeFile, match="not a regular file"):
        finishes(lambda: read_json(fifo))
    with pytest.raises(UnsafeFile, match="not a regular file"):
        read_small("/dev/zero")
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(20 << 20)  # sparse
    with pytest.raises(UnsafeFile, match="too large"):
        read_json(big)
    deep = tmp_path / "deep.json"
    deep.write_text(DEEP)
    with pytest.raises(UnsafeFile, match="nested too deeply"):
        read_json(deep)
