"""Checking raw YAML values against type hints and function signatures: the generic half of config.

A leaf module (it imports only deblur.core.errors), so that the registries' own modules (data sources,
degradations) can validate their options with the same rules and messages as deblur.config without
importing it: config reads the registries, never the other way round (tests/test_layers.py).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin

from deblur.core.errors import ConfigError

Size = int | list[int]


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


MAX_INT = 2**63 - 1


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Return `value` checked against the annotation `tp`, or raise a ConfigError naming `key`.

    Only lossless conversions are made (an int where a float is wanted, a list where a tuple is):
    a string is never silently turned into a number, and a bool is never accepted as an int.
    """
    if tp is Any or tp is inspect.Parameter.empty:
        return value
    origin = get_origin(tp)
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{key}: {value!r} is not allowed; choose one of: {_type_name(tp)}")
    if origin in (Union, types.UnionType):
        errors = []
        for option in get_args(tp):
            try:
                return coerce(value, option, key)
            except ConfigError as exc:
                errors.append((option, exc))
        # When the value has the shape of exactly one option (a list for `float | list[float]`),
        # that option's own error says more than "expected float or list[float]".
        same_shape = [exc for option, exc in errors if _shape(option) == _shape(type(value))]
        if len(same_shape) == 1:
            raise same_shape[0]
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {describe_value(value)}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{key}: expected null, got {describe_value(value)}")
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):  # a dataclass annotation (never an instance)
        return build(tp, value, key)
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected {_type_name(tp)}, got {describe_value(value)}")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
            return tuple(coerce(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args, strict=True)))
        item = args[0] if args else Any
        out = [coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {describe_value(value)}")
        args = get_args(tp)
        vt = args[1] if args else Any
        return {str(k): coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {describe_value(value)}")
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            if abs(value) > MAX_INT:  # TensorFlow and NumPy take 64-bit integers: beyond, a crash mid-run
                raise ConfigError(f"{key}: {value:.3g} is too large; integers here go up to {MAX_INT:.3g}")
            return value
        raise ConfigError(f"{key}: expected an integer, got {describe_value(value)}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{key}: expected a finite number, got {value}")
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {describe_value(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{key}: expected a string, got {describe_value(value)}")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {describe_value(value)}")
    return value


def _shape(tp: Any) -> str:
    """'list', 'mapping' or 'scalar': what kind of YAML node a type accepts."""
    origin = get_origin(tp) or tp
    if origin in (list, tuple, Sequence):
        return "list"
    if origin in (dict, Mapping) or dataclasses.is_dataclass(origin):
        return "mapping"
    return "scalar"


def describe_value(value: Any) -> str:
    if value is None:
        return "null"
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def unknown_key_error(key: str, allowed: Sequence[str]) -> ConfigError:
    name = key.rsplit(".", 1)[-1]
    hint = difflib.get_close_matches(name, list(allowed), n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    return ConfigError(f"{key}: unknown key{suggestion}; allowed keys: {', '.join(sorted(allowed))}")


def build(cls: type, raw: Any, prefix: str = "") -> Any:
    """Build dataclass `cls` from a mapping, checking every key and type."""
    where = prefix or "config"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {describe_value(raw)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            raise unknown_key_error(full, names)
        kwargs[key] = coerce(value, hints[key], full)
    return cls(**kwargs)


def check_kwargs(func: Callable[..., Any], kwargs: Mapping[str, Any], prefix: str,
                 reserved: Sequence[str] = ()) -> dict[str, Any]:
    """Check `kwargs` against `func`'s keyword parameters (their annotations and required ones)."""
    sig = inspect.signature(func)
    hints = typing.get_type_hints(func)
    params = {n: p for n, p in sig.parameters.items()
              if n not in reserved and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}
    out = {}
    for key, value in kwargs.items():
        full = f"{prefix}.{key}"
        if key not in params:
            raise unknown_key_error(full, list(params))
        out[key] = coerce(value, hints.get(key, Any), full)
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in out]
    if missing:
        raise ConfigError(f"{prefix}.{missing[0]}: required, but not set")
    return out


def defaults_of(func: Callable[..., Any], reserved: Sequence[str] = ()) -> dict[str, Any]:
    """The keyword defaults of `func`, so a saved config states every value that was used."""
    sig = inspect.signature(func)
    return {n: p.default for n, p in sig.parameters.items()
            if n not in reserved and p.default is not inspect.Parameter.empty}


def as_size(value: Size | None, key: str) -> tuple[int, int] | None:
    """Normalise `128` or `[128, 128]` to `(height, width)`."""
    if value is None:
        return None
    size = [value, value] if isinstance(value, int) else list(value)
    if len(size) != 2 or any(s < 1 for s in size):
        raise ConfigError(f"{key}: expected a positive size like 128 or [height, width], got {value!r}")
    return int(size[0]), int(size[1])
