"""The OpenVINO engine: an `.xml` + `.bin` pair run by OpenVINO on the CPU (no TensorFlow, no Keras)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from deblur.core.errors import DeblurError
from deblur.restore.engines.base import Engine, export_facts, require
from deblur.restore.engines.graphcheck import check_openvino


class OpenVinoEngine(Engine):
    name = "openvino"

    def __init__(self, path: Path, trust: bool = False) -> None:
        ov = require("openvino", self.name, "openvino")
        if not path.with_suffix(".bin").is_file():
            raise DeblurError(f"{path}: its weights {path.with_suffix('.bin').name} are missing (an OpenVINO model "
                              "is an .xml and a .bin file side by side)")
        if not trust:  # read from the .xml before OpenVINO loads it
            check_openvino(path)
        self.source = path
        core = ov.Core()
        model = core.read_model(str(path))
        shape = model.input(0).get_partial_shape()
        dims = [d.get_length() if d.is_static else None for d in shape] if shape.rank.is_static else []
        facts = export_facts(path, dims)
        self.channels, self.multiple, self.fixed_size = facts.channels, facts.multiple, facts.fixed_size
        # f32, not the bf16 OpenVINO picks by itself on CPUs with AMX. bf16 is faster for the built-in model
        # (a 12 MP photo in predict's tiles, one process, 2-core AMX CPU: 23.5 s, f32 36.8 s, Keras 35.3 s,
        # within one 8-bit level of Keras) but not for every model: a tiny random U-Net moved by 3 levels,
        # which would fail `deblur export`'s check. Exactness first; see BENCHMARKS.md.
        self.compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        self.output = self.compiled.output(0)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        out = self.compiled(np.ascontiguousarray(batch, dtype=np.float32))[self.output]
        return np.asarray(out, dtype=np.float32)


def load(path: Path, trust: bool = False) -> OpenVinoEngine:
    return OpenVinoEngine(path, trust)
