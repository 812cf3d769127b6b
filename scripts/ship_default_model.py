#!/usr/bin/env python3
"""Copy a trained checkpoint into the package as a built-in network, without its optimizer state.

    python scripts/ship_default_model.py runs/default_model/best.keras [--gate]   # default.keras
    python scripts/ship_default_model.py runs/refiner/best.keras --refiner        # refiner.keras

The training checkpoint carries Adam's two moment estimates beside the weights (about 3x the size);
inference needs only the weights, so the shipped file is re-saved from the loaded model and checked
to give bit-identical outputs.

With `--gate` the model is shipped behind a do-no-harm gate (`deblur.models.gate`): its correction is
applied in proportion to how large it is locally, so a sharp photo comes back unchanged. The gate's
two thresholds are calibrated on the VALIDATION split of the run's own config (`config.yaml` beside
the checkpoint), never on the test split: the best mean PSNR over all validation items among the
thresholds that keep the unblurred items (kind `none`) within 0.1 dB of their input.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import numpy as np

PRETRAINED = Path(__file__).resolve().parent.parent / "src" / "deblur" / "pretrained"


def calibrated_gate(model, checkpoint: Path):
    """The model behind a ResidualGate whose thresholds maximise mean validation PSNR."""
    from deblur.config import load as load_config
    from deblur.data.base import load_splits
    from deblur.data.degrade import spec_list
    from deblur.data.evalset import EvalSet
    from deblur.imaging.metrics import psnr, quantize
    from deblur.models.gate import calibrate, gated

    config = checkpoint.parent / "config.yaml"
    if not config.is_file():
        raise SystemExit(f"error: {config} not found: --gate calibrates on the run's validation split")
    cfg = load_config(config)
    splits = load_splits(cfg.data, cfg.seed)
    val = EvalSet(splits.val, cfg.data, cfg.seed, "val", splits.paired)

    unblurred = np.array([s["kind"] == "none" for s in spec_list(cfg.data)])

    def score(out: np.ndarray, sharp: np.ndarray) -> float:
        return psnr(quantize(sharp), quantize(out))

    best = calibrate(model, ((b["blurred"], b["sharp"], unblurred[b["variant"]]) for b in val), score)
    missed = "" if best["met"] else " (no thresholds kept the unblurred items within 0.1 dB: least harm chosen)"
    print(f"gate calibrated on the validation split ({val.items} items): low {best['low']:g}, "
          f"high {best['high']:g}{missed}")
    print(f"  mean PSNR, all items: input {best['input']:.3f}, ungated {best['ungated']:.3f}, "
          f"gated {best['score']:.3f} dB")
    print(f"  mean PSNR, unblurred items: input {best['input_protected']:.3f}, "
          f"ungated {best['ungated_protected']:.3f}, gated {best['protected']:.3f} dB")
    return gated(model, best["low"], best["high"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--gate", action="store_true", help="ship behind a do-no-harm gate calibrated on validation")
    parser.add_argument("--refiner", action="store_true", help="ship as the built-in restorer's refiner "
                        "(refiner.keras; it has its own do-no-harm checks, so no --gate)")
    args = parser.parse_args()
    if args.gate and args.refiner:
        raise SystemExit("error: --gate is for the end-to-end network; the refiner runs behind the built-in "
                         "restorer's own checks")
    target = PRETRAINED / ("refiner.keras" if args.refiner else "default.keras")
    from deblur.restore.loading import load_model

    model = load_model(args.checkpoint)
    if args.gate:
        model = calibrated_gate(model, args.checkpoint)
    tmp = target.with_suffix(".tmp.keras")
    model.save(tmp)
    probe = np.random.default_rng(0).random((1, 64, 64, model.input_shape[-1]), dtype=np.float32)
    if not np.array_equal(np.asarray(model(probe)), np.asarray(load_model(tmp)(probe))):
        tmp.unlink()
        raise SystemExit("error: the re-saved model gives different outputs; nothing was shipped")
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    print(f"shipped {args.checkpoint} as {target} ({target.stat().st_size / 2**20:.1f} MiB, sha256 {digest})")


if __name__ == "__main__":
    main()
