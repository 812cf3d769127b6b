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

from deblur.core.errors import ConfigError
from deblur.core.registry import Registry
from deblur.core.schema import build
from deblur.core.settings import DataConfig
from deblur.data import jpeg, shake

Range = float | list[float]
# Every parameter a degradation may draw, recorded per test image (NaN where a kind has none):
# kernel parameters, then the sensor's (read noise, shot-noise gain, JPEG quality).
PARAM_NAMES = ("sigma", "length", "angle", "radius", "size", "path", "noise", "shot", "quality")

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


def _col(x: Any) -> Any:
    """A parameter of shape [] or [B] as [1, 1] or [B, 1, 1], to broadcast against a kernel grid."""
    return x[..., None, None]


@dataclass
class Degradation:
    """Base class: blur kernel from parameters, then the camera's sensor noise, 8-bit rounding and,
    optionally, JPEG re-compression.

    Noise is Poisson-Gaussian, as a raw sensor's is: a pixel of intensity x gets Gaussian noise of
    variance `shot * x + noise ** 2` (signal-dependent photon noise plus read noise). Both grow with
    the camera's gain (ISO), so one uniform number draws both from their ranges together.
    """

    kind: ClassVar[str] = ""
    # The parameter that measures how strong a blur is, and the bin width reports group it by.
    strength: ClassVar[tuple[str, float] | None] = None
    noise: Range = 0.0
    shot: Range = 0.0
    jpeg: Range | None = None  # JPEG quality (1-100), or [low, high]; None: saved losslessly
    quantize: bool = True

    def check(self) -> None:
        _bounds(self.noise, f"{self.kind}.noise")
        _bounds(self.shot, f"{self.kind}.shot")
        if self.jpeg is not None:
            _, hi = _bounds(self.jpeg, f"{self.kind}.jpeg", low=1.0)
            if hi > 100:
                raise ConfigError(f"{self.kind}.jpeg: a JPEG quality is 1 to 100, got {hi:g}")

    def label(self) -> str:
        return self.kind

    @property
    def kernel_radius(self) -> int:
        """Static half-width of the kernel."""
        raise NotImplementedError

    def physical(self, u: Any) -> dict[str, Any]:
        """Map uniforms u[..., 0:2] in [0, 1) to named parameters (NaN where a kind has none)."""
        raise NotImplementedError

    def kernel(self, p: dict[str, Any]) -> Any:
        """A (2r+1, 2r+1) kernel that sums to 1, or (B, 2r+1, 2r+1) for parameters of shape [B]."""
        raise NotImplementedError

    def params(self, u: Any) -> dict[str, Any]:
        """Parameters from uniforms of shape [N_UNIFORMS] (one image) or [B, N_UNIFORMS] (a batch)."""
        nan = ops.full(ops.shape(u)[:-1], math.nan, dtype="float32")
        p = {name: nan for name in PARAM_NAMES}
        p.update(self.physical(u))
        p["noise"] = ops.cast(_draw(u[..., 3], _bounds(self.noise, "noise")), "float32")
        if self.has_shot:
            p["shot"] = ops.cast(_draw(u[..., 3], _bounds(self.shot, "shot")), "float32")
        if self.jpeg is not None:
            # JPEG qualities are whole numbers; record the one the codec uses
            p["quality"] = ops.round(ops.cast(_draw(u[..., 2], _bounds(self.jpeg, "jpeg")), "float32"))
        return p

    @property
    def has_shot(self) -> bool:
        return _bounds(self.shot, "shot")[1] > 0

    def finish(self, blurred: Any, p: dict[str, Any], gaussian_noise: Any, jpeg_origin: tuple[Any, Any] = (0, 0)
               ) -> Any:
        """Sensor noise, clipping to [0, 1], 8-bit rounding or JPEG, as a camera would after the blur.

        `blurred` is a BxHxWxC batch and `p` holds parameters of shape [] or [B]; `jpeg_origin` is where
        the JPEG block grid starts (see `jpeg.compress`).
        """
        return sensor(blurred, gaussian_noise, level=p["noise"], shot=p["shot"] if self.has_shot else None,
                      quality=p["quality"] if self.jpeg is not None else None, quantize=self.quantize,
                      jpeg_origin=jpeg_origin)

    def apply(self, image: Any, u: Any, gaussian_noise: Any, jpeg_origin: tuple[Any, Any] = (0, 0)
              ) -> tuple[Any, dict[str, Any]]:
        """Blur one HxWxC float image in [0, 1]; `gaussian_noise` is a standard-normal HxWxC draw.

        A training window that will be cropped at (top, left) passes that as `jpeg_origin`, so the
        crop has its JPEG blocks where a photo's tile would.
        """
        p = self.params(u)
        out = convolve(image[None], self.kernel(p), self.kernel_radius)
        return self.finish(out, p, gaussian_noise[None], jpeg_origin)[0], p


def _per_image(x: Any) -> Any:
    """A parameter of shape [] or [B] broadcast against a BxHxWxC batch."""
    return ops.reshape(x, (-1, 1, 1, 1))


def sensor(blurred: Any, gaussian_noise: Any, level: Any, shot: Any = None, quality: Any = None,
           quantize: Any = True, jpeg_weight: Any = None, jpeg_origin: tuple[Any, Any] = (0, 0)) -> Any:
    """Noise, clipping and 8-bit storage of a BxHxWxC batch; every parameter is [] or [B].

    `quantize` and `jpeg_weight` may be per-image 0/1 weights, so a batch that mixes degradations
    (the Keras pipeline's `Degrade` layer) finishes every image as its own degradation would.
    """
    std = _per_image(level)
    if shot is not None:  # Poisson-Gaussian: variance shot * signal + read noise squared
        std = ops.sqrt(_per_image(shot) * ops.maximum(blurred, 0.0) + std * std)
    out = ops.clip(blurred + std * gaussian_noise, 0.0, 1.0)
    if isinstance(quantize, bool):
        stored = ops.round(out * 255.0) / 255.0 if quantize else out
    else:
        q = _per_image(quantize)
        stored = q * (ops.round(out * 255.0) / 255.0) + (1.0 - q) * out
    if quality is None:
        return stored
    compressed = jpeg.compress(out, ops.where(ops.isnan(quality), 100.0, quality), jpeg_origin)
    if jpeg_weight is None:
        return compressed
    j = _per_image(jpeg_weight)
    return j * compressed + (1.0 - j) * stored


def _grid(radius: int) -> tuple[Any, Any]:
    x = ops.arange(-radius, radius + 1, dtype="float32")
    yy, xx = ops.meshgrid(x, x, indexing="ij")
    return yy, xx


def _normalise(k: Any) -> Any:
    return k / ops.sum(k, axis=(-2, -1), keepdims=True)


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
        return {"sigma": ops.cast(_draw(u[..., 0], _bounds(self.sigma, "sigma")), "float32")}

    def kernel(self, p: dict[str, Any]) -> Any:
        if self.ksize is not None:
            g = cv2.getGaussianKernel(self.ksize, float(_bounds(self.sigma, "sigma")[0])).astype(np.float32)
            return ops.broadcast_to(ops.convert_to_tensor(g @ g.T), (*ops.shape(p["noise"]), self.ksize, self.ksize))
        yy, xx = _grid(self.kernel_radius)
        s = _col(ops.maximum(p["sigma"], 1e-3))
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
        return {"length": ops.cast(_draw(u[..., 0], _bounds(self.length, "length")), "float32"),
                "angle": ops.cast(_draw(u[..., 1], _bounds(self.angle, "angle")), "float32")}

    def kernel(self, p: dict[str, Any]) -> Any:
        yy, xx = _grid(self.kernel_radius)
        theta = _col(p["angle"]) * (math.pi / 180.0)
        dx, dy = ops.cos(theta), -ops.sin(theta)  # image rows grow downwards
        half = _col(ops.maximum(p["length"] - 1.0, 0.0)) / 2.0
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
        return {"radius": ops.cast(_draw(u[..., 0], _bounds(self.radius, "radius")), "float32")}

    def kernel(self, p: dict[str, Any]) -> Any:
        yy, xx = _grid(self.kernel_radius)
        r = ops.sqrt(xx * xx + yy * yy)
        return _normalise(ops.clip(_col(p["radius"]) + 0.5 - r, 0.0, 1.0))


@DEGRADATIONS.register("shake")
@dataclass
class Shake(Degradation):
    """Camera shake: a random hand-shake trajectory (Boracchi and Foi 2012) rasterised with
    sub-pixel accuracy into a kernel whose larger side is `size` pixels (see `deblur.data.shake`)."""

    kind: ClassVar[str] = "shake"
    strength: ClassVar[tuple[str, float] | None] = ("size", 5.0)
    size: Range = (5.0, 35.0)  # type: ignore[assignment]

    def check(self) -> None:
        super().check()
        _bounds(self.size, "shake.size", low=1.0)

    def label(self) -> str:
        return f"shake size{fmt_range(self.size)}"

    @property
    def kernel_radius(self) -> int:
        return max(1, math.ceil(_bounds(self.size, "size")[1] / 2.0))

    def physical(self, u: Any) -> dict[str, Any]:
        # u[1] seeds the trajectory's shape; u[2] is left to the JPEG quality
        return {"size": ops.cast(_draw(u[..., 0], _bounds(self.size, "size")), "float32"),
                "path": ops.cast(u[..., 1], "float32")}

    def kernel(self, p: dict[str, Any]) -> Any:
        return shake.kernel(p["size"], p["path"], self.kernel_radius)


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
        return ops.ones((*ops.shape(p["noise"]), 1, 1), dtype="float32")


N_UNIFORMS = 4  # u[0], u[1]: kind parameters; u[2]: JPEG quality; u[3]: noise level (gain)


def convolve(images: Any, kernels: Any, radius: int, border: str = "reflect") -> Any:
    """Convolve each image of a BxHxWxC batch with its own kernel (Bxkxk, or one kxk for all).

    `border="reflect"` reflects as OpenCV does (BORDER_REFLECT_101) and keeps the size; "valid"
    returns only pixels whose whole neighbourhood is inside the input (H-2r x W-2r). The batch is
    folded into the channel axis, so a single depthwise convolution applies B different kernels.
    """
    if len(ops.shape(kernels)) == 2:
        kernels = ops.broadcast_to(kernels, (ops.shape(images)[0], *ops.shape(kernels)))
    if radius == 0:
        return images * kernels[:, :1, :1, None]
    if border == "reflect":
        images = ops.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="reflect")
    b, h, w, c = ops.shape(images)
    folded = ops.reshape(ops.transpose(images, (1, 2, 0, 3)), (1, h, w, b * c))
    k = ops.flip(kernels, axis=(1, 2))  # true convolution, not correlation
    k = ops.reshape(ops.repeat(ops.transpose(k, (1, 2, 0))[:, :, :, None], c, axis=3), (2 * radius + 1,
                                                                                      2 * radius + 1, b * c, 1))
    out = ops.depthwise_conv(folded, k, strides=1, padding="valid")[0]
    return ops.transpose(ops.reshape(out, (h - 2 * radius, w - 2 * radius, b, c)), (2, 0, 1, 3))


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


def spec_list(data_cfg: DataConfig) -> list[dict[str, Any]]:
    """`data.degradation` as a list: one spec, or several applied to every image in turn."""
    return data_cfg.degradation if isinstance(data_cfg.degradation, list) else [data_cfg.degradation]


def train_spec_list(data_cfg: DataConfig) -> list[dict[str, Any]]:
    """What training batches are blurred with: `data.train_degradation`, else `data.degradation`.

    A training mix may be wider than the protocol it is scored on (e.g. unblurred patches, so a model
    learns to leave sharp photos alone) without changing the validation and test sets.
    """
    mix = data_cfg.train_degradation
    if mix is None:
        return spec_list(data_cfg)
    return mix if isinstance(mix, list) else [mix]


def degradations(data_cfg: DataConfig) -> list[Degradation]:
    """The degradations of the validation and test sets (the protocol)."""
    return [make(s) for s in spec_list(data_cfg)]


def train_degradations(data_cfg: DataConfig) -> list[Degradation]:
    return [make(s) for s in train_spec_list(data_cfg)]


def to_spec(deg: Degradation) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": deg.kind}
    for f in fields(deg):
        value = getattr(deg, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def resolve_degradations(raw: dict[str, Any] | list[dict[str, Any]],
                         key: str = "data.degradation") -> list[dict[str, Any]]:
    """Validate one or several degradation specs and return them complete, with defaults."""
    specs = raw if isinstance(raw, list) else [raw]
    if not specs:
        raise ConfigError(f"{key}: the list is empty; give at least one degradation")
    return [to_spec(make(s, f"{key}[{i}]" if isinstance(raw, list) else key)) for i, s in enumerate(specs)]


def kernel_array(deg: Degradation, params: dict[str, float]) -> np.ndarray:
    """The kernel a degradation used for recorded parameters, for non-blind baselines (float64)."""
    p = {k: ops.convert_to_tensor(np.float32(v)) for k, v in params.items()}
    p.setdefault("noise", ops.convert_to_tensor(np.float32(0.0)))
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
    if deg.has_shot:
        text += f" + shot noise{fmt_range(deg.shot)}"
    if deg.jpeg is not None:
        text += f" + JPEG quality{fmt_range(deg.jpeg)}"
    return text
