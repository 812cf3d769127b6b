#!/usr/bin/env python3
"""Scale benchmark (issue 14): start-up time, training images/s and peak memory against dataset size.

    python scripts/scale_benchmark.py generate 10000 data/scale/all        # pairs folder, offline, resumable
    python scripts/scale_benchmark.py run --data data/scale/all --path stream --steps 60
    python scripts/scale_benchmark.py report --root data/scale            # the whole matrix -> docs/scale_benchmark.*

`generate N OUT` writes N synthetic-but-realistic 1280x720 pairs (`OUT/sharp/000123.jpg` and its twin
`OUT/blur/000123.jpg`, JPEG quality 95): the sharp image is a random crop of a random photo of
`../shared/data/photos` (crop window 50-100% of the largest 16:9 window the photo holds, resized to
1280x720, so smaller photos are upscaled; random horizontal flip), blurred by one of deblur's own
degradations (camera shake 5-35 px, linear motion 3-35 px, Gaussian sigma 0-3, defocus radius 1-8,
each with Poisson-Gaussian sensor noise). Pair i depends only on (seed, i), so the folder is the same
whatever the number of worker processes, and running again with a larger N only adds pairs.

Blur: the kernel and the sensor noise are deblur's (`Degradation.params/kernel/finish`, keras.ops);
the convolution is `cv2.filter2D` with the flipped kernel and OpenCV's BORDER_REFLECT_101, which is
what `deblur.data.degrade.convolve` computes. Measured on one 1280x720 photo (2-core CPU, shared):
`Degradation.apply` (TensorFlow depthwise convolution) took 0.24 s (19x19 kernel) to 0.91 s (37x37
shake kernel); the OpenCV path with the same kernel and noise took 0.08-0.13 s on TensorFlow and
0.08-0.10 s on Keras's numpy backend, which the workers use (it imports in half the time). The
results agree to one 8-bit level at a few pixels (mean absolute difference below 1e-7).

`run` trains `deblur train` in a subprocess on a tiny U-Net (crop 128, batch 8, one epoch of S steps,
no evaluation at the end) through one of three input paths: `memory` (`data.in_memory: true`, every
image decoded at start), `stream` (`data.in_memory: false`) and `packed` (`deblur pack DATA DATA.pack`
first, timed separately; then training reads the pack). The subprocess is deblur's own CLI entry
point with one extra Keras callback (installed by this script, nothing in deblur changes) that
timestamps every training batch, so:
  start-up   = subprocess launch -> the first training batch begins (imports, listing, decoding or
               opening the data, building the model and the input pipeline);
  images/s   = batch size x steps / time, over the steps after the first few (tracing, warm-up);
  peak RSS   = the largest sum of VmRSS over the process and all its descendants, sampled every 0.2 s
               (RssAnon, the part that is not file pages such as a memory-mapped pack, is kept too).
Validation uses 8 pairs (fewer below N=64) at every N, so it costs the same at every size.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
PHOTOS = ROOT.parent / "shared" / "data" / "photos"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
QUALITY = 95
KB_PER_PAIR_1280x720 = 500  # two JPEGs of quality 95, ~250 KB each: the disk estimate
MANIFEST = "generate.json"
# The blur mix: deblur's degradation specs, one drawn per pair (uniformly).
MIX: tuple[dict[str, Any], ...] = tuple(
    {**blur, "noise": [0.0, 0.01], "shot": [0.0, 0.0003]}
    for blur in ({"kind": "shake", "size": [5.0, 35.0]}, {"kind": "motion", "length": [3.0, 35.0]},
                 {"kind": "gaussian", "sigma": [0.0, 3.0]}, {"kind": "defocus", "radius": [1.0, 8.0]}))
WINDOW = (0.5, 1.0)  # crop window as a fraction of the largest window of the output's aspect
VAL_PAIRS = 8  # validation (and test) pairs at every N, so their cost does not grow with N
TIMES_ENV = "DEBLUR_SCALE_TIMES"  # where the timing callback writes its lines
PATHS = ("memory", "stream", "packed")
DEFAULT_SIZES = (200, 2000, 10000)
# The in-memory path runs only where the decoded dataset is under this share of RAM: while it starts, the
# tf.data pipeline holds the decoded list, its flat concatenation and the tensor made from it (up to 3
# copies), so 11 GB decoded (N = 2,000) would need more than this 24 GiB machine has.
MEMORY_FIT = 0.25
GiB = 2 ** 30


class BenchError(Exception):
    """A user mistake or a missing prerequisite: printed as one `error:` line."""


# ---------------------------------------------------------------------------------------------- generate


@dataclass(frozen=True)
class GenSpec:
    seed: int = 0
    width: int = 1280
    height: int = 720
    photos: str = str(PHOTOS)

    def record(self, names: Sequence[str]) -> dict[str, Any]:
        return {**asdict(self), "photo_names": list(names), "quality": QUALITY, "mix": list(MIX),
                "window": list(WINDOW)}


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720): width x height, as image sizes are usually written."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise BenchError(f"--size: expected WIDTHxHEIGHT such as 1280x720, got {text!r}") from None
    if w < 16 or h < 16:
        raise BenchError(f"--size: {w}x{h} is too small (16x16 at least)")
    return w, h


def photo_list(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise BenchError(f"--photos: {folder} is not a folder of photos")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    if not photos:
        raise BenchError(f"--photos: {folder} holds no .jpg or .png photos")
    return photos


def pair_name(i: int) -> str:
    return f"{i:06d}.jpg"


def is_done(out: Path, i: int) -> bool:
    """Both files are written atomically, sharp first, so a blurred file means a complete pair."""
    return (out / "blur" / pair_name(i)).is_file() and (out / "sharp" / pair_name(i)).is_file()


def crop_window(photo_hw: tuple[int, int], out_wh: tuple[int, int], rng: np.random.Generator
                ) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a random window of the output's aspect, 50-100% of the largest."""
    ph, pw = photo_hw
    ow, oh = out_wh
    scale = min(ph / oh, pw / ow)  # the largest window of the output's aspect inside the photo
    f = rng.uniform(*WINDOW)
    h, w = max(1, min(ph, round(oh * scale * f))), max(1, min(pw, round(ow * scale * f)))
    top, left = int(rng.integers(0, ph - h + 1)), int(rng.integers(0, pw - w + 1))
    return top, left, h, w


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """What `deblur.data.degrade.convolve` computes for one HxWxC float image, with OpenCV (faster on a CPU).

    filter2D correlates: the flipped kernel makes it a true convolution; BORDER_REFLECT_101 is the
    reflection deblur pads with.
    """
    import cv2

    flipped = np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float32)
    out = cv2.filter2D(image, -1, flipped, borderType=cv2.BORDER_REFLECT_101)
    return out.reshape(image.shape)  # OpenCV drops a single channel's axis


def make_pair(i: int, spec: GenSpec, photo: Callable[[int], np.ndarray], n_photos: int
              ) -> tuple[np.ndarray, np.ndarray, str]:
    """(sharp, blurred, kind) of pair i: HxWx3 uint8 RGB, from (seed, i) alone."""
    import cv2
    from keras import ops

    from deblur.data.degrade import N_UNIFORMS, make

    rng = np.random.default_rng([spec.seed, i])
    source = photo(int(rng.integers(n_photos)))
    top, left, h, w = crop_window(source.shape[:2], (spec.width, spec.height), rng)
    window = source[top:top + h, left:left + w]
    shrink = w >= spec.width
    sharp = cv2.resize(window, (spec.width, spec.height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
    if rng.random() < 0.5:
        sharp = sharp[:, ::-1]
    sharp = np.ascontiguousarray(sharp)
    spec_i = MIX[int(rng.integers(len(MIX)))]
    deg = make(dict(spec_i), "mix")
    u = rng.random(N_UNIFORMS, dtype=np.float32)
    noise = rng.standard_normal(sharp.shape, dtype=np.float32)
    p = deg.params(ops.convert_to_tensor(u))
    kernel = np.asarray(ops.convert_to_numpy(deg.kernel(p)), np.float32)
    blurred = convolve(sharp.astype(np.float32) / 255.0, kernel)
    finished = deg.finish(ops.convert_to_tensor(blurred[None]), p, ops.convert_to_tensor(noise[None]))
    blurred8 = np.clip(np.round(ops.convert_to_numpy(finished)[0] * 255.0), 0, 255).astype(np.uint8)
    return sharp, blurred8, spec_i["kind"]


def write_jpeg(path: Path, rgb: np.ndarray) -> None:
    """Through a temporary name, so an interrupted run never leaves half a file under the real name."""
    import cv2

    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    if not ok:
        raise BenchError(f"{path}: OpenCV could not encode the JPEG")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, path)


def work(out: Path, n: int, spec: GenSpec, shard: int, shards: int) -> int:
    """Write the missing pairs i < n with i % shards == shard (one worker's share); returns how many."""
    import cv2

    photos = photo_list(Path(spec.photos))
    cache: dict[int, np.ndarray] = {}

    def photo(k: int) -> np.ndarray:
        if k not in cache:  # 27 photos of ~1 MP: all of them fit easily
            image = cv2.imread(str(photos[k]), cv2.IMREAD_COLOR)
            if image is None:
                raise BenchError(f"{photos[k]}: OpenCV cannot read this photo")
            cache[k] = image[:, :, ::-1]
        return cache[k]

    written = 0
    for i in range(shard, n, shards):
        if is_done(out, i):
            continue
        sharp, blurred, _ = make_pair(i, spec, photo, len(photos))
        write_jpeg(out / "sharp" / pair_name(i), sharp)
        write_jpeg(out / "blur" / pair_name(i), blurred)
        written += 1
    return written


def check_manifest(out: Path, spec: GenSpec, names: Sequence[str]) -> None:
    """A folder holds one protocol: adding pairs of another seed or size would mix two data sets."""
    path = out / MANIFEST
    record = spec.record(names)
    if path.is_file() and any((out / "blur").glob("*.jpg")):  # without pairs yet, new settings just replace it
        old = json.loads(path.read_text())
        keys = ("seed", "width", "height", "photo_names", "quality", "mix", "window")
        differs = [k for k in keys if old.get(k) != record[k]]
        if differs:
            raise BenchError(f"{out} was generated with other settings ({', '.join(differs)}: "
                             f"{old.get(differs[0])!r}); choose another OUT folder or delete it")
        return
    path.write_text(json.dumps(record, indent=1) + "\n")


def count_done(out: Path, n: int) -> int:
    blurred = {p.name for p in (out / "blur").iterdir()} if (out / "blur").is_dir() else set()
    sharp = {p.name for p in (out / "sharp").iterdir()} if (out / "sharp").is_dir() else set()
    return sum(1 for i in range(n) if pair_name(i) in blurred and pair_name(i) in sharp)


def generate(n: int, out: Path, spec: GenSpec, workers: int = 2, echo: Callable[[str], Any] = print) -> int:
    """Make OUT hold pairs 0..n-1, adding only the missing ones, with `workers` processes; returns how many."""
    if n < 1:
        raise BenchError(f"N: must be 1 or more, got {n}")
    if workers < 1:
        raise BenchError(f"--workers: must be 1 or more, got {workers}")
    names = [p.name for p in photo_list(Path(spec.photos))]
    out.mkdir(parents=True, exist_ok=True)
    check_manifest(out, spec, names)
    for sub in ("blur", "sharp"):
        (out / sub).mkdir(exist_ok=True)
    before = count_done(out, n)
    missing = n - before
    per_pair = KB_PER_PAIR_1280x720 * 1024 * spec.width * spec.height / (1280 * 720)
    need, free = missing * per_pair, shutil.disk_usage(out).free
    echo(f"generate: {n} pairs of {spec.width}x{spec.height} in {out} (seed {spec.seed}); {before} there already, "
         f"{missing} to make, ~{need / GiB:.2f} GiB (~{per_pair * n / GiB:.2f} GiB for all {n}); "
         f"{free / GiB:.0f} GiB free")
    if missing == 0:
        return 0
    if need > free:
        raise BenchError(f"{out}: ~{need / GiB:.1f} GiB needed, only {free / GiB:.1f} GiB free")
    extra = len(list((out / "blur").glob("*.jpg"))) - before
    if extra > 0:
        echo(f"note: {out} also holds {extra} pairs beyond the first {n}; training reads them all")
    start = time.monotonic()
    env = {**os.environ, "KERAS_BACKEND": "numpy", "TF_CPP_MIN_LOG_LEVEL": "3", "OMP_NUM_THREADS": "1"}
    # a worker's messages go to a file: a pipe nobody reads while it runs could fill and stall it
    with contextlib.ExitStack() as files:
        logs = [files.enter_context(tempfile.TemporaryFile("w+")) for _ in range(workers)]
        procs = [subprocess.Popen([sys.executable, str(SCRIPT), "_work", str(n), str(out), "--seed", str(spec.seed),
                                   "--size", f"{spec.width}x{spec.height}", "--photos", spec.photos,
                                   "--shard", f"{k}/{workers}"], env=env, stdout=log, stderr=subprocess.STDOUT)
                 for k, log in enumerate(logs)]
        try:
            while any(p.poll() is None for p in procs):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    next(p for p in procs if p.poll() is None).wait(timeout=5.0)  # returns at once when it ends
                done = count_done(out, n)
                rate = (done - before) / max(time.monotonic() - start, 1e-9)
                eta = f"~{(n - done) / rate:.0f} s left" if rate > 0 else "workers starting"
                echo(f"  {done}/{n} pairs, {rate:.1f} pairs/s, {eta}")
        except KeyboardInterrupt:
            for p in procs:
                p.terminate()
            raise
        failed = [log for p, log in zip(procs, logs, strict=True) if p.wait() != 0]
        if failed:
            failed[0].seek(0)
            last = [line for line in failed[0].read().splitlines() if line.strip()] or ["no message"]
            raise BenchError(f"a generation worker failed: {last[-1].removeprefix('error: ')}")
    elapsed = time.monotonic() - start
    made = count_done(out, n) - before
    echo(f"generated {made} pairs in {elapsed:.1f} s ({made / max(elapsed, 1e-9):.2f} pairs/s, {workers} processes)")
    return made


# ---------------------------------------------------------------------------------------------- memory


def _status(pid: int) -> dict[str, int]:
    """VmRSS and RssAnon of one process, in bytes (empty if it has gone)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                out[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def descendants(pid: int) -> list[int]:
    """pid and every process below it, from the parent ids in /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])  # the name may hold spaces and parentheses
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


class TreeRSS:
    """The peak over time of the summed resident memory of a process and its descendants."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid, self.every = pid, every
        self.peak_rss = self.peak_anon = self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> None:
        stats = [_status(p) for p in descendants(self.pid)]
        self.peak_rss = max(self.peak_rss, sum(s.get("VmRSS", 0) for s in stats))
        self.peak_anon = max(self.peak_anon, sum(s.get("RssAnon", 0) for s in stats))
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.every)

    def __enter__(self) -> TreeRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Measured:
    returncode: int
    seconds: float
    peak_rss: int  # bytes, the process tree's summed VmRSS
    # Not getrusage's ru_maxrss: Linux carries a parent's peak into a forked child across exec (a child
    # of a 700 MB pytest reported 700 MB), and it is one process's peak, not the tree's.
    peak_anon: int
    launched: float  # time.time() at launch


def measure(cmd: Sequence[str], log: Path, env: dict[str, str] | None = None, timeout: float | None = None,
            every: float = 0.2) -> Measured:
    """Run cmd (output to `log`), sampling its process tree's memory; killed after `timeout` seconds."""
    with log.open("w") as out:
        launched, start = time.time(), time.monotonic()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        with TreeRSS(proc.pid, every) as rss:
            try:
                while True:
                    pid, status = os.waitpid(proc.pid, os.WNOHANG)
                    if pid:
                        break
                    if timeout is not None and time.monotonic() - start > timeout:
                        os.killpg(proc.pid, 9)  # its own session: the whole tree, nothing else
                        pid, status = os.waitpid(proc.pid, 0)
                        break
                    time.sleep(0.05)
            except BaseException:  # Ctrl-C reaches only this process: the child's own session must go too
                os.killpg(proc.pid, 9)
                os.waitpid(proc.pid, 0)
                raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(proc.returncode, time.monotonic() - start, rss.peak_rss, rss.peak_anon, launched)


# ---------------------------------------------------------------------------------------------- run


def install_timer(path: Path) -> Callable[[], None]:
    """Make every `keras.Model.fit` also run a callback that timestamps its training batches.

    Lines go to `path`: `begin <time>` when the first batch starts, then `end <step> <time>` after
    each. Returns the function that undoes it.
    """
    import keras

    times = open(path, "w", buffering=1)  # noqa: SIM115 - line-buffered for the life of the process

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.step = 0

        def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
            if self.step == 0:
                times.write(f"begin {time.time():.6f}\n")

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.step += 1
            times.write(f"end {self.step} {time.time():.6f}\n")

    fit = keras.Model.fit

    def timed_fit(self: Any, *args: Any, callbacks: list | None = None, **kwargs: Any) -> Any:
        return fit(self, *args, callbacks=[*(callbacks or []), Timer()], **kwargs)

    def restore() -> None:
        keras.Model.fit = fit
        times.close()

    keras.Model.fit = timed_fit
    return restore


def _train_with_timer() -> None:
    """`deblur train` exactly as the CLI runs it, plus the batch timer (deblur itself is unchanged)."""
    install_timer(Path(os.environ[TIMES_ENV]))
    from deblur.cli import main

    sys.argv = ["deblur", *sys.argv[2:]]
    main()


def read_times(path: Path) -> tuple[float | None, list[float]]:
    """(first batch start, end time of each step) from the timer's lines."""
    begin, ends = None, []
    if path.is_file():
        for line in path.read_text().splitlines():
            parts = line.split()
            if parts[:1] == ["begin"] and begin is None:
                begin = float(parts[1])
            elif parts[:1] == ["end"] and len(parts) == 3:
                ends.append(float(parts[2]))
    return begin, ends


def throughput(ends: Sequence[float], batch: int, warmup: int | None = None) -> tuple[float | None, int]:
    """(images/s over the steps after the warm-up, steps counted); None when too few steps ran."""
    if warmup is None:
        warmup = max(1, min(5, len(ends) // 5))  # the first steps trace and compile
    counted = len(ends) - warmup
    if counted < 1:
        return None, 0
    return batch * counted / (ends[-1] - ends[warmup - 1]), counted


def data_config(data: Path, path: str, n_pairs: int, in_memory_key: bool) -> dict[str, Any]:
    split = min(VAL_PAIRS, max(1, n_pairs // 8)) / n_pairs
    cfg: dict[str, Any] = {"source": "pairs", "path": str(data), "crop": 128, "eval_crop": 128, "batch_size": 8,
                           "crops_per_image": 1, "val_split": split, "test_split": split}
    if path in ("memory", "stream") and in_memory_key:
        cfg["in_memory"] = path == "memory"
    return cfg


def train_config(data: Path, path: str, steps: int, n_pairs: int, in_memory_key: bool,
                 minutes: float) -> dict[str, Any]:
    """The tiny U-Net run: one epoch of `steps` steps, nothing that would grow with N but the data."""
    return {"name": f"scale-{path}", "seed": 0, "data": data_config(data, path, n_pairs, in_memory_key),
            "model": {"type": "unet", "depth": 2, "base_filters": 8, "residual": True},
            "train": {"epochs": 1, "steps_per_epoch": steps, "time_limit_minutes": minutes, "evaluate_after": False,
                      "reduce_lr": {"enabled": False}, "early_stopping": {"enabled": False}}}


def has_in_memory_key() -> bool:
    """Whether this deblur has `data.in_memory` (the streaming sources of issue 14)."""
    from dataclasses import fields

    from deblur.config import DataConfig

    return any(f.name == "in_memory" for f in fields(DataConfig))


def has_pack_command() -> bool:
    from deblur.cli import app

    return any((c.name or getattr(c.callback, "__name__", "")) == "pack" for c in app.registered_commands)


def n_pairs_in(data: Path) -> int:
    blur = data / "blur"
    if not blur.is_dir() or not (data / "sharp").is_dir():
        raise BenchError(f"--data: {data} holds no blur/ and sharp/ folders; make one with `generate`")
    n = sum(1 for p in blur.iterdir() if p.suffix == ".jpg")
    if n < 3:
        raise BenchError(f"--data: {data} holds {n} pairs; training needs 3 or more")
    return n


def pack_path(data: Path) -> Path:
    return data.with_name(data.name + ".pack")


def pack_bytes(data: Path, n: int) -> int:
    """Disk a pack of the folder needs: its images decoded (8-bit), sized from the first pair."""
    import cv2

    first = next(p for p in sorted((data / "sharp").iterdir()) if p.suffix == ".jpg")
    image = cv2.imread(str(first), cv2.IMREAD_UNCHANGED)
    return 2 * n * (image.nbytes if image is not None else 1280 * 720 * 3)


def ensure_pack(data: Path, n: int, workdir: Path, timeout: float, echo: Callable[[str], Any]) -> dict[str, Any]:
    """`deblur pack DATA DATA.pack` unless the pack is there already; its time and memory."""
    pack = pack_path(data)
    if (pack / "pack.json").is_file():
        echo(f"pack: {pack} exists; not timed again")
        return {"pack_path": str(pack), "pack_seconds": None}
    if not has_pack_command():
        raise BenchError("the packed path needs `deblur pack`, which this deblur does not have yet (issue 14 part 2)")
    need, free = pack_bytes(data, n), shutil.disk_usage(pack.parent).free
    if need > 0.95 * free:  # decoded 1280x720 pairs take ~2.8 MB each: N=10,000 is ~55 GB
        raise BenchError(f"does not fit on disk: the pack needs ~{need / 1e9:.0f} GB, {free / 1e9:.0f} GB free")
    m = measure([sys.executable, "-m", "deblur", "pack", str(data), str(pack)], workdir / "pack.log",
                timeout=timeout)
    if m.returncode != 0:
        raise BenchError(f"deblur pack failed (exit {m.returncode}); its output: {workdir / 'pack.log'}")
    echo(f"pack: {m.seconds:.1f} s, peak RSS {m.peak_rss / GiB:.2f} GiB")
    return {"pack_path": str(pack), "pack_seconds": round(m.seconds, 2),
            "pack_peak_rss_gib": round(m.peak_rss / GiB, 3)}


def run(data: Path, path: str, steps: int, timeout: float = 1800.0, keep: Path | None = None,
        echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Train one epoch of `steps` steps through one input path; returns the measured figures."""
    import yaml

    if path not in PATHS:
        raise BenchError(f"--path: {path!r} is not one of {', '.join(PATHS)}")
    if steps < 3:
        raise BenchError(f"--steps: must be 3 or more (the first steps are warm-up), got {steps}")
    n = n_pairs_in(data)
    key = has_in_memory_key()
    if not key and path == "stream":
        raise BenchError("the stream path needs data.in_memory (issue 14 part 1), which this deblur does not have yet")
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix=f"scale-{path}-", dir=keep))
    result: dict[str, Any] = {"path": path, "n_pairs": n, "steps": steps, "data": str(data)}
    try:
        source = data
        if path == "packed":
            result.update(ensure_pack(data, n, work_dir, timeout, echo))
            source = Path(result["pack_path"])
        cfg = train_config(source, path, steps, n, key, minutes=timeout / 60)
        if not key:
            result["note"] = "no data.in_memory in this deblur: its only path (in memory) was measured"
        (work_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        times = work_dir / "times.txt"
        env = {**os.environ, TIMES_ENV: str(times), "TF_CPP_MIN_LOG_LEVEL": "3"}
        cmd = [sys.executable, str(SCRIPT), "_train", "train", "--config", str(work_dir / "config.yaml"),
               "--run-dir", str(work_dir / "run"), "--no-eval"]
        echo(f"run: {path}, {n} pairs, {steps} steps ({work_dir})")
        m = measure(cmd, work_dir / "train.log", env=env, timeout=timeout)
        begin, ends = read_times(times)
        rate, counted = throughput(ends, cfg["data"]["batch_size"])
        result.update({
            "returncode": m.returncode, "total_seconds": round(m.seconds, 2),
            "startup_seconds": round(begin - m.launched, 2) if begin is not None else None,
            "images_per_second": round(rate, 2) if rate is not None else None, "steps_timed": counted,
            "steps_run": len(ends), "peak_rss_gib": round(m.peak_rss / GiB, 3),
            "peak_anon_gib": round(m.peak_anon / GiB, 3)})
        if m.returncode != 0:
            tail = (work_dir / "train.log").read_text(errors="replace").strip().splitlines()[-3:]
            result["error"] = " | ".join(tail)[-400:]
            echo(f"  deblur train failed (exit {m.returncode}): {result['error']}")
        echo(f"  start-up {result['startup_seconds']} s, {result['images_per_second']} images/s over "
             f"{counted} steps, peak RSS {result['peak_rss_gib']} GiB (anon {result['peak_anon_gib']}), "
             f"total {result['total_seconds']} s")
        return result
    finally:
        if keep is None:
            shutil.rmtree(work_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- report


def subset(all_dir: Path, root: Path, n: int) -> Path:
    """root/n<N>: the first N pairs of all_dir as hard links (copies across file systems)."""
    folder = root / f"n{n}"
    for sub in ("blur", "sharp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            src, dst = all_dir / sub / pair_name(i), folder / sub / pair_name(i)
            if not dst.exists():
                try:
                    os.link(src, dst)
                except OSError:
                    shutil.copy2(src, dst)
    return folder


def decoded_bytes(n: int, width: int, height: int) -> int:
    return n * 2 * width * height * 3


def memory_skip(n: int, size: tuple[int, int], ram: int) -> str | None:
    """Why the in-memory path is not run at this N (its decoded pairs would crowd out the rest), or None."""
    decoded = decoded_bytes(n, *size)
    return f"does not fit: {decoded / 1e9:.1f} GB decoded" if decoded > MEMORY_FIT * ram else None


def ram_bytes() -> int:
    return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))


def machine() -> dict[str, Any]:
    return {"cpu_cores": os.cpu_count(), "ram_gib": round(ram_bytes() / GiB, 1), "cpu": platform.processor() or
            platform.machine(), "python": platform.python_version(), "system": platform.platform()}


@dataclass
class Target:
    name: str
    check: Callable[[dict[tuple[int, str], dict[str, Any]]], tuple[bool | None, str]]


def _get(rows: dict[tuple[int, str], dict[str, Any]], n: int, path: str, key: str) -> float | None:
    value = rows.get((n, path), {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def targets(small: int, large: int) -> list[Target]:
    """Issue 14's targets, each judged from the measured rows: (met, the figure) or (None, why not)."""

    def rss_under(path: str) -> Target:
        def check(rows):
            v = _get(rows, large, path, "peak_rss_gib")
            return (None, "not measured") if v is None else (v < 3.0, f"{v:.2f} GiB")
        return Target(f"{path}: peak RSS at N={large:,} < 3 GiB", check)

    def rss_flat(path: str) -> Target:
        def check(rows):
            a, b = _get(rows, small, path, "peak_rss_gib"), _get(rows, large, path, "peak_rss_gib")
            if a is None or b is None:
                return None, "not measured"
            return abs(b / a - 1) <= 0.2, f"{a:.2f} -> {b:.2f} GiB ({100 * (b / a - 1):+.0f}%)"
        return Target(f"{path}: peak RSS at N={small:,} vs {large:,} within 20%", check)

    def startup(path: str) -> Target:
        def check(rows):
            v = _get(rows, large, path, "startup_seconds")
            return (None, "not measured") if v is None else (v < 30.0, f"{v:.1f} s")
        return Target(f"{path}: start-up at N={large:,} < 30 s", check)

    def speed(path: str, ratio: float) -> Target:
        def check(rows):
            a, b = _get(rows, small, "memory", "images_per_second"), _get(rows, small, path, "images_per_second")
            if a is None or b is None:
                return None, "not measured"
            return b / a >= ratio, f"{b:.1f} vs {a:.1f} images/s ({b / a:.2f}x)"
        return Target(f"{path}: images/s at N={small:,} >= {ratio:.1f}x in-memory", check)

    return [rss_under("stream"), rss_flat("stream"), startup("stream"), speed("stream", 0.9),
            rss_under("packed"), rss_flat("packed"), startup("packed"), speed("packed", 1.0)]


def _cell(v: Any, fmt: str = "{}") -> str:
    return "—" if v is None else fmt.format(v)


def render(record: dict[str, Any]) -> str:
    p, mach = record["protocol"], record["machine"]
    lines = ["# Scale benchmark (issue 14)", "",
             f"Measured {record['date']} on {mach['cpu_cores']} CPU cores, {mach['ram_gib']} GiB RAM ({mach['cpu']}, "
             f"Python {mach['python']}). Written by `{record['command']}`.", "",
             "## Protocol", "",
             f"- Data: `{p['generate_command']}` (seed {p['seed']}): {p['width']}x{p['height']} pairs, JPEG quality "
             f"{QUALITY}; sharp = a random crop of a photo of `../shared/data/photos`, blurred by one of deblur's "
             "degradations (shake, motion, Gaussian, defocus, with sensor noise). The N-pair folders are the first "
             "N pairs of one folder (hard links), so every size holds the same images.",
             f"- Training: `deblur train`, {p['model']}; crop {p['crop']}, batch {p['batch']}, 1 crop per image, "
             f"one epoch of {p['steps']} steps, {VAL_PAIRS} validation pairs at every N, `--no-eval`.",
             "- Start-up: launch of the process -> the first training batch begins. Images/s: over the steps "
             "after the first few. Peak RSS: the largest summed VmRSS of the process tree, sampled every 0.2 s "
             "(anon: without file-backed pages such as a memory-mapped pack).",
             "- Paths: memory = `data.in_memory: true`; stream = `data.in_memory: false`; packed = "
             "`deblur pack DATA DATA.pack` (timed separately), then training reads the pack.", "",
             "## Results", "",
             "| N | path | start-up s | images/s | peak RSS GiB | anon GiB | pack s | note |",
             "| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for r in record["runs"]:
        note = r.get("skipped") or r.get("error") or r.get("note") or ""
        lines.append(f"| {r['n_pairs']:,} | {r['path']} | {_cell(r.get('startup_seconds'))} | "
                     f"{_cell(r.get('images_per_second'))} | {_cell(r.get('peak_rss_gib'))} | "
                     f"{_cell(r.get('peak_anon_gib'))} | {_cell(r.get('pack_seconds'))} | {note} |")
    lines += ["", "## Targets", "", "Issue 14 sets them at N = 200 and 10,000; here they are judged at the smallest "
              "and largest N measured.", "", "| target | figure | |", "| --- | --- | --- |"]
    for t in record["targets"]:
        verdict = {True: "met", False: "**missed**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {t['figure']} | {verdict} |")
    return "\n".join(lines) + "\n"


def report(root: Path, sizes: Sequence[int], paths: Sequence[str], steps: int, seed: int, size: tuple[int, int],
           photos: Path, out: Path, timeout: float, workers: int, keep_packs: bool = False,
           echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Generate what is missing, run the matrix and write out.md + out.json."""
    for path in paths:
        if path not in PATHS:
            raise BenchError(f"--paths: {path!r} is not one of {', '.join(PATHS)}")
    spec = GenSpec(seed, size[0], size[1], str(photos))
    largest = max(sizes)
    all_dir = root / "all"
    gen_cmd = (f"python scripts/scale_benchmark.py generate {largest} {all_dir} --seed {seed} "
               f"--size {size[0]}x{size[1]}")
    generate(largest, all_dir, spec, workers, echo)
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    runs = []
    for n in sorted(sizes):
        data = subset(all_dir, root, n)
        for path in paths:
            too_big = memory_skip(n, size, ram_bytes()) if path == "memory" else None
            if too_big:
                row = {"path": path, "n_pairs": n, "skipped": too_big}
                echo(f"run: memory, {n} pairs: skipped ({too_big})")
            else:
                try:
                    row = run(data, path, steps, timeout, echo=echo)
                except BenchError as exc:
                    row = {"path": path, "n_pairs": n, "skipped": str(exc)}
                    echo(f"run: {path}, {n} pairs: skipped ({exc})")
                if row.get("pack_seconds") is not None and not keep_packs:  # made by this run: free the disk
                    shutil.rmtree(row["pack_path"], ignore_errors=True)
            if row.get("returncode", 0) == 0 and "skipped" not in row:
                rows[(n, path)] = row
            runs.append(row)
    record = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "command": " ".join(
              ["python scripts/scale_benchmark.py", *sys.argv[1:]]), "machine": machine(),
              "protocol": {"generate_command": gen_cmd, "seed": seed, "width": size[0], "height": size[1],
                           "model": "unet depth 2, base_filters 8, residual", "crop": 128, "batch": 8,
                           "steps": steps, "val_pairs": VAL_PAIRS, "mix": list(MIX)},
              "runs": runs, "targets": []}
    for t in targets(min(sizes), largest):
        met, figure = t.check(rows)
        record["targets"].append({"target": t.name, "met": met, "figure": figure})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    out.with_suffix(".md").write_text(render(record))
    echo(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    return record


# ---------------------------------------------------------------------------------------------- CLI


def parse_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise BenchError(f"{what}: expected comma-separated whole numbers, got {text!r}") from None
    if not values or min(values) < 3:
        raise BenchError(f"{what}: every N must be 3 or more, got {text!r}")
    return values


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    def gen_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--seed", type=int, default=0, help="pair i is made from (seed, i) alone [0]")
        p.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of every pair [1280x720]")
        p.add_argument("--photos", type=Path, default=PHOTOS, help=f"folder of source photos [{PHOTOS}]")

    g = sub.add_parser("generate", help="write N synthetic 1280x720 pairs to OUT/blur and OUT/sharp (adds the "
                                        "missing ones only)")
    g.add_argument("n", type=int, metavar="N")
    g.add_argument("out", type=Path, metavar="OUT")
    gen_options(g)
    g.add_argument("--workers", type=int, default=2, help="processes [2]")
    w = sub.add_parser("_work")  # one generation worker's share (internal)
    w.add_argument("n", type=int)
    w.add_argument("out", type=Path)
    gen_options(w)
    w.add_argument("--shard", default="0/1")
    sub.add_parser("_train", add_help=False)  # deblur train with the batch timer (internal)

    r = sub.add_parser("run", help="train one epoch through one input path and measure it")
    r.add_argument("--data", type=Path, required=True, help="a pairs folder made by `generate`")
    r.add_argument("--path", choices=PATHS, required=True, help="memory: decoded at start; stream: read on demand; "
                                                               "packed: `deblur pack` first, then read the pack")
    r.add_argument("--steps", type=int, default=60, help="training steps (the first few are warm-up) [60]")
    r.add_argument("--timeout", type=float, default=1800, help="seconds before the run is killed [1800]")
    r.add_argument("--keep", type=Path, help="keep the config, logs and run folder under this folder")
    r.add_argument("--json", type=Path, help="also write the figures to this JSON file")

    m = sub.add_parser("report", help="generate, run the whole matrix, write docs/scale_benchmark.md and .json")
    m.add_argument("--root", type=Path, default=ROOT / "data" / "scale", help="where the pairs folders go "
                   "[data/scale: all/ with the largest N, n<N>/ hard-linked subsets]")
    m.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="N values [200,2000,10000]")
    m.add_argument("--paths", default=",".join(PATHS), help="input paths [memory,stream,packed]")
    m.add_argument("--steps", type=int, default=60, help="training steps per run [60]")
    m.add_argument("--timeout", type=float, default=1800, help="seconds before one run is killed [1800]")
    m.add_argument("--workers", type=int, default=2, help="generation processes [2]")
    m.add_argument("--keep-packs", action="store_true", help="keep the packs made (they take N x 2.8 MB of "
                   "disk; by default each is deleted after its run)")
    m.add_argument("--output", type=Path, default=ROOT / "docs" / "scale_benchmark", help="report path without "
                   "suffix [docs/scale_benchmark]")
    gen_options(m)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_train"]:
        _train_with_timer()
        return 0
    args = parser().parse_args(argv)
    try:
        if args.command == "generate":
            generate(args.n, args.out, GenSpec(args.seed, *parse_size(args.size), str(args.photos)), args.workers)
        elif args.command == "_work":
            shard, shards = (int(v) for v in args.shard.split("/"))
            work(args.out, args.n, GenSpec(args.seed, *parse_size(args.size), str(args.photos)), shard, shards)
        elif args.command == "run":
            result = run(args.data, args.path, args.steps, args.timeout, args.keep)
            if args.json:
                args.json.write_text(json.dumps(result, indent=1) + "\n")
            return 0 if result.get("returncode") == 0 else 1
        elif args.command == "report":
            report(args.root, parse_list(args.sizes, "--sizes"), [p.strip() for p in args.paths.split(",")],
                   args.steps, args.seed, parse_size(args.size), args.photos, args.output, args.timeout,
                   args.workers, args.keep_packs)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
