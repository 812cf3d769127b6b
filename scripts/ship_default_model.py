#!/usr/bin/env python3
"""Copy a trained checkpoint into the package as the built-in model, without its optimizer state.

    python scripts/ship_default_model.py runs/bench/default_model/best.keras

The training checkpoint carries Adam's two moment estimates beside the weights (about 3x the size);
inference needs only the weights, so the shipped file is re-saved from the loaded model and checked
to give bit-identical outputs.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np

TARGET = Path(__file__).resolve().parent.parent / "src" / "deblur" / "pretrained" / "default.keras"


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    from deblur.predict import load_model

    model = load_model(sys.argv[1])
    tmp = TARGET.with_suffix(".tmp.keras")
    model.save(tmp)
    probe = np.random.default_rng(0).random((1, 64, 64, model.input_shape[-1]), dtype=np.float32)
    if not np.array_equal(np.asarray(model(probe)), np.asarray(load_model(tmp)(probe))):
        tmp.unlink()
        raise SystemExit("error: the re-saved model gives different outputs; nothing was shipped")
    os.chmod(tmp, 0o644)
    os.replace(tmp, TARGET)
    digest = hashlib.sha256(TARGET.read_bytes()).hexdigest()
    print(f"shipped {sys.argv[1]} as {TARGET} ({TARGET.stat().st_size / 2**20:.1f} MiB, sha256 {digest})")


if __name__ == "__main__":
    main()
