"""Blur synthesis: kernels and their application, written with `keras.ops` only.

Each degradation kind turns a few uniform random numbers into physical parameters (sigma, motion
length and angle, defocus radius, noise level) and those into a kernel. Randomness comes from the
caller, so the same code serves a training pipeline that draws new kernels every epoch and a test
split that is fixed by its seed, on any Keras backend.

Every kernel has a static size per configuration (from the largest parameter it can draw), so it
compiles once; a smaller blur simply leaves the outer taps near zero.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import cv2
import numpy as np
from keras import ops

from deblur.config import build
from deblur.errors import ConfigError
from deblur.registry import Registry

Range = float | list[float]
PARAM_NAMES = ("sigma", "length", "angle", "radius", "noise")

DEGRADATIONS: Registry[type[Degradation]] = Registry("degradation kind")


def _bounds(value: Range, key: str, low: float = 0.0) -> tuple[float, float]:
    """A number means a fixed value; [lo, hi] means uniform in that range."""
    if isinstance(value, int | float):
        lo = hi = value
    elif len(value) == 2:
        lo, hi = value
    else:
        raise ConfigError(f"{key}: expected a number or a range [low, high], got {value!r}")
    if lo > hi:
        raise ConfigError(f"{key}: range is reversed ({lo} > {hi}); write [low, high]")
    if lo < low:
        raise ConfigError(f"{key}: must be {low} or more, got {lo}")
    return float(lo), float(hi)


def _draw(u: Any, bounds: tuple[float, float]) -> Any:
    lo, hi = bounds
    return lo + u * (hi - lo)


@dataclass
class Degradation:
    """Base class: blur kernel from parameters, then optional noise and 8-bit quantisation."""

    kind: ClassVar[str] = ""
    # The parameter that measures how strong a blur is, and the bin width reports group it by.
    strength: ClassVar[tuple[str, float] | None] = None
    noise: Range = 0.0
    quantize: bool = True

    def check(self) -> None:
        _bounds(self.noise, f"{self.kind}.noise")

    def label(self) -> str:
        return self.kind

    @property
    def kernel_radius(self) -> int:
        """Static half-width of the kernel."""
        raise NotImplementedError

    def physical(self, u: Any) -> dict[str, Any]:
        """Map uniforms u[0..3] in [0, 1) to named parameters (NaN where a kind has none)."""
        raise NotImplementedError

    def kernel(self, p: dict[str, Any]) -> Any:
        """A (2r+1, 2r+1) kernel that sums to 1."""
        raise NotImplementedError

    def params(self, u: Any) -> dict[str, Any]:
        p = {name: ops.convert_to_tensor(math.nan, "float32") for name in PARAM_NAMES}
        p.update(self.physical(u))
        p["noise"] = ops.cast(_draw(u[3], _bounds(self.noise, "noise")), "float32")
        return p

    def apply(self, image: Any, u: Any, gaussian_noise: Any) -> tuple[Any, dict[str, Any]]:
        """Blur one HxWxC float image in [0, 1]; `gaussian_noise` is a standard-normal HxWxC draw."""
        p = self.params(u)
        out = convolve(image, self.kernel(p), self.kernel_radius)
        out = out + p["noise"] * gaussian_noise
        out = ops.clip(out, 0.0, 1.0)
        if self.quantize:
            out = ops.round(out * 255.0) / 255.0
        return out, p


def _grid(radius: int) -> tuple[Any, Any]:
    x = ops.arange(-radius, radius + 1, dtype="float32")
    yy, xx = ops.meshgrid(x, x, indexing="ij")
    return yy, xx


def _normalise(k: Any) -> Any:
    return k / ops.sum(k)


@DEGRADATIONS.register("gaussian")
@dataclass
class Gaussian(Degradation):
    """Isotropic Gaussian blur; sigma fixed or uniform in a range (the seeds' sigma ~ U(0, 3)).

    With `ksize` set, the kernel is OpenCV's own `getGaussianKernel(ksize, sigma)` (sigma 0 means
    OpenCV's default for that size), so `cv2.GaussianBlur(img, (3, 3), 0)` is reproduced exactly.
    """

    kind: ClassVar[str] = "gaussian"
    strength: ClassVar[tuple[str, float] | None] = ("sigma", 1.0)
    sigma: Range = (0.0, 3.0)  # type: ignore[assignment]
    ksize: int | None = None
    truncate: float = 3.0

    def check(self) -> None:
        super().check()
        lo, hi = _bounds(self.sigma, "gaussian.sigma")
        if self.ksize is not None:
            if self.ksize < 1 or self.ksize % 2 == 0:
                raise ConfigError(f"gaussian.ksize: must be an odd positive integer, got {self.ksize}")
            if lo != hi:
                raise ConfigError("gaussian.ksize: a fixed kernel size needs a fixed sigma, not a range")

    def label(self) -> str:
        if self.ksize is not None:
            return f"gaussian {self.ksize}x{self.ksize} (cv2, sigma{fmt_range(self.sigma)})"
        return f"gaussian sigma{fmt_range(self.sigma)}"

    @property
    def kernel_radius(self) -> int:
        if self.ksize is not None:
            return self.ksize // 2
        return max(1, math.ceil(self.truncate * _bounds(self.sigma, "sigma")[1]))

    def physical(self, u: Any) -> dict[str, Any]:
        return {"sigma": ops.cast(_draw(u[0], _bounds(self.sigma, "sigma")), "float32")}

    def kernel(self, p: dict[str, Any]) -> Any:
        if self.ksize is not None:
            g = cv2.getGaussianKernel(self.ksize, float(_bounds(self.sigma, "sigma")[0])).astype(np.float32)
            return ops.convert_to_tensor(g @ g.T)
        yy, xx = _grid(self.kernel_radius)
        s = ops.maximum(p["sigma"], 1e-3)
        return _normalise(ops.exp(-(xx * xx + yy * yy) / (2.0 * s * s)))


@DEGRADATIONS.register("motion")
@dataclass
class Motion(Degradation):
    """Linear motion blur: an anti-aliased line segment of `length` pixels at `angle` degrees."""

    kind: ClassVar[str] = "motion"
    strength: ClassVar[tuple[str, float] | None] = ("length", 5.0)
    length: Range = (3.0, 15.0)  # type: ignore[assignment]
    angle: Range = (0.0, 180.0)  # type: ignore[assignment]

    def check(self) -> None:
        super().check()
        _bounds(self.length, "motion.length")
        _bounds(self.angle, "motion.angle", low=-360.0)

    def label(self) -> str:
        return f"motion length{fmt_range(self.length)} angle{fmt_range(self.angle)}"

    @property
    def kernel_radius(self) -> int:
        return max(1, math.ceil(_bounds(self.length, "length")[1] / 2.0))

    def physical(self, u: Any) -> dict[str, Any]:
        return {"length": ops.cast(_draw(u[0], _bounds(self.length, "length")), "float32"),
                "angle": ops.cast(_draw(u[1], _bounds(self.angle, "angle")), "float32")}

    def kernel(self, p: dict[str, Any]) -> Any:
        yy, xx = _grid(self.kernel_radius)
        theta = p["angle"] * (math.pi / 180.0)
        dx, dy = ops.cos(theta), -ops.sin(theta)  # image rows grow downwards
        half = ops.maximum(p["length"] - 1.0, 0.0) / 2.0
        along = ops.clip(xx * dx + yy * dy, -half, half)
        dist = ops.sqrt((xx - along * dx) ** 2 + (yy - along * dy) ** 2)
        return _normalise(ops.clip(1.0 - dist, 0.0, 1.0))


@DEGRADATIONS.register("defocus")
@dataclass
class Defocus(Degradation):
    """Out-of-focus blur: a uniform disk of `radius` pixels with an anti-aliased rim."""

    kind: ClassVar[str] = "defocus"
    strength: ClassVar[tuple[str, float] | None] = ("radius", 1.0)
    radius: Range = (1.0, 6.0)  # type: ignore[assignment]

    def check(self) -> None:
        super().check()
        _bounds(self.radius, "defocus.radius")

    def label(self) -> str:
        return f"defocus radius{fmt_range(self.radius)}"

    @property
    def kernel_radius(self) -> int:
        return max(1, math.ceil(_bounds(self.radius, "radius")[1]) + 1)

    def physical(self, u: Any) -> dict[str, Any]:
        return {"radius": ops.cast(_draw(u[0], _bounds(self.radius, "radius")), "float32")}

    def kernel(self, p: dict[str, Any]) -> Any:
        yy, xx = _grid(self.kernel_radius)
        r = ops.sqrt(xx * xx + yy * yy)
        return _normalise(ops.clip(p["radius"] + 0.5 - r, 0.0, 1.0))


@DEGRADATIONS.register("none")
@dataclass
class Identity(Degradation):
    """No blur (noise only, if set): a control, and the path for datasets with real blurred twins."""

    kind: ClassVar[str] = "none"

    @property
    def kernel_radius(self) -> int:
        return 0

    def physical(self, u: Any) -> dict[str, Any]:
        return {}

    def kernel(self, p: dict[str, Any]) -> Any:
        return ops.ones((1, 1), dtype="float32")


N_UNIFORMS = 4  # u[0], u[1]: kind parameters; u[2]: spare; u[3]: noise level


def convolve(image: Any, kernel: Any, radius: int) -> Any:
    """Convolve HxWxC with a 2-D kernel, reflecting borders as OpenCV does (BORDER_REFLECT_101)."""
    if radius == 0:
        return image * kernel[0, 0]
    channels = ops.shape(image)[-1]
    k = ops.flip(ops.flip(kernel, 0), 1)  # true convolution, not correlation
    k = ops.tile(k[:, :, None, None], (1, 1, channels, 1))
    padded = ops.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="reflect")
    return ops.depthwise_conv(padded, k, strides=1, padding="valid")[0]


def make(spec: dict[str, Any], key: str = "data.degradation") -> Degradation:
    """Build and check one degradation from its config mapping ({kind: ..., params...})."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{key}: expected a mapping with a 'kind' key, got {spec!r}")
    spec = dict(spec)
    kind = spec.pop("kind", "gaussian")
    cls = DEGRADATIONS.get(kind, f"{key}.kind")
    deg = build(cls, spec, key)
    try:
        deg.check()
    except ConfigError as exc:
        raise ConfigError(f"{key}.{exc}") from None
    return deg


def to_spec(deg: Degradation) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": deg.kind}
    for f in fields(deg):
        value = getattr(deg, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def resolve_degradations(raw: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate one or several degradation specs and return them complete, with defaults."""
    specs = raw if isinstance(raw, list) else [raw]
    if not specs:
        raise ConfigError("data.degradation: the list is empty; give at least one degradation")
    return [to_spec(make(s, f"data.degradation[{i}]" if isinstance(raw, list) else "data.degradation"))
            for i, s in enumerate(specs)]


def kernel_array(deg: Degradation, params: dict[str, float]) -> np.ndarray:
    """The kernel a degradation used for recorded parameters, for non-blind baselines (float64)."""
    p = {k: ops.convert_to_tensor(np.float32(v)) for k, v in params.items()}
    return np.asarray(ops.convert_to_numpy(deg.kernel(p)), dtype=np.float64)


def fmt_range(value: Range) -> str:
    if isinstance(value, list | tuple):
        return f"~U({value[0]:g}, {value[1]:g})" if value[0] != value[1] else f"={value[0]:g}"
    return f"={value:g}"


def describe(spec: dict[str, Any]) -> str:
    """A short human label, e.g. 'gaussian sigma~U(0, 3)' or 'gaussian 3x3 (cv2, sigma=0)'."""
    deg = make(spec)
    text = deg.label()
    if _bounds(deg.noise, "noise")[1] > 0:
        text += f" + noise{fmt_range(deg.noise)}"
    return text
