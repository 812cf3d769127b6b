"""The Python API: restore NumPy images as `deblur predict` restores files.

    from deblur import Restorer, estimate_kernel
    restore = Restorer.load()                      # the built-in restorer; or "runs/x/best.keras", "m.onnx", ...
    sharp = restore(blurred)                       # uint8/uint16/float array, HxW or HxWxC -> same
    kernel = estimate_kernel(blurred)              # the blur kernel, float64, sums to 1

The built-in restorer (`deblur.restore.blind`) estimates each image's blur and deconvolves it, or
returns the image unchanged when it looks sharp or no single kernel explains its blur; it needs no
TensorFlow. A network runs through the same engine and `deblur.restore.predict.restore_image` as
`deblur predict`, so an array and a file come out identical.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deblur.core.errors import DeblurError, arg
from deblur.restore.blind import BlindRestorer
from deblur.restore.engines import AUTO, ENGINES, KERAS, Engine, detect, engine_names, load_engine
from deblur.restore.predict import DEFAULT_OVERLAP, DEFAULT_TILE, restore_image

DTYPES = (np.uint8, np.uint16, np.float32, np.float64)


class Restorer:
    """A loaded model with its tiling settings; call it on an image array.

    Images larger than `tile` x `tile` pixels are restored in overlapping tiles (bounded memory);
    `tile=0` restores each image whole.
    """

    def __init__(self, engine: Engine | BlindRestorer, tile: int = DEFAULT_TILE,
                 overlap: int = DEFAULT_OVERLAP) -> None:
        from deblur.imaging.tiling import check_tile

        self.blind = engine if isinstance(engine, BlindRestorer) else None
        if self.blind is not None:  # the built-in restorer bounds its own memory: no tiles
            self.engine: Engine | None = None
            self.tile, self.overlap = whole_number("tile", tile), whole_number("overlap", overlap)
            return
        if not isinstance(engine, Engine):
            raise DeblurError(f"engine={shown(engine)}: expected a deblur Engine (use Restorer.load(path) for a file)")
        tile, overlap = whole_number("tile", tile), whole_number("overlap", overlap)
        if engine.fixed_size is None:  # fixed-size models see whole images: no tiles
            check_tile(tile, overlap, engine.multiple)
        self.engine, self.tile, self.overlap = engine, tile, overlap

    @classmethod
    def load(cls, path: str | Path | None = None, engine: str = AUTO, tile: int = DEFAULT_TILE,
             overlap: int = DEFAULT_OVERLAP, trust_model: bool = False,
             kernel: np.ndarray | None = None, refiner: bool | str | Path = True) -> Restorer:
        """Load a restorer: None is the built-in one (blur estimation, deconvolution and the shipped
        refiner network; `kernel`, a 2-D array, deconvolves with a known kernel instead; `refiner`
        False leaves the refiner out, a path runs that refiner checkpoint or export instead);
        "builtin-network" the network deblur shipped before it ("builtin-refiner" the refiner alone);
        else a `.keras` checkpoint, `.onnx`, OpenVINO `.xml`, `.tflite` or SavedModel folder. `engine`
        as `deblur predict --engine` (see
        `deblur.restore.engines`; for the built-in restorer it runs the refiner); `trust_model` as
        `--trust-model` (an export's operations are not checked)."""
        from deblur.imaging.tiling import check_tile

        # every argument before any work: a NaN tile was accepted, and every later call raised TypeError
        tile, overlap = whole_number("tile", tile), whole_number("overlap", overlap)
        check_tile(tile, overlap)  # before the model is loaded; again with its size multiple
        if path is None:
            given = None if kernel is None else kernel_array(kernel)
            return cls(builtin_restorer(given, refiner, engine, tile, overlap, trust=bool(trust_model)), tile, overlap)
        if kernel is not None:
            raise DeblurError("kernel=: only the built-in restorer (path=None) deconvolves with a given kernel")
        path = model_path(path)
        from deblur.pretrained import shipped

        path = shipped(path) or path
        return cls(open_engine(path, engine, trust=bool(trust_model)), tile, overlap)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Restore one image: uint8, uint16 or float (taken as [0, 1], clipped) NumPy array, H x W or
        H x W x C with C 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA; alpha is passed through).
        Returns an array of the same shape and dtype."""
        return self.run(image)[0]

    def run(self, image: np.ndarray) -> tuple[np.ndarray, str | None]:
        """As calling the restorer, with what the built-in restorer did in words (None for a network),
        e.g. "looks sharp (...): left as it is"; a photo left as it is is returned as the same array."""
        image = check_array(image)
        if self.blind is not None:
            out, outcome = self.blind(image)
            return out, outcome.reason
        assert self.engine is not None
        if image.ndim == 2:
            return restore_image(self.engine, image[:, :, None], self.tile, self.overlap)[:, :, 0], None
        return restore_image(self.engine, image, self.tile, self.overlap), None

    def __repr__(self) -> str:
        if self.blind is not None:
            stage = " and refiner" if self.blind.refiner is not None else ""
            return f"Restorer(built-in: blur estimation, deconvolution{stage})"
        return f"Restorer({self.engine!r}, tile={self.tile}, overlap={self.overlap})"


BUILTIN_NETWORK = "builtin-network"  # the network deblur shipped as its built-in model before the blind restorer


def refiner_path(refiner: bool | str | Path = True, engine: str = AUTO) -> Path | None:
    """The refiner network the built-in restorer runs: the shipped one (`refiner` True; None if this
    install lacks it), none (False), or a checkpoint or export at a path. An `engine` other than auto
    with no refiner to run is refused: the rest of the restorer runs on NumPy."""
    if isinstance(refiner, bool):
        from deblur.pretrained import refiner_checkpoint

        path = refiner_checkpoint() if refiner else None
    else:
        path = model_path(refiner)
    if path is None and engine_name(engine) != AUTO:
        why = f"{arg('refiner=False')} leaves it out" if refiner is False else "this install ships none"
        raise DeblurError(f"{arg('engine')} chooses the runtime of a network: the built-in restorer runs one only as "
                          f"its refiner, and {why}; the rest runs on NumPy")
    return path


def builtin_restorer(kernel: np.ndarray | None = None, refiner: bool | str | Path = True, engine: str = AUTO,
                     tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP, notes: list[str] | None = None,
                     trust: bool = False) -> BlindRestorer:
    """The built-in restorer with its refiner (`refiner_path`); `engine` runs the refiner."""
    path = refiner_path(refiner, engine)
    if path is None:
        return BlindRestorer(kernel=kernel)
    from deblur.imaging.tiling import check_tile
    from deblur.restore.refine import network_refiner

    net = open_engine(path, engine, notes, trust=trust)
    check_tile(tile, overlap, net.multiple)
    return BlindRestorer(kernel=kernel, refiner=network_refiner(net, tile, overlap))


def kernel_array(kernel: object) -> np.ndarray:
    """A user's kernel as a valid one (2-D, finite, non-negative, not all zero; normalised), or a
    DeblurError naming `kernel`."""
    from deblur.restore.kernels import MAX_KERNEL_FILE_SIDE, from_image

    if not isinstance(kernel, np.ndarray) or kernel.ndim != 2 or kernel.size == 0:
        raise DeblurError(f"kernel: expected a 2-D NumPy array, got {type(kernel).__name__}"
                          + (f" of shape {kernel.shape}" if isinstance(kernel, np.ndarray) else ""))
    if max(kernel.shape) > MAX_KERNEL_FILE_SIDE:  # as --kernel: a 1 x 10**6 array asked for a 7 TiB square
        raise DeblurError(f"kernel: a {kernel.shape[1]}x{kernel.shape[0]} kernel is larger than deblur takes "
                          f"({MAX_KERNEL_FILE_SIDE} px)")
    try:
        return from_image(kernel)
    except (ValueError, TypeError) as exc:
        raise DeblurError(f"kernel: {exc}") from None


def estimate_kernel(image: np.ndarray, max_kernel: int | None = None) -> np.ndarray:
    """The blur kernel of a photo (uint8, uint16 or float in [0, 1]; H x W or H x W x C), estimated as
    the built-in restorer does: an odd-sized float64 array that sums to 1, centred on its centroid.

    `max_kernel` bounds its size in pixels (default: up to 35 px at a long side of 1280 px, larger in
    proportion on bigger photos). A sharp photo gives a kernel close to a single point.
    """
    from deblur.imaging.imageio import check_finite, to_float
    from deblur.restore.estimate import estimate_kernel as estimate

    image = check_array(image)
    if max_kernel is not None:
        max_kernel = whole_number("max_kernel", max_kernel)
        if max_kernel < 3:
            raise DeblurError(f"max_kernel={max_kernel}: must be at least 3 pixels")
    if min(image.shape[:2]) < 16:
        raise DeblurError(f"image shape {image.shape}: too small to estimate a blur kernel from (16 px a side)")
    colour = image if image.ndim == 2 else image[:, :, :3] if image.shape[2] >= 3 else image[:, :, 0]
    if np.issubdtype(colour.dtype, np.floating):
        check_finite(colour, "the image")
        floats = np.clip(colour, 0.0, 1.0).astype(np.float32)
    else:
        floats = to_float(colour)
    return estimate(floats, max_kernel=max_kernel).kernel


def whole_number(name: str, value: object) -> int:
    """`value` as an int, or a DeblurError naming the argument (a float, NaN, str or None is refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise DeblurError(f"{name}={shown(value)}: must be a whole number of pixels (an int)")
    return int(value)


def shown(value: object, limit: int = 80) -> str:
    """`value` as an error message names it: its repr when that is one short line, else its type."""
    text = repr(value)
    return text if len(text) <= limit and "\n" not in text else f"<{type(value).__name__}>"


def model_path(path: object) -> Path:
    """A model's path as a Path, or a DeblurError naming `path` (an int or bytes is refused)."""
    if not isinstance(path, str | os.PathLike) or isinstance(path, bytes):
        raise DeblurError(f"path={shown(path)}: expected a file path (str or pathlib.Path), or None for the built-in "
                          "model")
    return Path(path)


def engine_name(engine: object) -> str:
    if not isinstance(engine, str):
        raise DeblurError(f"engine={shown(engine)}: expected an engine name ({', '.join(engine_names())})")
    if engine != AUTO:
        ENGINES.get(engine, "engine")
    return engine


def check_array(image: object) -> np.ndarray:
    """Refuse what is not one image array deblur can restore, in one line saying what it got."""
    if not isinstance(image, np.ndarray):
        raise DeblurError(f"expected a NumPy image array, got {type(image).__name__}")
    if type(image) is not np.ndarray:  # a subclass as the plain array it holds: np.matrix stays 2-D when indexed
        image = np.asarray(image)
    if image.dtype not in DTYPES:
        raise DeblurError(f"image dtype {image.dtype} is not supported; use uint8, uint16, float32 or float64")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise DeblurError(f"image shape {image.shape}: expected H x W or H x W x C with C 1, 2, 3 or 4 (a batch "
                          "is restored one image at a time)")
    if min(image.shape[:2]) < 1:
        raise DeblurError(f"image shape {image.shape}: the image is empty")
    return image


AUTO_UNMEASURED = ("--engine auto uses Keras until `deblur benchmark-formats` has measured the runtimes on "
                   "this machine")


def open_engine(path: str | Path, engine: str = AUTO, notes: list[str] | None = None,
                trust: bool = False) -> Engine:
    """`deblur.restore.engines.load_engine`, plus what needs `deblur.restore.export`: a `.keras` checkpoint with
    `engine` auto runs on the runtime measured fastest for it here (`deblur benchmark-formats`;
    Keras when nothing was measured, and then AUTO_UNMEASURED is added to `notes`), and with another
    engine than keras it is exported once into the cache and run from there. An export given by path
    runs only if its operations pass deblur's allow-list, unless `trust` (`--trust-model`); the
    cache's exports are deblur's own, made from the checkpoint and checked against Keras."""
    path, engine = model_path(path), engine_name(engine)
    if detect(path) != KERAS:
        return load_engine(path, engine, trust)
    if engine == AUTO:
        from deblur.restore.engines.cache import cached_choice

        choice = cached_choice(path)
        engine = choice if choice is not None and choice in ENGINES else KERAS
        if choice not in ENGINES and notes is not None:
            notes.append(AUTO_UNMEASURED)
    if engine == KERAS:
        return load_engine(path, KERAS)
    return load_engine(cached_export(path, engine), engine, trust=True)


def cached_export(checkpoint: Path, engine: str) -> Path:
    """The export of `checkpoint` for `engine` in the cache, made (and checked against Keras) now if
    it is not there yet; keyed by the checkpoint's sha256 and the deblur, Keras and runtime versions.
    It is written into a locked temporary folder renamed into place, so a killed export or two
    processes exporting at once never leave a half-written model under the final name; a killed
    one's temporary folder is removed by the next export."""
    import contextlib
    import os

    from deblur.core.atomic import clean_stale_temp_dirs, locked_temp_dir
    from deblur.restore.engines.cache import export_dir
    from deblur.restore.export import (  # export_model loads through deblur.restore.loading
        FORMATS,
        export_model,
        require_runtime,
    )

    spec = ENGINES.get(engine)
    folder = export_dir(checkpoint, engine, spec.package)
    target = folder / spec.export_name
    if target.exists():
        return target
    require_runtime(FORMATS.get(engine), arg("engine"))  # said as the argument the user gave, before any work
    folder.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{engine}-"
    clean_stale_temp_dirs(folder.parent, prefix)
    with locked_temp_dir(folder.parent, prefix) as tmp:
        export_model(checkpoint, engine, tmp / target.name)
        with contextlib.suppress(OSError):  # another process finished first: its export is as good
            os.replace(tmp, folder)
    return target
