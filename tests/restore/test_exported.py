"""deblur.restore.exported: a sidecar that is a FIFO or deep JSON reads as none."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from deblur.restore import exported

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


def test_export_sidecar_as_a_fifo_or_deep_json_reads_as_none(tmp_path: Path):
    out = tmp_path / "m.onnx"
    os.mkfifo(exported.sidecar_path(out))
    assert finishes(lambda: exported.read_sidecar(out)) is None
    exported.sidecar_path(out).unlink()
    exported.sidecar_path(out).write_text(DEEP)
    assert exported.read_sidecar(out) is None
