"""`deblur benchmark-formats`: every installed export format measured on this machine, side by side.

The checkpoint is exported to each format (checked as `deblur export` checks it) in a temporary
folder. Each format, and Keras itself, then runs in its own subprocess so that one runtime's memory
never counts against another: the worker reports its peak resident memory (VmHWM), speed on a
size x size image in one call (median of a few runs after a warm-up), speed on a large photo tiled
exactly as `deblur predict` tiles it (`deblur.restore.predict.restore_full`), and the PSNR of the fixed
blurred check photo it restored. The fastest engine on the large photo becomes `--engine auto`'s
choice for this checkpoint here (`deblur.restore.engines.cache.store_choice`).

Run as `python -m deblur.evaluation.format_bench WORK_JSON` it is the worker.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deblur.core.errors import DeblurError, arg
from deblur.restore.predict import DEFAULT_OVERLAP as OVERLAP
from deblur.restore.predict import DEFAULT_TILE as TILE

KERAS = "keras"
BIG_ASPECT = 1.5  # the large photo is 3:2, as camera sensors are
WORKER_TIMEOUT_S = 3600


@dataclass
class Row:
    """One format's measurements; None where it was not measured (`error` says why)."""

    format: str
    file_mb: float | None = None
    export_s: float | None = None
    ms_per_mp: float | None = None  # one call on a size x size image
    tiled_ms_per_mp: float | None = None  # the large photo, tiled as predict tiles it
    peak_mb: float | None = None
    max_diff_levels: float | None = None  # vs Keras on the check photo, 8-bit levels before rounding
    psnr_db: float | None = None  # restored check photo vs its sharp original
    error: str | None = None


def big_shape(megapixels: float) -> tuple[int, int]:
    """(H, W) of a 3:2 photo with about this many megapixels (at least one pixel each way)."""
    w = max(1, round(math.sqrt(megapixels * 1e6 * BIG_ASPECT)))
    return max(1, round(w / BIG_ASPECT)), w


def run_benchmark(checkpoint: Path | None, formats: list[str] | None, size: int, big_mp: float, runs: int = 3,
                  log: Callable[[str], object] = print) -> tuple[list[Row], dict[str, Any]]:
    """Export and measure; returns the rows (Keras first) and the run's settings for the JSON report."""
    from deblur.restore.export import FORMATS, checkpoint_path, installed_formats, require_runtime

    if size < 1 or runs < 1:
        raise DeblurError(f"{arg('size')} and {arg('runs')} must be positive")
    if not math.isfinite(big_mp) or big_mp <= 0:  # NaN passed `<= 0` and failed only after every export
        raise DeblurError(f"{arg('big')} {big_mp}: must be a positive number of megapixels")
    from deblur.core.limits import check_image_memory

    check_image_memory((size, size), 3, arg("size"))  # float32 images the workers allocate, before any export
    check_image_memory(big_shape(big_mp), 3, arg("big"))
    if formats:
        for name in formats:
            require_runtime(FORMATS.get(name, arg("formats")), arg("formats"))
    else:
        formats = installed_formats()
    source = checkpoint_path(checkpoint)
    rows = [Row(KERAS, file_mb=source.stat().st_size / 2**20, export_s=0.0, max_diff_levels=0.0)]
    from deblur.restore.engines.cache import cache_dir

    work = cache_dir() / "benchmark"  # deblur writes nowhere but its outputs and its own cache
    work.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="deblur-formats-", dir=work) as tmp:
        folder = Path(tmp)
        _write_check_images(source, folder)
        targets = {KERAS: source}
        for name in formats:
            log(f"exporting {name} ...")
            row = Row(name)
            rows.append(row)
            try:
                result = _export(source, name, folder)
            except Exception as exc:  # one format failing must not hide the others' results
                row.error = _first_line(exc)
                continue
            row.file_mb, row.export_s = result.size_bytes / 2**20, result.export_seconds
            row.max_diff_levels = result.raw_diff_levels
            targets[name] = result.path
        for row in rows:
            if row.format not in targets:
                continue
            log(f"measuring {row.format} ...")
            measured = _measure_in_subprocess(row.format, targets[row.format], folder, size, big_mp, runs)
            for key, value in measured.items():
                setattr(row, key, value)
    settings = {"checkpoint": str(source), "size": size, "big_megapixels": big_mp, "runs": runs,
                "tile": TILE, "overlap": OVERLAP}
    return rows, settings


def fastest(rows: list[Row]) -> Row | None:
    """The engine with the lowest tiled ms/MP (the large-photo case predict runs), among rows that ran."""
    ok = [r for r in rows if r.error is None and r.tiled_ms_per_mp is not None]
    return min(ok, key=lambda r: math.inf if r.tiled_ms_per_mp is None else r.tiled_ms_per_mp) if ok else None


def store_fastest(checkpoint: Path, rows: list[Row]) -> tuple[Row | None, list[str]]:
    """Record the fastest engine as `--engine auto`'s choice for this checkpoint on this machine, but
    only when every installed format was measured: the best of a subset (`--formats`) must not replace
    what an earlier full run chose. Returns the fastest row and the installed formats left out (when
    any, nothing was stored)."""
    from deblur.restore.engines.cache import store_choice
    from deblur.restore.export import installed_formats

    best = fastest(rows)
    measured = {r.format for r in rows}
    left_out = [name for name in installed_formats() if name not in measured]
    if best is not None and not left_out:
        store_choice(checkpoint, best.format, {"tiled_ms_per_mp": best.tiled_ms_per_mp,
                                               "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return best, left_out


COLUMNS = (  # header, Row field, format
    ("format", "format", "{}"), ("file MB", "file_mb", "{:.2f}"), ("export s", "export_s", "{:.1f}"),
    ("ms/MP", "ms_per_mp", "{:.0f}"), ("tiled ms/MP", "tiled_ms_per_mp", "{:.0f}"),
    ("peak MB", "peak_mb", "{:.0f}"), ("max diff", "max_diff_levels", "{:.2f}"), ("PSNR dB", "psnr_db", "{:.2f}"),
)


def table(rows: list[Row]) -> str:
    """The rows as an aligned text table; a failed format shows its error after the measured columns."""
    cells = [[h for h, _, _ in COLUMNS]]
    for row in rows:
        values = [getattr(row, field) for _, field, _ in COLUMNS]
        cells.append([fmt.format(v) if v is not None else "-" for (_, _, fmt), v in zip(COLUMNS, values, strict=True)])
    widths = [max(len(r[i]) for r in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in cells]
    for row, i in ((r, i) for i, r in enumerate(rows, start=1)):
        if row.error:
            lines[i] += f"  error: {row.error}"
    return "\n".join(lines)


def report(rows: list[Row], settings: dict[str, Any], chosen: str | None) -> dict[str, Any]:
    from deblur.restore.engines.cache import cpu_name, runtime_versions

    return {**settings, "cpu": cpu_name(), "versions": runtime_versions(), "engine_auto": chosen,
            "rows": [asdict(r) for r in rows]}


def _export(source: Path, name: str, folder: Path):
    from deblur.restore.export import FORMATS, export_model

    spec = FORMATS.get(name)
    return export_model(source, name, folder / f"model{spec.suffix or '_saved_model'}")


def _write_check_images(source: Path, folder: Path) -> None:
    """The blurred check photo and its sharp original, in the model's channels, for the workers
    (which must not import Keras to make them: it would count in their memory)."""
    from deblur.data.blur import blur_image
    from deblur.data.sources.samples import read_sample
    from deblur.imaging.imageio import convert_channels
    from deblur.restore.export import CHECK_BLUR, CHECK_SAMPLE
    from deblur.restore.loading import load_model

    channels = int(load_model(source).input_shape[-1])
    sharp = convert_channels(read_sample(CHECK_SAMPLE), channels)
    np.save(folder / "sharp.npy", sharp)
    np.save(folder / "blurred.npy", blur_image(sharp, CHECK_BLUR))


def _measure_in_subprocess(engine: str, path: Path, folder: Path, size: int, big_mp: float,
                           runs: int) -> dict[str, Any]:
    work = {"engine": engine, "path": str(path), "folder": str(folder), "size": size, "big_mp": big_mp, "runs": runs}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        done = subprocess.run([sys.executable, "-m", "deblur.evaluation.format_bench", json.dumps(work)],
                              capture_output=True, text=True, env=env, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {WORKER_TIMEOUT_S} s"}
    last = done.stdout.strip().splitlines()[-1:] if done.stdout.strip() else []
    if done.returncode != 0 or not last:
        tail = [s for s in done.stderr.strip().splitlines() if s.strip()]
        return {"error": (tail[-1] if tail else f"worker exited with status {done.returncode}")[:300]}
    return json.loads(last[0])


def _first_line(exc: BaseException) -> str:
    return next((s.strip() for s in str(exc).splitlines() if s.strip()), type(exc).__name__)[:300]


def _peak_mb() -> float:
    """This process's peak resident memory (Linux VmHWM; elsewhere getrusage's maximum)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(s.split()[1]) for s in f if s.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        import resource

        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return rss / 2**20 if sys.platform == "darwin" else rss / 1024  # bytes on macOS, KiB elsewhere


def _ms_per_mp(fn: Callable[[], Any], pixels: int, runs: int, warm_up: Callable[[], Any] | None = None) -> float:
    """Median time of `runs` calls of `fn` after one warm-up call (graph building, tensor allocation)."""
    (warm_up or fn)()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times) / (pixels / 1e6)


def _time_whole(engine, size: int, runs: int) -> float:
    """ms/MP restoring a size x size image in one call (no tiles), median of `runs`."""
    from deblur.restore.predict import restore_full

    square = np.random.default_rng(0).random((size, size, engine.channels), dtype=np.float32)
    return _ms_per_mp(lambda: restore_full(engine, square, tile=0), size * size, runs)


def _time_tiled(engine, megapixels: float) -> float:
    """ms/MP restoring a photo of `megapixels` in predict's tiles: one pass (already ~100 calls on 24 MP);
    every tile has the one shape its layout chose, so a single tile of that shape warms up."""
    from deblur.imaging.tiling import plan_layout
    from deblur.restore.predict import restore_full

    big = np.random.default_rng(1).random((*big_shape(megapixels), engine.channels), dtype=np.float32)
    m = engine.multiple
    th, tw = plan_layout(-(-big.shape[0] // m) * m, -(-big.shape[1] // m) * m, TILE, OVERLAP, m).tile_shape
    return _ms_per_mp(lambda: restore_full(engine, big, TILE, OVERLAP), big.shape[0] * big.shape[1], 1,
                      warm_up=lambda: restore_full(engine, big[:th, :tw], TILE, OVERLAP))


def worker(work: dict[str, Any]) -> dict[str, Any]:
    """Measure one engine (runs in its own process; see the module docstring)."""
    from deblur.imaging.imageio import from_float, to_float
    from deblur.imaging.metrics import psnr
    from deblur.restore.engines import load_engine
    from deblur.restore.predict import restore_full

    engine = load_engine(Path(work["path"]), work["engine"], trust=True)  # deblur's own export, just checked
    folder, runs = Path(work["folder"]), int(work["runs"])
    ms, tiled = _time_whole(engine, int(work["size"]), runs), _time_tiled(engine, float(work["big_mp"]))
    sharp, blurred = np.load(folder / "sharp.npy"), np.load(folder / "blurred.npy")
    restored = from_float(restore_full(engine, to_float(blurred), TILE, OVERLAP))
    return {"ms_per_mp": ms, "tiled_ms_per_mp": tiled, "psnr_db": psnr(to_float(sharp), to_float(restored)),
            "peak_mb": _peak_mb()}


if __name__ == "__main__":
    print(json.dumps(worker(json.loads(sys.argv[1]))))
