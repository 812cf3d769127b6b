"""deblur.restore.export: default output names, and overwrite refused for files without deblur's sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deblur.core.errors import DeblurError
from deblur.restore import exported
from deblur.restore.export import FORMATS, default_output, sha256


def test_default_output_names() -> None:
    assert default_output(Path("runs/a/best.keras"), "onnx") == Path("runs/a/best.onnx")
    assert default_output(Path("runs/a/best.keras"), "saved_model") == Path("runs/a/best_saved_model")
    assert default_output(None, "litert") == Path("deblur_default.tflite")


@pytest.mark.parametrize("fmt", ["openvino", "onnx"])
def test_file_export_overwrite_refuses_folders_and_files_without_deblurs_sidecar(fmt: str, tmp_path: Path):
    """Checked without the runtimes: what `deblur export --overwrite` would replace beside the file."""
    from deblur.restore.export import check_output

    spec = FORMATS.get(fmt)
    out = tmp_path / f"m{spec.suffix}"
    beside = [*spec.files(out)[1:], exported.sidecar_path(out)]
    for other in beside:  # a folder where a companion or the sidecar goes was deleted with rmtree
        other.mkdir()
        (other / "keep.txt").write_text("keep")
        with pytest.raises(DeblurError, match="is a folder"):
            check_output(spec, out, overwrite=True)
        assert (other / "keep.txt").read_text() == "keep"
        (other / "keep.txt").unlink()
        other.rmdir()
    out.write_bytes(b"the user's own model")  # no sidecar: not deblur's
    with pytest.raises(DeblurError, match="no deblur"):
        check_output(spec, out, overwrite=True)
    sidecar = exported.sidecar_path(out)
    sidecar.write_text(json.dumps({"format": fmt, "files": {out.name: "0" * 64}}))
    with pytest.raises(DeblurError, match="changed since"):
        check_output(spec, out, overwrite=True)

    listed = {p.name: sha256(p) for p in spec.files(out) if p.exists()}
    sidecar.write_text(json.dumps({"format": fmt, "files": listed}))
    check_output(spec, out, overwrite=True)  # deblur's own export: replaceable
