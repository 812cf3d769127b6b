"""`deblur blur`: blurred test images made with the very operators the training pipeline uses."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from deblur.data.degrade import N_UNIFORMS, make
from deblur.errors import DeblurError
from deblur.imageio import expand_inputs, from_float, read_image, to_float, write_png

DEFAULTS = {"gaussian": {"sigma": 2.0}, "motion": {"length": 9.0, "angle": 0.0}, "defocus": {"radius": 3.0}}


def blur_spec(kind: str, noise: float = 0.0, **values: float | None) -> dict[str, Any]:
    """A fixed-parameter degradation spec from command-line values, rejecting ones the kind ignores."""
    if kind not in DEFAULTS:
        raise DeblurError(f"--kind: {kind!r} is not allowed; choose one of: {', '.join(DEFAULTS)}")
    stray = [k for k, v in values.items() if v is not None and k not in DEFAULTS[kind]]
    if stray:
        raise DeblurError(f"--{stray[0]} does not apply to --kind {kind}")
    params = {k: (values.get(k) if values.get(k) is not None else d) for k, d in DEFAULTS[kind].items()}
    spec = {"kind": kind, **params, "noise": noise}
    make(spec, "blur")  # validates ranges (negative sigma, ...)
    return spec


def blur_image(image: np.ndarray, spec: dict[str, Any], seed: int = 0) -> np.ndarray:
    """Blur one HxWxC uint8/uint16 image; alpha is kept as it is."""
    from keras import ops

    deg = make(spec, "blur")
    colour = image[:, :, :3] if image.shape[2] == 4 else image
    x = to_float(colour)
    noise = np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
    deg.quantize = False  # quantise once, at the output's own bit depth
    out, _ = deg.apply(ops.convert_to_tensor(x), ops.zeros((N_UNIFORMS,)), ops.convert_to_tensor(noise))
    result = from_float(ops.convert_to_numpy(out), image.dtype)
    return np.concatenate([result, image[:, :, 3:]], axis=2) if image.shape[2] == 4 else result


def blur_files(inputs: Sequence[Path], samples: Sequence[str], output: Path, spec: dict[str, Any],
               seed: int = 0, overwrite: bool = False) -> list[Path]:
    from deblur.data.sources.samples import read_sample

    if not inputs and not samples:
        raise DeblurError("give image files or folders to blur, or --sample NAME")
    jobs: list[tuple[str, Any]] = [(name, lambda n=name: read_sample(n)) for name in samples]
    jobs += [(p.stem, lambda p=p: read_image(p)) for p in expand_inputs(inputs)]
    targets = [output / f"{stem}.png" for stem, _ in jobs]
    for t in targets:
        if t.exists() and not overwrite:
            raise DeblurError(f"{t} already exists; pass --overwrite to replace it")
    for (_, read), target in zip(jobs, targets, strict=True):
        write_png(target, blur_image(read(), spec, seed))
    return targets
