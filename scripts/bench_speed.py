#!/usr/bin/env python3
"""Training and inference speed: the classic reports' plain Keras script against deblur's pipeline.

    python scripts/bench_speed.py --data ../shared/data            # writes the "Speed" section of BENCHMARKS.md
    python scripts/bench_speed.py --epochs 3 --no-write             # a quicker look, printed only

Both training paths run in this one process on the same images, model and batch size:
  1. plain: the seed reports' way. NumPy arrays in memory, each image blurred once with
     cv2.GaussianBlur in a Python loop (sigma ~ U(0, 3)), then `model.fit(x, y)` with defaults.
  2. deblur: `deblur.data.pipeline.train_dataset` (fresh crops and kernels every epoch, applied with
     TensorFlow ops in a parallel map, prefetched) and the training settings of the config.
Plus the pipeline alone (no model), the pipeline with XLA and with bfloat16 mixed precision, and
the Keras pipeline that JAX and PyTorch use (PyDataset crops, blur applied in the model on the device).
The first epoch of every path is a warm-up (tracing, oneDNN kernel selection) and is not counted;
figures are medians over the remaining epochs with (min-max). Peak memory is the largest resident
set sampled every 20 ms during each phase (the process's own RSS, so later phases include what
earlier ones left allocated).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


class PeakRSS:
    """Sample this process's resident set size in a thread; `peak` is the largest seen since start()."""

    def __init__(self, every: float = 0.02) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()

    @staticmethod
    def now() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def __enter__(self) -> PeakRSS:
        self.peak = self.now()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, self.now())

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def epoch_timer():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.seconds.append(time.perf_counter() - self._start)

    return EpochTimer()


def fresh_model(cfg: Any, channels: int, jit: bool | str = "auto", precision: str = "none",
                on_device_blur: bool = False):
    import keras

    from deblur.training import distribute as dist
    from deblur.training.train import build_model

    keras.utils.set_random_seed(cfg.seed)
    dist.set_precision(precision)
    model = build_model(cfg, channels)
    if precision != "none":
        model = dist.float32_output(model)
    if on_device_blur:
        from deblur.data.degrade import train_spec_list
        from deblur.data.on_device import with_degradation

        model = with_degradation(model, train_spec_list(cfg.data), channels, cfg.seed, None)
    model.compile(optimizer=keras.optimizers.Adam(cfg.train.learning_rate), loss="mse", jit_compile=jit)
    return model


def train_plain(cfg: Any, sharp: np.ndarray, epochs: int, seed: int) -> dict[str, Any]:
    """The seed reports' loop: blur every image once with OpenCV, then fit on the arrays."""
    import cv2

    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    x = np.empty(sharp.shape, np.float32)
    y = sharp.astype(np.float32) / 255.0
    for i, img in enumerate(y):
        sigma = rng.uniform(0.0, 3.0)
        x[i] = cv2.GaussianBlur(img, (0, 0), sigma) if sigma > 0.05 else img
    prep = time.perf_counter() - start
    model = fresh_model(cfg, sharp.shape[-1])
    timer = epoch_timer()
    history = model.fit(x, y, batch_size=cfg.data.batch_size, epochs=epochs + 1, verbose=0, callbacks=[timer])
    return {"prep_seconds": prep, "epoch_seconds": timer.seconds[1:], "images": len(sharp),
            "loss": history.history.get("loss", [])}


def train_pipeline(cfg: Any, images: Any, epochs: int, jit: bool | str = "auto",
                   precision: str = "none") -> dict[str, Any]:
    from deblur.data.pipeline import train_dataset

    ds = train_dataset(images, cfg.data, cfg.seed, paired=False)
    model = fresh_model(cfg, int(images.sharp[0].shape[-1]), jit, precision)
    timer = epoch_timer()
    history = model.fit(ds, epochs=epochs + 1, verbose=0, callbacks=[timer], shuffle=False)
    from deblur.training import distribute as dist

    dist.set_precision("none")
    return {"epoch_seconds": timer.seconds[1:], "images": len(images) * cfg.data.crops_per_image,
            "loss": history.history.get("loss", [])}


def train_keras_pipeline(cfg: Any, images: Any, epochs: int) -> dict[str, Any]:
    """The backend-neutral path: a PyDataset of crops, the blur applied on the device in the model."""
    from deblur.data.sequence import TrainBatches

    seq = TrainBatches(images, cfg.data, cfg.seed, paired=False)
    model = fresh_model(cfg, int(images.sharp[0].shape[-1]), on_device_blur=True)
    timer = epoch_timer()
    history = model.fit(seq, steps_per_epoch=seq.steps, epochs=epochs + 1, verbose=0, callbacks=[timer],
                        shuffle=False)
    return {"epoch_seconds": timer.seconds[1:], "images": len(images) * cfg.data.crops_per_image,
            "loss": history.history.get("loss", [])}


def pipeline_only(cfg: Any, images: Any, epochs: int) -> dict[str, Any]:
    from deblur.data.pipeline import train_dataset

    ds = train_dataset(images, cfg.data, cfg.seed, paired=False)
    seconds = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        for _batch in ds:
            pass
        seconds.append(time.perf_counter() - start)
    return {"epoch_seconds": seconds[1:], "images": len(images) * cfg.data.crops_per_image}


def time_calls(fn: Callable[[], Any], repeats: int, check: Callable[[Any], None] | None = None) -> list[float]:
    first = fn()  # warm-up: tracing and kernel selection
    if check is not None:
        check(first)
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def check_output(image: np.ndarray, name: str) -> None:
    """A model whose output holds NaN or inf failed: its speed is not reported as if it worked."""
    if not np.isfinite(image).all():
        raise SystemExit(f"error: the inference model produced non-finite output (NaN/inf) on {name}: "
                         "it failed, so its speed is not reported")


def inference(model: Any, repeats: int, big: tuple[int, int]) -> dict[str, Any]:
    from deblur.restore.engines import as_engine
    from deblur.restore.predict import restore_batch, restore_full

    model = as_engine(model)  # once: the restore functions take an Engine
    rng = np.random.default_rng(0)
    out = {}
    for side in (256, 1024):
        image = rng.random((1, side, side, 3), dtype=np.float32)
        seconds = time_calls(lambda im=image: restore_batch(model, im), repeats,
                             check=lambda out, s=side: check_output(out, f"a {s}x{s} image"))
        out[f"{side}x{side}"] = {"megapixels": side * side / 1e6, "seconds": spread(seconds)}
    image = rng.random((*big, 3), dtype=np.float32)
    restore_full(model, image[:512, :512])  # warm-up on one tile's shape; the photo itself runs once
    with PeakRSS() as rss:
        start = time.perf_counter()
        restored = restore_full(model, image)
        seconds = [time.perf_counter() - start]
    check_output(restored, f"the {big[1]}x{big[0]} photo")
    del restored
    out[f"{big[1]}x{big[0]} tiled"] = {"megapixels": big[0] * big[1] / 1e6, "seconds": spread(seconds),
                                       "peak_rss": rss.peak}
    return out


def load_images(cfg: Any, limit: int) -> Any:
    from deblur.data.base import load_splits

    splits = load_splits(cfg.data, cfg.seed)
    return splits.train.subset(range(min(limit, len(splits.train))))


def run(args: argparse.Namespace) -> dict[str, Any]:
    from deblur import config as cfgmod

    cifar = args.data / "cifar-10-batches-py"
    overrides = [f"data.path={cifar}"] if cifar.is_dir() and args.config.startswith("configs/cifar10") else []
    cfg = cfgmod.load(ROOT / args.config, [*overrides, *args.set])
    # whole images, one per step slot, so both paths train on exactly the same number of pixels
    cfg.data = dataclasses.replace(cfg.data, crop=None, crops_per_image=1)
    images = load_images(cfg, args.images)
    if images.uniform_size is None:
        raise SystemExit("error: the images differ in size; set data.resize (e.g. --set data.resize=[64,64])")
    sharp = np.stack(images.sharp)
    h, w = sharp.shape[1:3]
    result: dict[str, Any] = {"data": cfg.data.source,
                              "config": args.config, "overrides": [*overrides, *args.set], "model": cfg.model.type,
                              "model_kwargs": cfg.model.kwargs, "batch_size": cfg.data.batch_size,
                              "images": len(images), "image_size": [h, w], "epochs_timed": args.epochs}
    from deblur.training import backend

    result["backend"] = backend.name()
    tf_data = [  # the tf.data rows need the TensorFlow backend
        ("deblur", lambda: train_pipeline(cfg, images, args.epochs)),
        ("pipeline only", lambda: pipeline_only(cfg, images, args.epochs)),
        ("deblur + XLA", lambda: train_pipeline(cfg, images, args.epochs, jit=True)),
        ("deblur + bfloat16", lambda: train_pipeline(cfg, images, args.epochs, precision="bfloat16")),
    ]
    phases: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("plain", lambda: train_plain(cfg, sharp, args.epochs, cfg.seed)),
        *(tf_data if result["backend"] == "tensorflow" else []),
        ("deblur, Keras pipeline", lambda: train_keras_pipeline(cfg, images, args.epochs)),
    ]
    result["training"] = {}
    for name, phase in phases:
        print(f"timing: {name}", flush=True)
        with PeakRSS() as rss:
            r = phase()
        per_epoch = spread(r["epoch_seconds"])
        ips = [r["images"] / s for s in r["epoch_seconds"]]
        result["training"][name] = {**r, "epoch": per_epoch, "images_per_second": spread(ips),
                                    "megapixels_per_second": spread([v * h * w / 1e6 for v in ips]),
                                    "peak_rss": rss.peak,
                                    # a loss that became NaN/inf: the timing stands, the training failed
                                    "finite_loss": all(math.isfinite(v) for v in r.get("loss", []))}
    from deblur.restore.loading import load_model

    model = fresh_model(cfg, sharp.shape[-1])
    if args.checkpoint:
        model = load_model(args.checkpoint)
    result["inference_model"] = str(args.checkpoint or f"{cfg.model.type} (untrained, same architecture)")
    result["inference_parameters"] = int(model.count_params())
    print("timing: inference", flush=True)
    result["inference"] = inference(model, args.repeats, tuple(args.photo))
    return result


def hardware() -> str:
    from benchmark import hardware as hw

    return hw()


def mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def fmt_spread(s: dict[str, float], spec: str = ".1f") -> str:
    return f"{format(s['median'], spec)} ({format(s['min'], spec)}-{format(s['max'], spec)})"


def section(result: dict[str, Any], command: str) -> str:
    t = result["training"]
    base = t["plain"]["images_per_second"]["median"]
    h, w = result["image_size"]
    from benchmark import SPEED

    lines = [SPEED, "",
             f"Produced by `{command}` on {time.strftime('%Y-%m-%d')}; hardware: {hardware()}.", "",
             f"Training: {result['images']} `{result['data']}` images of {w}x{h} per epoch (one patch per image), "
             f"model `{result['model']}` {json.dumps(result['model_kwargs'])}, batch {result['batch_size']}, MSE, "
             f"Adam; medians over {result['epochs_timed']} timed epochs after one warm-up epoch, (min-max).", "",
             "| path | s / epoch | images/s | megapixels/s | x plain (medians) | x plain (best epochs) | peak RSS |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    best = t["plain"]["images_per_second"]["max"]
    for name, r in t.items():
        ratio, ratio_best = r["images_per_second"]["median"] / base, r["images_per_second"]["max"] / best
        failed = "" if r.get("finite_loss", True) else " **(FAILED: its loss became NaN/inf)**"
        lines.append(f"| {name}{failed} | {fmt_spread(r['epoch'], '.2f')} | "
                     f"{fmt_spread(r['images_per_second'], '.0f')} | "
                     f"{fmt_spread(r['megapixels_per_second'], '.2f')} | {ratio:.2f} | {ratio_best:.2f} | "
                     f"{mb(r['peak_rss'])} |")
    lines += ["", f"The plain script also spent {t['plain']['prep_seconds']:.1f} s blurring its arrays once with "
              "OpenCV before training (not counted above); it then trains on those same blurred copies every epoch, "
              "while deblur draws new crops and kernels each epoch. 'pipeline only' iterates the input pipeline "
              "without a model: when it is far faster than 'deblur', the input pipeline is not the bottleneck. "
              "On a shared machine whole epochs of any path (the plain script's too) sometimes run at about half "
              "speed; a median over a few epochs can land on them, the best epoch cannot, so both ratios are shown. "
              "'deblur, Keras pipeline' is the path JAX and PyTorch use (a PyDataset of crops, the blur applied "
              f"inside the model's input step), here run on the {result.get('backend', 'tensorflow')} backend.", "",
              f"Inference with {result['inference_model']} ({result['inference_parameters']:,} parameters), "
              "medians over repeated calls after a warm-up:", "",
              "| input | seconds | megapixels/s |", "| --- | ---: | ---: |"]
    for name, r in result["inference"].items():
        s = r["seconds"]
        mps = r["megapixels"] / s["median"]
        extra = f" (peak RSS {mb(r['peak_rss'])})" if "peak_rss" in r else ""
        lines.append(f"| {name}{extra} | {fmt_spread(s, '.3f')} | {mps:.2f} |")
    return "\n".join(lines) + "\n"


def replace_section(path: Path, text: str) -> None:
    """Put `text` in place of the Speed section of BENCHMARKS.md (or append it), keeping the rest."""
    from benchmark import split_speed
    from deblur.imaging.imageio import atomic_write_text

    head, _, rest = split_speed(path.read_text() if path.is_file() else "# Benchmarks\n")
    atomic_write_text(path, head.rstrip("\n") + "\n\n" + text + ("\n" + rest if rest else ""))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--config", default="configs/cifar10_unet.yaml", help="model, batch size and data to time")
    ap.add_argument("--set", action="append", default=[], help="config override, as in deblur train --set")
    ap.add_argument("--images", type=int, default=2048, help="training images per epoch")
    ap.add_argument("--epochs", type=int, default=4, help="timed epochs per path (after one warm-up epoch)")
    ap.add_argument("--repeats", type=int, default=5, help="timed inference calls per size")
    ap.add_argument("--checkpoint", type=Path, default=None, help="time inference with this model instead")
    ap.add_argument("--photo", type=int, nargs=2, default=[4000, 6000], metavar=("H", "W"),
                    help="size of the photo restored in tiles (default: 24 MP)")
    ap.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    os.chdir(ROOT)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = run(args)
    result["hardware"] = hardware()
    result["python"] = platform.python_version()
    command = " ".join(["python", "scripts/bench_speed.py", *sys.argv[1:]])
    text = section(result, command)
    print(text)
    if not args.no_write:
        replace_section(args.output, text)
        from deblur.evaluation.evaluate import json_safe
        from deblur.imaging.imageio import atomic_write_text

        # JSON has no NaN: a non-finite loss is written as null
        atomic_write_text(args.output.with_name("BENCHMARKS_speed.json"),
                          json.dumps(json_safe(result), indent=2, allow_nan=False) + "\n")
        print(f"wrote the Speed section of {args.output}")


if __name__ == "__main__":
    main()
