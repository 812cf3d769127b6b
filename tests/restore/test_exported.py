"""deblur.restore.exported: a sidecar that is a FIFO or deep JSON reads as none."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import DEEP, finishes
from deblur.restore import exported


def test_export_sidecar_as_a_fifo_or_deep_json_reads_as_none(tmp_path: Path):
    out = tmp_path / "m.onnx"
    os.mkfifo(exported.sidecar_path(out))
    assert finishes(lambda: exported.read_sidecar(out)) is None
    exported.sidecar_path(out).unlink()
    exported.sidecar_path(out).write_text(DEEP)
    assert exported.read_sidecar(out) is None
