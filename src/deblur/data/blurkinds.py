"""The blur kinds: Gaussian (or OpenCV's fixed-size Gaussian), linear motion, defocus, camera shake and
none, each a kernel built from its drawn parameters, registered in DEGRADATIONS under its `kind`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import cv2
import numpy as np
from keras import ops

from deblur.core.errors import ConfigError
from deblur.data import shake
from deblur.data.degradation import DEGRADATIONS, Degradation, Range, _bounds, _col, _draw, fmt_range


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
