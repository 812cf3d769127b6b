"""`deblur.predict`: restore image files at full resolution, as `deblur predict` does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from deblur.api.workflows.common import Progress, Say, as_path, optional_path, start_backend
from deblur.api.workflows.common import to_stderr as _to_stderr
from deblur.core.errors import DeblurError, arg

if TYPE_CHECKING:
    import numpy as np

    from deblur.imaging.outputs import WriteSummary


def _kernel(kernel: str | Path | np.ndarray | None) -> np.ndarray | None:
    """A known blur kernel: a picture of it (any image format) or a 2-D array; checked before any work."""
    import numpy as np

    if kernel is None:
        return None
    if isinstance(kernel, np.ndarray):
        from deblur.api import kernel_array

        return kernel_array(kernel)
    from deblur.restore.kernels import load

    return load(as_path("kernel", kernel))


def predict(inputs: Sequence[str | Path], *, checkpoint: str | Path | None = None, engine: str = "auto",
            output: str | Path = "restored", overwrite: bool = False, skip_existing: bool = False,
            recursive: bool = False, tile: int = 512, overlap: int = 32, side_by_side: bool = False,
            max_megapixels: float | None = None, fmt: str = "same", strip_metadata: bool = False,
            kernel: str | Path | np.ndarray | None = None, save_kernel: bool = False, trust_model: bool = False,
            refiner: bool = True, progress: Progress | None = None, warn: Say = _to_stderr) -> WriteSummary:
    """Restore image files and folders (`inputs`) into `output`, as `deblur predict` does: same size
    and channels as each input, a JPEG for a JPEG (quality 95) and a PNG for the rest (`fmt`: same, png
    or jpeg), keeping each input's EXIF and ICC profile unless `strip_metadata`.

    Without `checkpoint`, the built-in restorer runs (blur estimation, deconvolution, then its
    `refiner` network; `kernel`, a picture or 2-D array, deconvolves with a known kernel instead;
    `save_kernel` writes the kernel used beside each output); "builtin-network" is the network deblur
    shipped before it; else a `.keras` checkpoint or an export, run on `engine` (see
    `deblur.restore.engines`) in tiles of `tile` pixels overlapping by `overlap` (0: whole images).
    `max_megapixels` refuses larger images before decoding them (default: $DEBLUR_MAX_MEGAPIXELS or
    100). What was done per image is in the summary's notes; what could not be, in its `failed`.
    Notes said before the work (which restorer runs, which runtime) go to `warn`.
    """
    from deblur.api.restorer import BUILTIN_NETWORK, Restorer, builtin_restorer, open_engine, refiner_path
    from deblur.imaging.imageio import check_megapixels
    from deblur.imaging.imageio import max_megapixels as env_megapixels
    from deblur.imaging.outputs import output_folder
    from deblur.imaging.tiling import check_tile
    from deblur.restore.engines import ENGINES, needs_keras
    from deblur.restore.predict import builtin_restore, plan_outputs, predict_files

    if isinstance(inputs, str | Path):
        raise DeblurError(f"{arg('inputs')}: expected a list of image files or folders, got one path")
    paths = [as_path("inputs", p) for p in inputs]
    out = as_path("output", output)
    if engine != "auto":
        ENGINES.get(engine, arg("engine"))
    network_path = optional_path("checkpoint", checkpoint)
    if network_path is not None and str(network_path) == BUILTIN_NETWORK:
        from deblur.pretrained import default_checkpoint

        network_path = default_checkpoint()
    builtin = network_path is None
    if not builtin and (kernel is not None or save_kernel):
        raise DeblurError(f"{arg('kernel') if kernel is not None else arg('save_kernel')} works with the built-in "
                          f"restorer, which deconvolves; a {arg('checkpoint')} network has no kernel. Drop one of "
                          "the two")
    if not builtin and not refiner:
        raise DeblurError(f"{arg('refiner=False')} leaves the built-in restorer's refiner out; a {arg('checkpoint')} "
                          "network has none. Drop one of the two")
    shipped = refiner_path(refiner, engine) if builtin else None  # refused here, before any work
    network = shipped if builtin else network_path
    if network is not None and needs_keras(network, engine):  # an export runs on its runtime alone: no TensorFlow
        start_backend()
    # the argument wins when given; otherwise the environment's limit (a default of 100 here would hide it)
    limit = env_megapixels() if max_megapixels is None else check_megapixels(max_megapixels, arg("max_megapixels"))
    check_tile(tile, overlap)  # before any work; again below with the model's size multiple
    given = _kernel(kernel)  # every check before any work
    with output_folder(out, arg("output")):  # created, locked against a second job, a killed job's temporaries gone
        plan = plan_outputs(paths, out, recursive=recursive, overwrite=overwrite, side_by_side=side_by_side,
                            skip_existing=skip_existing, fmt=fmt, strip_metadata=strip_metadata,
                            save_kernel=save_kernel)
        if builtin:
            blind = builtin_restorer(given, shipped if shipped is not None else False, engine, tile, overlap)
            steps = "deconvolution with the given kernel" if given is not None else "blur estimation and deconvolution"
            steps += ", then the refiner network" if blind.refiner is not None else ""
            warn(f"restorer: built-in ({steps}; pass {arg('checkpoint')} to run a trained network)")
            return predict_files(None, plan, progress=progress or iter, side_by_side=side_by_side,
                                 max_megapixels=limit, restore=builtin_restore(blind), save_kernel=save_kernel)
        assert network_path is not None
        notes: list[str] = []
        # Restorer checks the tile for the model
        restorer = Restorer(open_engine(network_path, engine, notes, trust=trust_model), tile, overlap)
        for note in notes:  # said once, before the work (engine auto ran Keras: nothing measured yet)
            warn(f"note: {note}")
        return predict_files(restorer.engine, plan, progress=progress or iter, tile=tile, overlap=overlap,
                             side_by_side=side_by_side, max_megapixels=limit)
