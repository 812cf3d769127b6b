"""Resuming an interrupted evaluation: the fingerprint its journaled rows depend on, and the
up-front check of the output folder that decides whether a journal is continued."""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from deblur import __version__
from deblur.core.errors import DeblurError
from deblur.core.owned import check_replaceable
from deblur.evaluation import baselines as bl
from deblur.evaluation.evaljournal import Partial, Resumed, check, normalized
from deblur.evaluation.results import PICTURE_NAMES, REPORT_NAMES, legacy_report

if TYPE_CHECKING:
    from deblur.data.evalset import EvalSet
    from deblur.evaluation.evaljob import MetricOptions


@dataclass(frozen=True)
class Resumption:
    """Where rows are journaled, and what an interrupted run being continued left there."""

    partial: Partial | None = None  # where rows are journaled as they are scored; None: nowhere
    fingerprint: dict[str, Any] = field(default_factory=dict)  # what the journal's rows depend on
    resumed: Resumed | None = None  # an interrupted run's journal being continued
    replace_reports: bool = False
    baselines: dict[str, Any] = field(default_factory=dict)  # the settings the continued run tuned


def model_digest(model: Any) -> str:
    """sha256 of a model's architecture and weights: what its scores depend on, wherever its file lies."""
    from keras import ops

    h = hashlib.sha256(type(model).__name__.encode())
    with contextlib.suppress(Exception):  # a model Keras cannot describe is known by its weights alone
        h.update(json.dumps(model.get_config(), sort_keys=True, default=str).encode())
    for w in getattr(model, "weights", []):
        value = np.ascontiguousarray(ops.convert_to_numpy(getattr(w, "value", w)))  # torch: detached
        h.update(f"{getattr(w, 'path', w.name)}:{value.dtype}:{value.shape};".encode())
        h.update(value.tobytes())
    return h.hexdigest()



def fingerprint(batches: EvalSet, names: list[str], models: dict[str, Any], options: MetricOptions, align: bool,
                baselines: list[str], data: dict[str, Any]) -> dict[str, Any]:
    """Everything a journaled row depends on; a resumed run must match it in every entry."""
    import keras

    digest = hashlib.sha256("\n".join(names).encode("utf-8", "surrogateescape")).hexdigest()
    return {**data, "image_names": digest, "items": batches.items, "batch": batches.batch,
            "models": {label: model_digest(m) for label, m in models.items()},
            "metric_options": options.fingerprint(), "baselines": baselines, "align": align,
            "backend": keras.backend.backend(), "deblur_version": __version__}


def take_over(partial: Partial | None, fingerprint: dict[str, Any], batches: int) -> Resumption:
    """Check the output folder before any work; an interrupted run's journal is continued when `resumed` is set.

    Earlier reports are refused now, not after the whole split has been scored. A resumed run may
    replace them if the run it continues was allowed to (--overwrite when it began).
    """
    if partial is None:
        return Resumption()
    normal = normalized(fingerprint)
    resumed = check(partial, fingerprint, batches)
    replace_reports = partial.overwrite or bool(resumed and resumed.header.get("replace_reports"))
    journaled = resumed is not None
    if resumed is not None and resumed.last < 0:
        # no batch was committed: no chain proves the header's state (its baselines' settings), and there is
        # nothing to take over; start again, with a new header (an edited state gave another report, rc 0)
        resumed = None
    folder = partial.path.parent
    existing = [folder / n for n in REPORT_NAMES if (folder / n).exists()]
    if existing and not replace_reports:
        if partial.resume and not journaled:
            raise DeblurError(f"--resume: {folder} holds the reports of a finished evaluation, not an interrupted "
                              "one; pass --overwrite (without --resume) to score again")
        raise DeblurError(f"{existing[0]} already exists; pass --overwrite to replace it, or --output DIR")
    check_replaceable([folder / n for n in (*REPORT_NAMES, *PICTURE_NAMES)], legacy=legacy_report)
    settings: dict[str, Any] = {}
    if resumed is not None:
        stored = resumed.header.get("state", {}).get("baselines", {})
        for name, value in stored.items():  # the grid's own value: JSON turned its tuples into lists
            grid = bl.BASELINES.get(name).grid
            settings[name] = next((g for g in grid if normalized(g) == value), value)
    return Resumption(partial, normal, resumed, replace_reports, settings)
