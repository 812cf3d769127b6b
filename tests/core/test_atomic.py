"""deblur.core.atomic: staging folders and written files are deblur's own, with the permissions open() would give."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from deblur.core import atomic
from deblur.models import MODELS


def test_stale_staging_folders_are_only_deblurs_own(tmp_path: Path):
    from deblur.core.atomic import clean_stale_temp_dirs

    mine = tmp_path / ".deblur-export-my-notes"  # starts like deblur's staging folders
    stale = tmp_path / ".deblur-export-abc123_x"  # mkdtemp's shape: 8 characters
    for folder in (mine, stale):
        folder.mkdir()
        (folder / "f").write_text("x")
        os.utime(folder, (time.time() - 7200, time.time() - 7200))
    assert clean_stale_temp_dirs(tmp_path, ".deblur-export-") == 1
    assert (mine / "f").exists() and not stale.exists()


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_written_files_get_the_permissions_open_would_give(tmp_path: Path, umask: int):
    old = os.umask(umask)
    try:
        atomic.atomic_write_bytes(tmp_path / "r.json", b"{}")
        from deblur.restore.checkpoints import atomic_save

        atomic_save(MODELS.get("unet")(1, depth=1, base_filters=2), tmp_path / "best.keras")
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    want = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert want == 0o666 & ~umask
    for name in ("r.json", "best.keras"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == want, name
