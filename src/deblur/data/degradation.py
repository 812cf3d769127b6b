"""The degradation a camera applies, in `keras.ops`: the base class every blur kind extends (its
parameters drawn from uniform numbers), the per-image convolution and the sensor (noise, clipping,
8-bit storage or JPEG). The kinds themselves are in deblur.data.blurkinds; deblur.data.degrade
builds them from the config.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from keras import ops

from deblur.core.errors import ConfigError
from deblur.core.registry import Registry
from deblur.data import jpeg

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


def fmt_range(value: Range) -> str:
    if isinstance(value, list | tuple):
        return f"~U({value[0]:g}, {value[1]:g})" if value[0] != value[1] else f"={value[0]:g}"
    return f"={value:g}"
