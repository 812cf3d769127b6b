"""deblur.core.safefile: small files deblur reads (JSON, markers) are refused when they are FIFOs, devices,
huge or nested too deeply."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import DEEP, finishes


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
