"""The ONNX engine: a `.onnx` file run by onnxruntime (no TensorFlow, no Keras)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deblur.restore.engines.base import Engine, export_facts, require
from deblur.restore.engines.graphcheck import check_onnx


class OnnxEngine(Engine):
    name = "onnx"

    def __init__(self, path: Path, trust: bool = False) -> None:
        ort = require("onnxruntime", self.name, "onnx")
        if not trust:  # read from the file before onnxruntime loads it
            check_onnx(path)
        self.source = path
        # the CPU provider only: others listed by a GPU build would be tried first and fail noisily here
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        spec = self.session.get_inputs()[0]
        self.input_name = spec.name
        facts = export_facts(path, list(spec.shape))
        self.channels, self.multiple, self.fixed_size = facts.channels, facts.multiple, facts.fixed_size

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})[0]
        return np.asarray(out, dtype=np.float32)


def load(path: Path, trust: bool = False) -> OnnxEngine:
    return OnnxEngine(path, trust)
