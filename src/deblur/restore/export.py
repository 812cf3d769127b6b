"""`deblur export`: a checkpoint as a SavedModel, ONNX, OpenVINO or LiteRT file, checked before it is kept.

The conversion is Keras 3's own `model.export` (no hand-written graph code). Height and width stay
dynamic (an input signature with None H/W) in every format, so `deblur predict` pads and tiles
exports as it does Keras; only a fixed-size model (a dense bottleneck) is exported at its size. Each
export is then run with its own runtime on a fixed blurred photo and compared with Keras after 8-bit
rounding; one level of difference or more and the export is removed. Files are written to a locked
temporary folder beside the target and moved into place only after the check, so nothing half-made
is ever left (a killed export's folder is removed by the next export into that folder).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deblur.core.atomic import clean_stale_temp_dirs, locked_temp_dir
from deblur.core.errors import DeblurError, arg
from deblur.core.registry import Registry
from deblur.restore import exported

# After both are rounded to 8 bits the export may differ from Keras by one level at most: a float
# difference of 1e-7 already flips a value lying on a rounding boundary (the built-in model's ONNX
# export: 2e-5 levels before rounding, 1 after), while a real conversion error shows as 2 or more.
CHECK_LEVELS = 1
STAGING_PREFIX = ".deblur-export-"  # the temporary folder beside the target
CHECK_SAMPLE = "chelsea"  # the fixed test photo (scikit-image's, shipped in its wheel)
CHECK_BLUR = {"kind": "gaussian", "sigma": 2.0, "noise": 0.0, "shot": 0.0, "jpeg": None}


@dataclass(frozen=True)
class ExportFormat:
    """What deblur needs to know about one export format.

    keras_format: the `format=` of `keras.Model.export`; suffix: the file's ending ("" = a folder);
    extra: the `deblur[...]` extra that installs `modules` (what exporting and running it imports).
    """

    name: str
    keras_format: str
    suffix: str
    extra: str | None
    modules: tuple[str, ...]
    companions: tuple[str, ...] = ()  # further files written beside it, by suffix (OpenVINO's weights)

    def files(self, path: Path) -> list[Path]:
        return [path, *(path.with_suffix(s) for s in self.companions)]

    def missing_module(self) -> str | None:
        return next((m for m in self.modules if importlib.util.find_spec(m) is None), None)


FORMATS: Registry[ExportFormat] = Registry("export format")
for _fmt in (
    ExportFormat("saved_model", "tf_saved_model", "", None, ("tensorflow",)),
    ExportFormat("onnx", "onnx", ".onnx", "onnx", ("onnxruntime", "onnx", "tf2onnx")),
    ExportFormat("openvino", "openvino", ".xml", "openvino", ("openvino",), companions=(".bin",)),
    # TensorFlow's converter keeps H and W dynamic (checked: the built-in model at 64x96 and 128x128)
    ExportFormat("litert", "litert", ".tflite", "litert", ("ai_edge_litert",)),
):
    FORMATS.register(_fmt.name)(_fmt)


class ExportCheckError(Exception):
    """The exported model does not reproduce Keras's output (a machine/runtime failure: exit status 1)."""


@dataclass
class ExportResult:
    path: Path
    format: str
    sidecar: Path
    fixed_size: tuple[int, int] | None  # the model's own single size (resized to), as Keras reports it
    max_diff_levels: int  # after 8-bit rounding: what the check allows up to CHECK_LEVELS
    raw_diff_levels: float  # before rounding, in the same unit (1/255)
    export_seconds: float
    size_bytes: int

    def lines(self) -> list[str]:
        """What `deblur export` prints: the check against Keras, the input shape, what was written."""
        shape = (f"fixed at {self.fixed_size[1]}x{self.fixed_size[0]} (the model's own size; images are resized)"
                 if self.fixed_size else "dynamic height and width")
        return [f"check: largest difference from Keras on the check photo: {self.max_diff_levels} 8-bit level(s) "
                f"after rounding (allowed: {CHECK_LEVELS}), {self.raw_diff_levels:.2g} before", f"input: {shape}",
                f"wrote {self.path} ({self.format}, {self.size_bytes / 2**20:.2f} MB, exported in "
                f"{self.export_seconds:.1f} s) and {self.sidecar}"]


def require_runtime(fmt: ExportFormat, option: str | None = None) -> None:
    """Refuse a format whose converter or runtime is not installed, naming the extra that installs it
    and the argument that asked for it (`fmt` by default, `formats`, or predict's `engine`)."""
    option = option or arg("fmt")
    missing = fmt.missing_module()
    if missing is not None:
        how = f'pip install "deblur[{fmt.extra}]"' if fmt.extra else f"pip install {missing}"
        raise DeblurError(f"{option} {fmt.name} needs the Python package {missing!r}, which is not installed: {how}")


def installed_formats() -> list[str]:
    return [name for name in FORMATS if FORMATS.get(name).missing_module() is None]


def default_output(model_path: Path | None, fmt: str) -> Path:
    """`runs/x/best.keras` -> `runs/x/best.onnx` (a SavedModel: `runs/x/best_saved_model/`); the built-in
    model goes to the current folder as `deblur_default...`, a shipped one named by `builtin-refiner` as
    `deblur_refiner...`."""
    from deblur.pretrained import SHIPPED

    spec = FORMATS.get(fmt, arg("fmt"))
    if model_path is not None and str(model_path) in SHIPPED:  # never into the installed package's folder
        base = Path("deblur_" + str(model_path).removeprefix("builtin-"))
    else:
        base = model_path.with_suffix("") if model_path is not None else Path("deblur_default")
    return base.with_name(base.name + (spec.suffix or "_saved_model"))


def checkpoint_path(model_path: Path | None) -> Path:
    from deblur.pretrained import default_checkpoint, shipped

    if model_path is not None:
        return shipped(model_path) or Path(model_path)
    return default_checkpoint()


def sha256(path: Path) -> str:
    from deblur.core.digest import file_sha256  # one hasher: the cache keys exports by the same digest

    return file_sha256(path)


def check_output(fmt: ExportFormat, out: Path, overwrite: bool) -> None:
    """Refuse a target that exists (any of its files) unless --overwrite and it is deblur's own earlier
    export (`owned_export`), or whose folder is missing."""
    if out.name in ("", ".", ".."):  # `-o .` would make the current folder the export (and replace it)
        raise DeblurError(f"{arg('output')} {out}: name a new file or folder for the export, not an existing folder "
                          "like . or ..")
    if fmt.suffix and out.suffix != fmt.suffix:
        raise DeblurError(f"{arg('output')}: a {fmt.name} export must end in {fmt.suffix} (got {out.name})")
    if not out.parent.is_dir():
        raise DeblurError(f"{arg('output')}: the folder {out.parent} does not exist")
    taken = [p for p in [*fmt.files(out), exported.sidecar_path(out)] if os.path.lexists(p)]
    if taken and not overwrite:
        raise DeblurError(f"{taken[0]} already exists; pass {arg('overwrite=True')} to replace it")
    if out.exists() and out.is_dir() != (not fmt.suffix):
        raise DeblurError(f"{out} exists and is a {'folder' if out.is_dir() else 'file'}; choose another "
                          f"{arg('output')}")
    owned_export(fmt, out)


# A SavedModel folder from a deblur before the sidecar listed its files: what Keras writes there.
_SAVED_MODEL_LAYOUT = re.compile(r"^(saved_model\.pb|fingerprint\.pb|keras_metadata\.pb|"
                                 r"variables/variables\.index|variables/variables\.data-\d+-of-\d+)$")


def _refuse(path: Path, why: str) -> DeblurError:
    return DeblurError(f"{path}: {why}; --overwrite replaces only an export deblur wrote (listed in its sidecar): "
                       "move it aside or choose another {arg('output')}")


def owned_export(fmt: ExportFormat, out: Path) -> None:
    """Refuse, naming the path, anything at the export's names that deblur's own export did not write.

    An export is deblur's when its sidecar (a regular file holding deblur's JSON for this format)
    lists every file there with its sha256, as `deblur export` records it; an export from before that
    list is recognised by the sidecar and the names its format writes. Never a link, never a folder
    where a file goes, never a file the sidecar does not list (a SavedModel folder holding the user's
    own files is refused whole: --overwrite used to delete it)."""
    sidecar = exported.sidecar_path(out) if fmt.suffix else out / exported.SIDECAR_IN_FOLDER
    paths = [*fmt.files(out), *([sidecar] if fmt.suffix else [])]
    present = [p for p in paths if os.path.lexists(p)]
    if not present:
        return
    for p in present:
        if p.is_symlink():
            raise _refuse(p, "is a symbolic link")
        if p.is_dir() != (p == out and not fmt.suffix):
            raise _refuse(p, "is a folder" if p.is_dir() else "is not a folder (a SavedModel is one)")
    meta = exported.read_sidecar(out) if sidecar.is_file() and not sidecar.is_symlink() else None
    if meta is None or meta.get(exported.FORMAT) != fmt.name:
        raise _refuse(present[0], f"has no deblur {fmt.name} sidecar ({sidecar.name})")
    listed = meta.get(exported.FILES)
    listed = listed if isinstance(listed, dict) else None
    if fmt.suffix:
        found = {p.name: p for p in present if p != sidecar}
    else:
        found = {}
        for folder, dirs, files in os.walk(out):  # links are not followed, and refused below
            for name in [*files, *(d for d in dirs if os.path.islink(os.path.join(folder, d)))]:
                p = Path(folder, name)
                found[p.relative_to(out).as_posix()] = p
        found.pop(exported.SIDECAR_IN_FOLDER, None)
    for rel, p in found.items():
        if p.is_symlink() or not p.is_file():
            raise _refuse(p, "is a symbolic link, pipe or device")
        if listed is not None:
            if rel not in listed:
                raise _refuse(p, "was not written by deblur export")
            if listed[rel] != sha256(p):
                raise _refuse(p, "changed since deblur export wrote it")
        elif not (fmt.suffix or _SAVED_MODEL_LAYOUT.match(rel)):
            raise _refuse(p, "was not written by deblur export")


def _written_files(fmt: ExportFormat, staged: Path) -> dict[str, str]:
    """{relative path: sha256} of what the export wrote (the sidecar apart): the FILES sidecar entry."""
    if fmt.suffix:
        return {p.name: sha256(p) for p in fmt.files(staged) if p.is_file()}
    return {p.relative_to(staged).as_posix(): sha256(p) for p in sorted(staged.rglob("*"))
            if p.is_file() and p.name != exported.SIDECAR_IN_FOLDER}


def test_image(channels: int, multiple: int, fixed: tuple[int, int] | None) -> np.ndarray:
    """The fixed check photo: scikit-image's chelsea, Gaussian-blurred, 1 x H x W x C float32, cropped to
    a size the export takes (a multiple of the model's factor, or the fixed size)."""
    from deblur.data.blur import blur_image
    from deblur.data.sources.samples import read_sample
    from deblur.imaging.imageio import convert_channels, resize, to_float

    image = to_float(convert_channels(blur_image(read_sample(CHECK_SAMPLE), CHECK_BLUR), channels))
    if fixed is not None:
        return resize(image, fixed)[None].astype(np.float32)
    h, w = (image.shape[0] // multiple) * multiple, (image.shape[1] // multiple) * multiple
    return np.ascontiguousarray(image[None, :h, :w], dtype=np.float32)


def diff_levels(reference: np.ndarray, output: np.ndarray) -> tuple[int, float]:
    """Largest difference in 8-bit levels after both are rounded to 8 bits (0: identical PNGs), and before."""
    if reference.shape != output.shape or not np.isfinite(output).all():
        raise ExportCheckError(f"the export's output has shape {output.shape} or is not finite where Keras gives "
                               f"{reference.shape}; nothing was written")

    def levels(x: np.ndarray) -> np.ndarray:
        return np.round(np.clip(x.astype(np.float64), 0.0, 1.0) * 255.0)

    rounded = int(np.max(np.abs(levels(reference) - levels(output))))
    raw = float(np.max(np.abs(reference.astype(np.float64) - output.astype(np.float64)))) * 255.0
    return rounded, raw


def check_export(fmt: str, path: Path, image: np.ndarray, reference: np.ndarray) -> tuple[int, float]:
    """Run the export on `image` with the engine `deblur predict` would use and compare it with Keras's
    `reference`; returns the largest difference in 8-bit levels (rounded, raw), or raises ExportCheckError."""
    from deblur.restore.engines import load_engine

    # trusted: deblur's own conversion, just made in its locked staging folder (this run is the check)
    levels, raw = diff_levels(reference, load_engine(path, fmt, trust=True)(image))
    if levels > CHECK_LEVELS:
        raise ExportCheckError(f"the {fmt} export does not reproduce Keras on the check photo: it differs by up to "
                               f"{levels} 8-bit levels (allowed: {CHECK_LEVELS}); nothing was written")
    return levels, raw


def _write_sidecar(path: Path, data: dict[str, Any]) -> None:
    from deblur.core.atomic import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps({k: data[k] for k in exported.SIDECAR_KEYS}, indent=2) + "\n").encode())


def export_model(model_path: Path | None, fmt: str, out: Path, *,
                 overwrite: bool = False, verbose: bool = False) -> ExportResult:
    """Export the checkpoint (None: the built-in model) to `out` in format `fmt`, check it, and return
    what was written. Raises DeblurError for the user's mistakes and ExportCheckError when the export
    does not reproduce Keras; in both cases nothing is left at `out`."""
    spec = FORMATS.get(fmt, arg("fmt"))
    require_runtime(spec)
    out = Path(out)
    check_output(spec, out, overwrite)
    source = checkpoint_path(model_path)
    import keras

    from deblur import __version__
    from deblur.models import fixed_input_size, required_multiple
    from deblur.restore.loading import load_model

    model = load_model(source)
    channels, multiple = int(model.input_shape[-1]), required_multiple(model)
    fixed = fixed_input_size(model)
    shape = (None, *(fixed or (None, None)), channels)
    signature = [keras.InputSpec(shape=shape, dtype="float32")]
    image = test_image(channels, multiple, fixed)
    reference = np.asarray(model(image, training=False), dtype=np.float32)

    from deblur.core.privacy import silence_telemetry

    silence_telemetry()  # OpenVINO's converter reports usage to Google Analytics unless stopped
    clean_stale_temp_dirs(out.parent, STAGING_PREFIX)  # a killed export's staging folders
    with locked_temp_dir(out.parent, STAGING_PREFIX) as tmp:
        staged = tmp / out.name
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():  # converters' own deprecation chatter (tf2onnx on NumPy 2)
                warnings.simplefilter("ignore", FutureWarning)
                model.export(str(staged), format=spec.keras_format, input_signature=signature, verbose=verbose)
        except Exception as exc:  # the converters raise many types; the first line says what failed
            reason = next((s.strip() for s in str(exc).splitlines() if s.strip()), type(exc).__name__)
            raise DeblurError(f"{spec.name} export of {source.name} failed: {reason[:300]}") from None
        seconds = time.perf_counter() - start
        sidecar = exported.sidecar_path(staged)  # inside a SavedModel folder, beside a file
        facts = {
            exported.FORMAT: spec.name, exported.CHANNELS: channels, exported.MULTIPLE: multiple,
            exported.FIXED_SIZE: list(fixed) if fixed else None, exported.SOURCE_SHA256: sha256(source),
            exported.DEBLUR_VERSION: __version__, exported.KERAS_VERSION: keras.__version__,
            exported.MAX_DIFF_LEVELS: None, exported.FILES: None,
        }
        _write_sidecar(sidecar, facts)  # before the check: the engine reads the multiple and size from it
        levels, raw = check_export(spec.name, staged, image, reference)
        _write_sidecar(sidecar, {**facts, exported.MAX_DIFF_LEVELS: levels,
                                 exported.FILES: _written_files(spec, staged)})
        nbytes = sum(_size(p) for p in spec.files(staged))
        _move_into_place(spec, staged, out, sidecar, tmp)
    return ExportResult(out, spec.name, exported.sidecar_path(out), fixed, levels, raw, seconds,
                        nbytes)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def _move_into_place(spec: ExportFormat, staged: Path, out: Path, sidecar: Path, tmp: Path) -> None:
    """Replace the target's files with the checked ones (same file system: each move is a rename).

    What is there is checked again first (the export took a while); an earlier SavedModel folder is
    renamed into the staging folder `tmp`, removed with it, rather than deleted in place."""
    owned_export(spec, out)
    moves = list(zip(spec.files(staged), spec.files(out), strict=True))
    if spec.suffix:  # a file export's sidecar lies beside it (a folder's moved with it, inside)
        moves.append((sidecar, exported.sidecar_path(out)))
    for src, dst in moves:
        if dst.is_dir() and not dst.is_symlink():
            dst.replace(tmp / ".replaced")
        src.replace(dst)
