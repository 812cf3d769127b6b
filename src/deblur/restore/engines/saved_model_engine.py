"""The SavedModel engine: a TensorFlow SavedModel folder run by TensorFlow (the one exported format that
needs it), through its serving signature."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deblur.core.errors import DeblurError
from deblur.restore.engines.base import Engine, export_facts, require
from deblur.restore.engines.graphcheck import check_saved_model

SIGNATURE = "serving_default"


class SavedModelEngine(Engine):
    name = "saved_model"

    def __init__(self, path: Path, trust: bool = False) -> None:
        tf = require("tensorflow", self.name, None)
        if not trust:  # read from saved_model.pb before TensorFlow loads (and so may run) any of it
            check_saved_model(path)
        self.tf = tf
        self.source = path
        try:
            loaded = tf.saved_model.load(str(path))
            self.fn = loaded.signatures[SIGNATURE]
        except (KeyError, OSError, ValueError) as exc:
            reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise DeblurError(f"{path}: cannot load this SavedModel with a {SIGNATURE} signature ({reason})") from None
        self._loaded = loaded  # the signature's variables live as long as the loaded object
        specs = self.fn.structured_input_signature[1]
        if len(specs) != 1:
            raise DeblurError(f"{path}: not an image restoration model (its signature takes {len(specs)} inputs)")
        (self.input_name, spec), = specs.items()
        dims = spec.shape.as_list() if spec.shape.rank is not None else []
        facts = export_facts(path, [d if d is not None else -1 for d in dims])
        self.channels, self.multiple, self.fixed_size = facts.channels, facts.multiple, facts.fixed_size

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = self.fn(**{self.input_name: self.tf.constant(batch, dtype=self.tf.float32)})
        return np.asarray(next(iter(out.values())), dtype=np.float32)


def load(path: Path, trust: bool = False) -> SavedModelEngine:
    return SavedModelEngine(path, trust)
