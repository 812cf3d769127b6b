"""The LiteRT (TensorFlow Lite) engine: a `.tflite` file run by ai_edge_litert with its default XNNPACK
CPU delegate (no TensorFlow, no Keras).

A model with dynamic height and width (shape signature -1) is resized to each batch's shape; a
fixed-size model (static shape, `fixed_size` in its sidecar) gets batches of that size only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deblur.restore.engines.base import Engine, export_facts, require
from deblur.restore.engines.graphcheck import check_litert


class LiteRtEngine(Engine):
    name = "litert"

    def __init__(self, path: Path, trust: bool = False) -> None:
        interpreter = require("ai_edge_litert.interpreter", self.name, "litert")
        self.source = path
        self.interpreter = interpreter.Interpreter(model_path=str(path))
        if not trust:  # the operators it read from the file; nothing runs before allocate/invoke
            check_litert(path, self.interpreter)
        detail = self.interpreter.get_input_details()[0]
        signature = [int(d) for d in detail.get("shape_signature", detail["shape"])]
        facts = export_facts(path, signature)
        self.channels, self.multiple, self.fixed_size = facts.channels, facts.multiple, facts.fixed_size
        self.dynamic = min(signature[:3]) < 0  # -1: a size the model takes as it comes
        self.input_index = detail["index"]
        self.output_index = self.interpreter.get_output_details()[0]["index"]
        self.shape: tuple[int, ...] | None = None

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape != self.shape:  # resizing reallocates every tensor: only when the shape changes
            if self.dynamic:
                self.interpreter.resize_tensor_input(self.input_index, list(batch.shape), strict=True)
            self.interpreter.allocate_tensors()
            self.shape = batch.shape
        self.interpreter.set_tensor(self.input_index, np.ascontiguousarray(batch, dtype=np.float32))
        self.interpreter.invoke()
        # a copy: the interpreter reuses its output buffer on the next call
        return np.array(self.interpreter.get_tensor(self.output_index), dtype=np.float32)


def load(path: Path, trust: bool = False) -> LiteRtEngine:
    return LiteRtEngine(path, trust)
