"""Blur synthesis: kernels and their application, written with `keras.ops` only.

Each degradation kind turns a few uniform random numbers into physical parameters (sigma, motion
length and angle, defocus radius, noise level) and those into a kernel. Randomness comes from the
caller, so the same code serves a training pipeline that draws new kernels every epoch and a test
split that is fixed by its seed, on any Keras backend.

Every kernel has a static size per configuration (from the largest parameter it can draw), so it
compiles once; a smaller blur simply leaves the outer taps near zero.

The base class, the convolution and the sensor are in deblur.data.degradation, the blur kinds in
deblur.data.blurkinds; this module builds the configured degradations from their specs.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np
from keras import ops

from deblur.core.errors import ConfigError
from deblur.core.schema import build
from deblur.core.settings import DataConfig
from deblur.data.blurkinds import Defocus, Gaussian, Identity, Motion, Shake  # registered in DEGRADATIONS
from deblur.data.degradation import (
    DEGRADATIONS,
    N_UNIFORMS,
    PARAM_NAMES,
    Degradation,
    Range,
    _bounds,
    convolve,
    fmt_range,
    sensor,
)

# with the names callers and tests import from here, where they were defined before the split
__all__ = ["DEGRADATIONS", "N_UNIFORMS", "PARAM_NAMES", "Defocus", "Degradation", "Gaussian", "Identity", "Motion",
           "Range", "Shake", "_bounds", "convolve", "degradations", "describe", "fmt_range", "kernel_array", "make",
           "resolve_degradations", "sensor", "spec_list", "to_spec", "train_degradations", "train_spec_list"]


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
