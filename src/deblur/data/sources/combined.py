"""Several sources as one training set of sharp images, blurred on the fly.

A general-purpose model needs more kinds of photographs than one dataset holds. Each part is
loaded and split by its own rules (the samples by name, Kaggle scenes by scene), so a part's test
images stay out of training exactly as they do when that part is benchmarked on its own. Real
blurred twins are dropped: the combined set is for synthetic blur, where the kernel is known.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from deblur.core.errors import ConfigError, DataError
from deblur.core.schema import check_kwargs, defaults_of
from deblur.data.base import SOURCES, ImageSet, Source, Splits, describe_counts
from deblur.data.store import PROBE_THREADS, ArrayStore, ChainStore, ImageStore
from deblur.imaging.imageio import convert_channels

PART_KEYS = ("source", "path", "options")


def options(parts: list[dict[str, Any]] | None = None) -> None:
    """parts: a list of {source, path, options} mappings, each as data.source / data.path / data.options."""


def _check_part(i: int, part: Any) -> tuple[Source, str | None, dict[str, Any]]:
    key = f"data.options.parts[{i}]"
    if not isinstance(part, dict) or "source" not in part:
        raise ConfigError(f"{key}: expected a mapping like {{source: samples, path: null, options: {{}}}}")
    extra = [k for k in part if k not in PART_KEYS]
    if extra:
        raise ConfigError(f"{key}.{extra[0]}: unknown key; allowed keys: {', '.join(PART_KEYS)}")
    if part["source"] == "combined":
        raise ConfigError(f"{key}.source: a combined source cannot contain another")
    source = SOURCES.get(part["source"], f"{key}.source")
    source.check_path(part.get("path"))
    opts = part.get("options") or {}
    if not isinstance(opts, dict):
        raise ConfigError(f"{key}.options: expected a mapping, got {opts!r}")
    return source, part.get("path"), {**defaults_of(source.options),
                                      **check_kwargs(source.options, opts, f"{key}.options")}


def _join(sets: list[tuple[str, ImageSet]], channels: int) -> ImageSet:
    """Concatenate the parts' sharp images, once each: a paired dataset repeats a scene's sharp shot
    for each of its blurred twins, and a duplicate would only weigh that scene double.

    Two images are duplicates when their pixels are (as before streaming: a SHA-1 of the pixels).
    Parts read from disk stay on disk (a `ChainStore`); only images whose size in bytes (from the
    headers) another image shares can have its pixels, so only those are read (see `_pixel_keys`).
    """
    refs = [(s.sharp if isinstance(s.sharp, ImageStore) else ArrayStore(s.sharp), i, f"{prefix}/{name}")
            for prefix, s in sets for i, name in enumerate(s.names)]
    shapes = [shape for _, s in sets for shape in s.shapes()]  # headers, probed in parallel per part
    keys = _pixel_keys([(images, i) for images, i, _ in refs], shapes)
    kept, names, seen = [], [], set()
    for k, (images, i, name) in enumerate(refs):
        key = keys.get(k)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        kept.append((images, i))
        names.append(name)
    if not any(s.streamed for _, s in sets):
        return ImageSet(sharp=[convert_channels(np.asarray(store[i]), channels) for store, i in kept], names=names)
    chain = ChainStore(kept).map(lambda im: convert_channels(im, channels), lambda shape: (*shape[:2], channels))
    return ImageSet(sharp=chain, names=names)


def _pixel_keys(refs: list[tuple[ImageStore, int]], shapes: Sequence[tuple[int, ...]]) -> dict[int, bytes]:
    """SHA-1 of the pixels of every image that has a possible duplicate: one whose byte count
    (h * w * c, from headers) another image shares; a unique size cannot match any other pixels.

    A file is hashed by its bytes first: the same file (or a byte-identical copy) read at the same
    shape gives the same pixels (the parts' transforms are channel conversions, fixed by the shape),
    so each distinct file is decoded once. An image that cannot be read here is kept, to be named and
    skipped when a pipeline meets it, as any unreadable file is.
    """
    sizes = [math.prod(shape) for shape in shapes]
    count = Counter(sizes)
    candidates = [k for k, size in enumerate(sizes) if count[size] > 1]

    def first_key(k: int) -> tuple[Any, ...]:
        store, i = refs[k]
        path = Path(store.label(i))
        if isinstance(store, ArrayStore) or not path.is_file():  # in memory, or a packed shard
            return ("pixels", _sha1(store[i]))
        return ("file", hashlib.sha1(path.read_bytes()).digest(), shapes[k])

    def pixels_of(k: int) -> bytes | None:
        store, i = refs[k]
        try:
            return _sha1(store[i])
        except DataError:
            return None

    with ThreadPoolExecutor(PROBE_THREADS) as pool:  # file reads and decodes release the GIL
        firsts = dict(zip(candidates, pool.map(_safe(first_key), candidates), strict=True))
        to_decode: dict[tuple[Any, ...], int] = {}  # one image per distinct file
        for k in candidates:
            first = firsts[k]
            if first is not None and first[0] == "file":
                to_decode.setdefault(first, k)
        decoded = dict(zip(to_decode, pool.map(pixels_of, to_decode.values()), strict=True))
    keys: dict[int, bytes] = {}
    for k in candidates:
        first = firsts[k]
        key = None if first is None else first[1] if first[0] == "pixels" else decoded[first]
        if key is not None:
            keys[k] = key
    return keys


def _sha1(image: np.ndarray) -> bytes:
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).digest()


def _safe(fn: Callable[[int], tuple[Any, ...]]) -> Callable[[int], tuple[Any, ...] | None]:
    def call(k: int) -> tuple[Any, ...] | None:
        try:
            return fn(k)
        except (DataError, OSError):
            return None
    return call


def load(path: str | None, *, seed: int, val_split: float, test_split: float,
         parts: list[dict[str, Any]] | None = None) -> Splits:
    del path
    if not parts:
        raise ConfigError("data.options.parts: list at least one source to combine")
    checked = [_check_part(i, p) for i, p in enumerate(parts)]
    loaded = [(p["source"], source.load(part_path, seed=seed, val_split=val_split, test_split=test_split, **opts))
              for p, (source, part_path, opts) in zip(parts, checked, strict=True)]
    channels = max(s.channels for _, s in loaded)
    joined = {split: _join([(name, s.get(split)) for name, s in loaded], channels)
              for split in ("train", "val", "test")}
    splits = Splits(joined["train"], joined["val"], joined["test"], channels=channels, description="")
    splits.description = describe_counts(
        "combined", splits, " (" + "; ".join(s.description for _, s in loaded) + "; real blurred twins unused)")
    return splits


SOURCES.register("combined")(Source(load=load, options=options, path="none",
                                    summary="several sources' sharp images as one set, blurred on the fly"))
