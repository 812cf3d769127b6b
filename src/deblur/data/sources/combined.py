"""Several sources as one training set of sharp images, blurred on the fly.

A general-purpose model needs more kinds of photographs than one dataset holds. Each part is
loaded and split by its own rules (the samples by name, Kaggle scenes by scene), so a part's test
images stay out of training exactly as they do when that part is benchmarked on its own. Real
blurred twins are dropped: the combined set is for synthetic blur, where the kernel is known.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from deblur.data.base import SOURCES, ImageSet, Source, Splits, describe_counts
from deblur.data.store import ArrayStore, ChainStore, ImageStore
from deblur.errors import ConfigError
from deblur.imageio import convert_channels
from deblur.schema import check_kwargs, defaults_of

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

    Images in memory are told apart by their pixels; parts read from disk stay on disk (a
    `ChainStore`), a duplicate there being the same file.
    """
    refs, names, seen = [], [], set()
    for prefix, s in sets:
        images = s.sharp if isinstance(s.sharp, ImageStore) else ArrayStore(s.sharp)
        for i, name in enumerate(s.names):
            key = images.label(i) if s.streamed else hashlib.sha1(np.ascontiguousarray(images[i]).tobytes()).digest()
            if key in seen:
                continue
            seen.add(key)
            refs.append((images, i))
            names.append(f"{prefix}/{name}")
    if not any(s.streamed for _, s in sets):
        return ImageSet(sharp=[convert_channels(np.asarray(store[i]), channels) for store, i in refs], names=names)
    chain = ChainStore(refs).map(lambda im: convert_channels(im, channels), lambda shape: (*shape[:2], channels))
    return ImageSet(sharp=chain, names=names)


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
