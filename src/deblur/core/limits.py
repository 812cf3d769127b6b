"""What the machine can hold, checked before any work: batch memory and blur kernel sizes.

Without these, `data.batch_size: 1e8` ran out of memory after 93 s, `1e12` hung, and a blur of a
million pixels tried to build a kernel of 10^12 taps. The bounds are loose on purpose: they refuse
what cannot work on this machine, never a setting that merely looks large.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Iterator
from typing import Any

from deblur.core.errors import ConfigError

# Pixels on a kernel side. 255 allows Gaussian sigma up to 42, motion 254 px long and a defocus radius
# of 126: far beyond the blurs photos show, and already minutes of convolution per photo on a CPU.
MAX_KERNEL_SIZE = 255
# Copies of a training batch alive at once in the input pipeline alone: sharp and blurred crops, the
# prefetched next batch and the model's input. A floor: the model's activations come on top.
BATCH_COPIES = 4
FLOAT_BYTES = 4
# Blurs are computed in 32-bit floats: a parameter near their limit (3.4e38) overflows to inf, and an
# angle of 1e300 degrees became NaN pixels. An angle beyond a full turn either way means nothing more.
MAX_PARAMETER = 1e30
MAX_ANGLE = 360.0


def physical_memory() -> int | None:
    """Bytes of RAM on this machine, or None where the OS does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_batch_memory(batch: int, size: tuple[int, int] | None, channels: int | None, key: str) -> None:
    """Refuse a batch whose input tensors alone exceed this machine's memory.

    `size` is the patch (height, width), None if not known yet (then 1x1: a floor); `channels`
    None means up to 3.
    """
    memory = physical_memory()
    if memory is None:
        return
    h, w = size or (1, 1)
    need = batch * h * w * (channels or 3) * FLOAT_BYTES * BATCH_COPIES
    if need > memory:
        shown = f" of {h}x{w}" if size else ""
        raise ConfigError(f"{key}: {batch:,} patches{shown} need at least {need / 2**30:,.1f} GiB for the input "
                          f"batches alone, more than this machine's {memory / 2**30:,.1f} GiB; use a smaller {key}")


def _numbers(value: Any) -> Iterator[float]:
    values = value if isinstance(value, list | tuple) else [value]
    yield from (float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool))


def check_parameters(deg: Any, key: str) -> None:
    """Refuse a degradation parameter the 32-bit blur cannot compute (it would give NaN or inf pixels)."""
    for f in dataclasses.fields(deg):
        bound = MAX_ANGLE if f.name == "angle" else MAX_PARAMETER
        for x in _numbers(getattr(deg, f.name)):
            if not math.isfinite(x) or abs(x) > bound:
                raise ConfigError(f"{key}: {f.name} {x:g} is out of range (the blur is computed in 32-bit floats; "
                                  f"allowed up to {bound:g}{' degrees either way' if f.name == 'angle' else ''})")


def check_image_memory(size: tuple[int, int], channels: int | None, key: str) -> None:
    """Refuse an image size (data.resize) that one image alone, blurred in float32, cannot fit in memory."""
    memory = physical_memory()
    h, w = size
    need = h * w * (channels or 3) * FLOAT_BYTES * BATCH_COPIES
    if memory is not None and need > memory:
        raise ConfigError(f"{key}: one {h:,}x{w:,} image needs at least {need / 2**30:,.1f} GiB while it is blurred, "
                          f"more than this machine's {memory / 2**30:,.1f} GiB; use a smaller {key}")


def check_kernel(deg: Any, key: str, image_sizes: Iterable[tuple[int, int]] = ()) -> None:
    """Refuse a degradation whose kernel is over MAX_KERNEL_SIZE or does not fit inside the images.

    Borders are reflected, which needs the kernel radius to be smaller than each image side. Its
    parameters must be numbers the 32-bit blur can compute (`check_parameters`).
    """
    check_parameters(deg, key)
    radius = int(deg.kernel_radius)
    side = 2 * radius + 1
    if side > MAX_KERNEL_SIZE:
        raise ConfigError(f"{key}: {deg.label()} needs a {side:,}x{side:,}-pixel kernel, over the limit of "
                          f"{MAX_KERNEL_SIZE}x{MAX_KERNEL_SIZE}; choose a smaller blur")
    for h, w in image_sizes:
        if radius >= min(h, w):
            raise ConfigError(f"{key}: {deg.label()} needs a {side}x{side}-pixel kernel, too large for "
                              f"{w}x{h}-pixel images (its radius {radius} must be under the shorter side); choose "
                              "a smaller blur or larger images")


# Copies of every weight that training holds: the weight, its gradient and Adam's two moments.
WEIGHT_COPIES = 4


def check_model_size(estimate: float, what: str) -> None:
    """Refuse a model whose weights alone (an estimate from its settings) exceed this machine's memory.

    Keras allocates every weight while the model is built, so without this `model.depth: 40` spent
    seconds and 17 GB of memory before failing. The estimate only needs the right order of magnitude.
    """
    memory = physical_memory()
    if memory is not None and estimate * FLOAT_BYTES * WEIGHT_COPIES > memory:
        # Python ints can pass float range: show a power of ten for the absurd ones
        shown = f"10^{math.log10(estimate):.0f}" if estimate > 1e15 else f"{float(estimate):.2g}"
        raise ConfigError(f"model: {what} has about {shown} parameters, more than this machine's "
                          f"{memory / 2**30:.0f} GiB of memory can train; choose a smaller model")
