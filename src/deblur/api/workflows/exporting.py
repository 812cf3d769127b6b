"""`deblur.export` and `deblur.benchmark_formats`: a model as SavedModel, ONNX, OpenVINO or LiteRT,
checked against Keras, and what each format costs on this machine."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deblur.api.workflows.common import Say, optional_path, start_backend
from deblur.api.workflows.common import to_stderr as _to_stderr
from deblur.core.errors import DeblurError, arg

if TYPE_CHECKING:
    from deblur.evaluation.format_bench import Row
    from deblur.restore.export import ExportResult


def export(checkpoint: str | Path | None = None, *, fmt: str, output: str | Path | None = None,
           overwrite: bool = False, warn: Say = _to_stderr) -> ExportResult:
    """Export a `.keras` checkpoint (None: the built-in default model) to `fmt` (saved_model, onnx,
    openvino or litert) at `output` (default: beside the checkpoint, e.g. best.onnx), as `deblur
    export` does: converted with Keras's model.export, then kept only if it matches Keras within one
    8-bit level on a fixed blurred photo (else `deblur.restore.export.ExportCheckError`). A sidecar
    <output>.deblur.json records what deblur needs to run it."""
    from deblur.restore.export import FORMATS, default_output, export_model, require_runtime

    require_runtime(FORMATS.get(fmt, arg("fmt")))  # before TensorFlow starts
    start_backend()
    model = optional_path("checkpoint", checkpoint)
    out = optional_path("output", output) or default_output(model, fmt)
    if model is None:
        warn(f"model: the built-in default model (pass a {arg('checkpoint')} to export your own)")
    return export_model(model, fmt, out, overwrite=overwrite)


@dataclass
class FormatBench:
    """What `deblur.benchmark_formats` measured: one row per engine (Keras first), the settings, the
    fastest row, the installed formats left out (then `engine auto` was not changed), the JSON report
    written (if any)."""

    rows: list[Row]
    settings: dict[str, Any]
    fastest: Row | None
    left_out: list[str] = field(default_factory=list)
    json_path: Path | None = None

    @property
    def chosen(self) -> str | None:
        """The engine `engine auto` now runs for the checkpoint here, if this run set it."""
        return self.fastest.format if self.fastest is not None and not self.left_out else None

    def lines(self) -> list[str]:
        """What `deblur benchmark-formats` prints: the settings, the table and what `engine auto` runs now."""
        from deblur.evaluation.format_bench import table

        s, auto = self.settings, f"{arg('engine')} auto"
        out = [f"{s['checkpoint']}: ms/MP at {s['size']}x{s['size']} in one call (median of {s['runs']}); tiled ms/MP "
               f"on a {s['big_megapixels']:g} MP photo in {s['tile']}-pixel tiles; max diff from Keras on the check "
               "photo, in 8-bit levels before rounding", table(self.rows)]
        if self.fastest is None:
            return [*out, f"no engine ran; {auto} is unchanged"]
        if self.left_out:
            return [*out, f"fastest of these: {self.fastest.format}; {auto} is unchanged: only a run over every "
                          f"installed format sets it ({', '.join(self.left_out)} not measured)"]
        return [*out, f"{auto} now runs {self.fastest.format} for this checkpoint on this machine"]


def is_benchmark_report(path: Path) -> bool:
    """Whether `path` is a regular file holding the JSON `deblur benchmark-formats --json` writes."""
    from deblur.core.safefile import UnsafeFile, read_json

    if path.is_symlink():
        return False
    try:
        data = read_json(path, what="benchmark report")
    except (OSError, UnsafeFile):
        return False
    return isinstance(data, dict) and {"rows", "engine_auto", "versions"} <= data.keys()


def _check_json_target(path: Path, overwrite: bool) -> None:
    json_arg = arg("json_path")
    if os.path.lexists(path) and not overwrite:
        raise DeblurError(f"{json_arg}: {path} already exists; pass {arg('overwrite=True')} to replace it")
    if os.path.lexists(path) and not is_benchmark_report(path):
        raise DeblurError(f"{json_arg}: {path} is not a report deblur benchmark-formats wrote; {arg('overwrite=True')} "
                          f"replaces only deblur's own: move it aside or choose another {json_arg}")
    if not path.parent.is_dir():
        raise DeblurError(f"{json_arg}: the folder {path.parent} does not exist")


def benchmark_formats(checkpoint: str | Path | None = None, *, formats: Sequence[str] | None = None,
                      size: int = 1024, big: float = 24.0, runs: int = 3, json_path: str | Path | None = None,
                      overwrite: bool = False, log: Say = _to_stderr) -> FormatBench:
    """Export `checkpoint` (None: the built-in model) to each format in `formats` (names, or
    comma-separated lists; default: every installed one) and measure file size, export time, speed on a
    `size` x `size` image (median of `runs`) and on a `big`-megapixel photo in tiles, peak memory (each
    in its own process) and the difference from Keras, as `deblur benchmark-formats` does. The fastest
    on the tiled photo becomes `engine auto`'s choice for the checkpoint here, when every installed
    format was measured. `json_path` also writes the report as JSON (an existing file only with
    `overwrite`, and only one this function wrote)."""
    from deblur.evaluation.format_bench import report, run_benchmark, store_fastest
    from deblur.imaging.imageio import atomic_write_text
    from deblur.restore.export import checkpoint_path

    target = optional_path("json_path", json_path)
    if target is not None:
        _check_json_target(target, overwrite)
    if isinstance(formats, str):
        formats = [formats]
    names = [n.strip() for item in formats or [] for n in item.split(",") if n.strip()] or None
    start_backend()
    model = optional_path("checkpoint", checkpoint)
    rows, settings = run_benchmark(model, names, size, big, runs, log=log)
    best, left_out = store_fastest(checkpoint_path(model), rows)
    result = FormatBench(rows, settings, best, left_out)
    if target is not None:
        atomic_write_text(target, json.dumps(report(rows, settings, result.chosen), indent=2) + "\n")
        result.json_path = target
    return result
