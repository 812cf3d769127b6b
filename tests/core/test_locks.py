"""deblur.core.locks: a folder lock held by a killed process does not block the next job."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from deblur.core.locks import FolderBusy, FolderLock


def test_the_lock_of_a_killed_process_does_not_block(tmp_path: Path):
    folder = tmp_path / "run"
    folder.mkdir()
    code = ("import sys, time; from deblur.core.locks import FolderBusy, FolderLock; FolderLock(sys.argv[1]); "
            "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(FolderBusy, match="in use"):
            FolderLock(folder)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    FolderLock(folder).release()  # the kernel dropped the dead process's lock
