"""`deblur blur`: blurred test images made with the very operators the training pipeline uses.

Outputs follow the same rules as `deblur predict` (`deblur.imaging.outputs`): planned before any work, never
over an input, never two inputs to one name, existing files kept unless `--overwrite`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deblur.core.errors import DataError, DeblurError
from deblur.core.limits import check_kernel
from deblur.data.degrade import N_UNIFORMS, make
from deblur.imaging.imageio import expand_inputs, from_float, read_image, to_float
from deblur.imaging.outputs import WriteSummary, output_folder, plan, write_job

DEFAULTS = {"gaussian": {"sigma": 2.0}, "motion": {"length": 9.0, "angle": 0.0}, "defocus": {"radius": 3.0},
            "shake": {"size": 21.0}}


def blur_spec(kind: str, noise: float = 0.0, shot: float = 0.0, jpeg: float | None = None,
              **values: float | None) -> dict[str, Any]:
    """A fixed-parameter degradation spec from command-line values, rejecting ones the kind ignores."""
    if kind not in DEFAULTS:
        raise DeblurError(f"--kind: {kind!r} is not allowed; choose one of: {', '.join(DEFAULTS)}")
    stray = [k for k, v in values.items() if v is not None and k not in DEFAULTS[kind]]
    if stray:
        raise DeblurError(f"--{stray[0]} does not apply to --kind {kind}")
    for name, value in (*values.items(), ("noise", noise), ("shot", shot), ("jpeg", jpeg)):
        if value is not None and not math.isfinite(value):  # NaN passes every range check, then breaks the kernel
            raise DeblurError(f"--{name}: must be a finite number, got {value}")
    params = {k: (values.get(k) if values.get(k) is not None else d) for k, d in DEFAULTS[kind].items()}
    spec = {"kind": kind, **params, "noise": noise, "shot": shot, "jpeg": jpeg}
    check_kernel(make(spec, "blur"), f"--kind {kind}")  # validates ranges (negative sigma, ...) and kernel size
    return spec


def blur_image(image: np.ndarray, spec: dict[str, Any], seed: int = 0) -> np.ndarray:
    """Blur one HxWxC uint8/uint16 image; alpha (RGBA, or gray + alpha) is kept as it is."""
    from keras import ops

    deg = make(spec, "blur")
    alpha = image[:, :, -1:] if image.shape[2] in (2, 4) else None
    x = to_float(image[:, :, :-1] if alpha is not None else image)
    h, w = x.shape[:2]
    # The blur reflects borders, which needs its radius under each image side. A smaller image is
    # first extended by the same reflection (NumPy repeats it as often as needed), then cropped back.
    pad = deg.kernel_radius if deg.kernel_radius >= min(h, w) else 0
    if pad:
        x = np.pad(x, ((pad, pad), (pad, pad), (0, 0)), mode="reflect" if min(h, w) > 1 else "edge")
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(x.shape).astype(np.float32)
    # Fixed parameters ignore the uniforms, except u[1], which seeds a camera-shake trajectory's shape.
    u = np.zeros(N_UNIFORMS, np.float32)
    u[1] = rng.random(dtype=np.float32)
    deg.quantize = False  # quantise once, at the output's own bit depth (JPEG, if asked for, rounds to 8 bits)
    out, _ = deg.apply(ops.convert_to_tensor(x), ops.convert_to_tensor(u), ops.convert_to_tensor(noise))
    blurred = ops.convert_to_numpy(out)[pad:pad + h, pad:pad + w]
    result = from_float(blurred, image.dtype, "the blurred image")
    return np.concatenate([result, alpha], axis=2) if alpha is not None else result


def blur_files(inputs: Sequence[Path], samples: Sequence[str], output: Path, spec: dict[str, Any],
               seed: int = 0, overwrite: bool = False, skip_existing: bool = False,
               progress: Callable[[Sequence], Any] = iter, fmt: str = "same",
               strip_metadata: bool = False) -> WriteSummary:
    """Blur files, folders and built-in samples into `output`; unreadable files are skipped and reported.

    Outputs are JPEG or PNG by `fmt` as in `deblur predict` (`deblur.imaging.outputs.output_suffix`), with
    their input's EXIF and ICC profile unless `strip_metadata`."""
    from deblur.data.sources.samples import PHOTOS, read_sample

    if not inputs and not samples:
        raise DeblurError("give image files or folders to blur, or --sample NAME")
    if seed < 0:
        raise DeblurError(f"--seed: must be 0 or more, got {seed}")
    unknown = [s for s in samples if s not in PHOTOS]
    if unknown:
        raise DeblurError(f"--sample: unknown sample photo {unknown[0]!r}; choose one of: {', '.join(sorted(PHOTOS))}")
    files = list(expand_inputs(inputs))
    with output_folder(output):
        jobs = plan([(name, None) for name in dict.fromkeys(samples)] + [(p.stem, p) for p in files], output,
                    overwrite=overwrite, skip_existing=skip_existing, fmt=fmt, metadata=not strip_metadata)
        summary = WriteSummary(skipped=jobs.skipped)
        for job in progress(jobs.jobs):
            try:
                image = (read_image(job.source, notes=summary.notes, gray_alpha=True) if job.source is not None
                         else read_sample(job.stem))
            except DataError as exc:
                summary.failed.append((job.source or Path(job.label), str(exc)))
                continue
            try:
                blurred = blur_image(image, spec, seed)
            except MemoryError:  # this image alone is too large to blur here: the others may not be
                summary.failed.append((job.source or Path(job.label), f"out of memory blurring this "
                                       f"{image.shape[1]}x{image.shape[0]} image"))
                continue
            write_job(job, [blurred], summary, len(jobs.jobs))
    return summary
