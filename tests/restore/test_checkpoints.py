"""deblur.restore.checkpoints: checkpoints are written atomically."""

from pathlib import Path

import pytest


@pytest.mark.parametrize("fail_at", ["save", "replace"])
def test_checkpoints_are_written_atomically(tmp_path: Path, monkeypatch, fail_at):
    from deblur.core import atomic
    from deblur.models import MODELS
    from deblur.restore import checkpoints

    model = MODELS.get("unet")(3, depth=1, base_filters=2)
    path = tmp_path / "best.keras"
    path.write_bytes(b"previous good checkpoint")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    if fail_at == "save":
        monkeypatch.setattr(type(model), "save", boom)
    else:
        monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError):
        checkpoints.atomic_save(model, path)
    assert path.read_bytes() == b"previous good checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras"]
