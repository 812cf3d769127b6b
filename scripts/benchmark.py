#!/usr/bin/env python3
"""Train every benchmark model (resumably) and score it on every protocol; write BENCHMARKS.md.

    python scripts/benchmark.py --data ../shared/data            # train what is missing, then report
    python scripts/benchmark.py --data ../shared/data --train    # training only (run it in the background)
    python scripts/benchmark.py --data ../shared/data --report   # scoring and BENCHMARKS.md only

Each training is `deblur.train` as the `deblur train` command (quoted in the report) runs it, writing to
runs/bench/<name>; an interrupted one is resumed (`--resume`), a finished one is never trained again (delete its
folder to retrain). Scoring uses the metric card of `deblur eval` on each protocol's test split,
which no model trained on. Every figure in BENCHMARKS.md is computed here; none is typed in.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DONE = "bench.json"  # written into a run folder once its training has finished
SYNTHETIC_BASELINES = "identity,wiener,richardson_lucy"
PAIRS_BASELINES = "identity,unsharp"
SPEED = "## Speed"  # the heading of the section scripts/bench_speed.py owns


@dataclass(frozen=True)
class Training:
    """One `deblur train` run. `{data}` in an override is replaced by the --data folder."""

    name: str
    config: str
    overrides: tuple[str, ...] = ()
    budget: str = ""  # the training budget in words, as the protocol states it
    # The file that is scored, when it is not the run's best.keras: the built-in model is scored as
    # shipped (behind its calibrated do-no-harm gate, see scripts/ship_default_model.py).
    checkpoint: str | None = None

    def scored(self, runs: Path) -> Path:
        return ROOT / self.checkpoint if self.checkpoint else run_dir(runs, self.name) / "best.keras"

    def sets(self, data: Path) -> list[str]:
        return [o.replace("{data}", str(data)) for o in self.overrides]

    def args(self, data: Path) -> list[str]:
        return ["--config", self.config, *(x for o in self.sets(data) for x in ("--set", o))]


@dataclass(frozen=True)
class Protocol:
    name: str
    title: str
    eval_config: Training  # whose data section (source, split, blur, seed) defines the protocol
    faithful: str  # the report-faithful training
    models: tuple[str, ...]  # every training scored here (the faithful one first)
    report: str  # what the classic report itself said, quoted from its config comments
    pairs: bool = False  # real blurred pairs: aligned scoring, blind baselines only
    targets: tuple[tuple[str, str, float], ...] = ()  # (model, check, threshold): see check_targets
    notes: tuple[str, ...] = field(default_factory=tuple)
    differs: str = ""  # why the report-faithful figure here may differ from the report's own


CIFAR = "{data}/cifar-10-batches-py"
TRAININGS = {t.name: t for t in [
    Training("cifar10_nafnet", "configs/bench/cifar10_nafnet.yaml", (f"data.path={CIFAR}",),
             "70 epochs or 30 minutes"),
    Training("cifar10_nafnet_s2", "configs/bench/cifar10_nafnet.yaml",
             (f"data.path={CIFAR}", "name=cifar10_nafnet_s2", "data.degradation={kind: gaussian, sigma: 2.0}",
              "train.epochs=32", "train.time_limit_minutes=15"),
             "32 epochs or 15 minutes, from scratch, trained on sigma = 2 only"),
    Training("default_model", "configs/default_model.yaml", (),
             "22 epochs or 115 minutes, continuing from the previous built-in model (train.init_from); scored as "
             "shipped, behind its do-no-harm gate", checkpoint="src/deblur/pretrained/default.keras"),
    Training("cifar10_unet", "configs/cifar10_unet.yaml",
             (f"data.path={CIFAR}", "train.time_limit_minutes=8", "train.evaluate_after=false"),
             "report: 500 epochs with early stopping (it stopped at 60); here capped at 8 minutes"),
    Training("cifar10_unet_s2", "configs/cifar10_unet.yaml",
             (f"data.path={CIFAR}", "name=cifar10_unet_s2", "data.degradation={kind: gaussian, sigma: 2.0}",
              "train.time_limit_minutes=6", "train.evaluate_after=false"),
             "as cifar10_unet, capped at 6 minutes"),
    Training("fashion_mnist_conv_ae", "configs/fashion_mnist_conv_ae.yaml",
             ("data.path={data}/fashion-mnist", "train.evaluate_after=false"), "100 epochs (the article's)"),
    Training("fashion_mnist_unet", "configs/bench/fashion_mnist_unet.yaml", ("data.path={data}/fashion-mnist",),
             "60 epochs or 6 minutes"),
    Training("gnr638_dense_ae", "configs/gnr638_dense_ae.yaml", ("train.evaluate_after=false",),
             "25 epochs (the report's)"),
    Training("kaggle_dense_ae", "configs/kaggle_dense_ae.yaml",
             ("data.path={data}/kaggle-blur-subset", "train.evaluate_after=false"), "100 epochs (the report's)"),
]}

PROTOCOLS = [
    Protocol("cifar10-u03", "CIFAR-10, Gaussian sigma ~ U(0, 3)", TRAININGS["cifar10_unet"], "cifar10_unet",
             ("cifar10_unet", "cifar10_nafnet", "default_model"),
             "Nankai 2021 U-Net: PSNR 27.18 dB, SSIM 0.874, MSE 0.00296 on its own 10% split of all 60,000 "
             "images (no blurred-input score given)",
             differs="the report trained on 48,000 images until early stopping (60 epochs); here 2,982 images and "
                     "8 minutes of CPU. Its test images were its own 10% split, ours 932 images of batch 5. Its "
                     "PSNR was probably a mean over images of float outputs; ours is 8-bit with a 60 dB cap. Its "
                     "U-Net width is not stated (here depth 4 from 32 filters)",
             targets=(("cifar10_nafnet", "ssim", 0.92), ("cifar10_nafnet", "gain_pmm_input", 6.0),
                      ("cifar10_nafnet", "gain_pmm_wiener", 1.0), ("cifar10_nafnet", "every_bin", 0.0))),
    Protocol("cifar10-s2", "CIFAR-10, Gaussian sigma = 2", TRAININGS["cifar10_unet_s2"], "cifar10_unet_s2",
             ("cifar10_unet_s2", "cifar10_nafnet_s2", "cifar10_nafnet", "default_model"),
             "no report used this protocol; the U-Net is the Nankai one",
             targets=(("cifar10_nafnet_s2", "gain_pmm_wiener", 1.0), ("cifar10_nafnet", "gain_pmm_wiener", 1.0)),
             notes=("cifar10_nafnet was trained on sigma ~ U(0, 3), not on sigma = 2: "
                    "it is blind to the strength here, while Wiener and Richardson-Lucy are given the exact "
                    "kernel; cifar10_nafnet_s2 was trained on sigma = 2 alone",)),
    Protocol("fmnist-3x3", "Fashion-MNIST, cv2.GaussianBlur 3x3", TRAININGS["fashion_mnist_conv_ae"],
             "fashion_mnist_conv_ae", ("fashion_mnist_conv_ae", "fashion_mnist_unet", "default_model"),
             "Level Up Coding 2020 all-conv AE: pictures only, no numbers",
             differs="the article trained on all 60,000 images; here 1,800 (the shared subset) for its 100 epochs, "
                     "which at its batch of 2,000 is one optimiser step per epoch: 100 steps in all instead of "
                     "3,000. The issue quotes about +8 dB for this model on the full data; with 100 steps it has "
                     "barely started",
             targets=(("fashion_mnist_unet", "gain_pmm_input", 9.0),),
             notes=("default_model is an RGB model: each gray image is replicated to RGB and its output "
                    "averaged back to gray",)),
    Protocol("folder-3gauss", "sample photos at 256x448, 3 Gaussian blurs each", TRAININGS["gnr638_dense_ae"],
             "gnr638_dense_ae", ("gnr638_dense_ae", "default_model"),
             "IIT GNR638 2024 dense AE: 25.0 dB train, 15.5 dB test, on its own photo folder",
             differs="its photo folder and its three Gaussian filters are not published: here 13 sample photos and "
                     "an assumed 3x3/7x7/11x11 set, for its 25 epochs",
             notes=("the test split is two photos (chelsea, coffee) x 3 blurs: 6 scored images, so differences "
                    "under about 1 dB mean little",)),
    Protocol("kaggle", "Kaggle blur pairs, 128x128, real blur, aligned scoring", TRAININGS["kaggle_dense_ae"],
             "kaggle_dense_ae", ("kaggle_dense_ae", "default_model"),
             "SSN 2024 dense AE: PSNR 24-26 dB, SSIM 0.68-0.85 on the full dataset, unaligned",
             differs="the report used all 350 scenes; the shared subset has 8 (4 train, 2 val, 2 test scenes). Its "
                     "scores were unaligned, and the shots are not pixel-aligned, so they mostly measured framing",
             pairs=True,
             notes=("real blur has no known kernel, so the Wiener and Richardson-Lucy oracles cannot run; "
                    "unsharp masking (blind) stands in",
                    "each blurred shot is registered to its sharp twin (ECC) and scored on the overlap; "
                    "pairs that cannot be registered are left out and counted")),
]


# --------------------------------------------------------------------------------------------------
# Training


def run_dir(runs: Path, name: str) -> Path:
    return runs / name


def train_command(t: Training, data: Path, runs: Path) -> list[str]:
    return ["deblur", "train", *t.args(data), "--run-dir", str(run_dir(runs, t.name))]


def train_all(names: list[str], data: Path, runs: Path) -> None:
    import deblur
    from deblur.training.train import history_rows

    for name in names:
        t = TRAININGS[name]
        folder = run_dir(runs, name)
        if (folder / DONE).is_file():
            print(f"[{name}] already trained ({folder / DONE})")
            continue
        cmd = train_command(t, data, runs)
        resume = (folder / "config.yaml").is_file()
        run = ["deblur", "train", "--run-dir", str(folder), "--resume", "--no-eval"] if resume else cmd
        print(f"[{name}] {'resuming' if resume else 'training'}: {shlex.join(run)}")
        started = time.perf_counter()
        try:
            if resume:
                trained = deblur.train(run_dir=folder, resume=True, evaluate_after=False, command=shlex.join(run))
            else:
                trained = deblur.train(ROOT / t.config, overrides=t.sets(data), run_dir=folder, command=shlex.join(cmd))
        except (deblur.DeblurError, KeyboardInterrupt) as exc:
            raise SystemExit(f"[{name}] deblur train stopped ({exc}); rerun this script to resume it") from None
        if trained.scores is not None and trained.scores.failures():
            # training finished but its model failed its own test-split evaluation (NaN/inf output):
            # a result to report, not a training to resume
            print(f"[{name}] trained, but its model failed evaluation (non-finite output); it is reported as failed")
        rows = history_rows(folder / "history.csv")
        record = {"command": shlex.join(cmd), "epochs": len(rows),
                  "train_seconds": float(rows[-1]["train_seconds"]) if rows else None,
                  "last_session_wall_seconds": round(time.perf_counter() - started, 1),
                  "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "hardware": hardware()}
        (folder / DONE).write_text(json.dumps(record, indent=2) + "\n")
        print(f"[{name}] done: {record['epochs']} epochs, {record['train_seconds']} s of training")


def evaluation_failed(folder: Path) -> bool:
    """True when `deblur train`'s final evaluation recorded a failed model (its exit status 1)."""
    metrics = folder / "eval-test" / "metrics.json"
    try:
        return bool(json.loads(metrics.read_text()).get("failed"))
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------------------------------
# Scoring


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import importlib.metadata as md

    from deblur.training import backend

    engine = backend.name()
    try:
        version = md.version(engine)
    except md.PackageNotFoundError:
        version = "?"
    return (f"{cpu}, {os.cpu_count()} logical CPUs, {backend.describe_devices().split(';')[0]}; "
            f"Python {platform.python_version()}, Keras {md.version('keras')} on {engine} {version}")


def training_facts(runs: Path, name: str, cfg: Any) -> dict[str, Any]:
    """Epochs, wall time and training images/s of a finished run, from its own history."""
    from deblur.data.base import load_splits
    from deblur.data.degrade import train_spec_list

    folder = run_dir(runs, name)
    record = json.loads((folder / DONE).read_text())
    splits = load_splits(cfg.data, cfg.seed)
    variants = len(train_spec_list(cfg.data))  # what training blurred each image with
    per_epoch = len(splits.train) * (1 if splits.paired else variants) * cfg.data.crops_per_image
    if cfg.train.steps_per_epoch:
        per_epoch = cfg.train.steps_per_epoch * cfg.data.batch_size
    seconds = record["train_seconds"]
    limit = cfg.train.time_limit_minutes
    stop = ("stopped by its time limit" if limit and seconds and seconds >= 60 * limit
            else "early stopping" if record["epochs"] < cfg.train.epochs else "")
    return {**record, "images_per_epoch": per_epoch, "stop": stop,
            "images_per_second": per_epoch * record["epochs"] / seconds if seconds else None,
            "checkpoint": str(TRAININGS[name].scored(runs)),
            "sha256": hashlib.sha256(TRAININGS[name].scored(runs).read_bytes()).hexdigest()}


def score(protocol: Protocol, data: Path, runs: Path) -> dict[str, Any]:
    from deblur import config as cfgmod
    from deblur.data.base import load_splits
    from deblur.evaluation.evaluate import evaluate, evaluate_pairs
    from deblur.models import fixed_input_size
    from deblur.restore.loading import load_model

    t = protocol.eval_config
    overrides = [o.replace("{data}", str(data)) for o in t.overrides]
    cfg = cfgmod.load(ROOT / t.config, overrides)
    models, facts, skipped = {}, {}, []
    for name in protocol.models:
        folder = run_dir(runs, name)
        if not (folder / DONE).is_file():
            skipped.append(f"{name} (not trained yet)")
            continue
        model = load_model(TRAININGS[name].scored(runs))
        fixed = fixed_input_size(model)
        size = tuple(cfg.data.resize) if cfg.data.resize else None
        if fixed is not None and fixed != size:
            skipped.append(f"{name} (fixed input size {fixed}, protocol images {size})")
            continue
        run_cfg = cfgmod.from_dict(cfgmod.read_yaml(folder / "config.yaml"))
        models[name] = model
        facts[name] = training_facts(runs, name, run_cfg)
    start = time.perf_counter()
    if protocol.pairs:
        splits = load_splits(cfg.data, cfg.seed)
        result = evaluate_pairs(models, splits.test, f"test split of {splits.description}", align=True,
                                baselines=PAIRS_BASELINES, gallery=False)
    else:
        result = evaluate(models, cfg, "test", baselines=SYNTHETIC_BASELINES, gallery=False)
    return {"protocol": protocol, "summary": result.summary, "facts": facts, "skipped": skipped,
            "score_seconds": time.perf_counter() - start, "config": cfgmod.to_dict(cfg)}


# --------------------------------------------------------------------------------------------------
# Targets and the report


def check_targets(protocol: Protocol, summary: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """Each target as (statement, met, measured) from the summary's own numbers."""
    methods, out = summary["methods"], []
    for model, check, threshold in protocol.targets:
        if model not in methods:
            out.append((f"{model}: {check}", False, "not scored (not trained yet)"))
            continue
        if model in summary.get("failed", {}):  # NaN compares False either way: say why instead
            out.append((f"{model}: {check}", False, "no score: the model produced non-finite output (NaN/inf)"))
            continue
        m = methods[model]
        if check == "ssim":
            out.append((f"{model} SSIM >= {threshold}", m["ssim"] >= threshold, f"{m['ssim']:.4f}"))
        elif check == "gain_pmm_input":
            gain = m["psnr_of_mean_mse"] - methods["input"]["psnr_of_mean_mse"]
            out.append((f"{model} PSNR of mean MSE >= blurred input + {threshold:g} dB", gain >= threshold,
                        f"{gain:+.2f} dB"))
        elif check == "gain_pmm_wiener":
            gain = m["psnr_of_mean_mse"] - methods["wiener"]["psnr_of_mean_mse"]
            out.append((f"{model} PSNR of mean MSE >= Wiener (true kernel) + {threshold:g} dB", gain >= threshold,
                        f"{gain:+.2f} dB"))
        elif check == "every_bin":
            worst = min(g["psnr"][model] - g["psnr"]["input"] for g in summary["breakdown"])
            out.append((f"{model} mean PSNR never below the blurred input's in any sigma bin", worst >= threshold,
                        f"worst bin {worst:+.2f} dB"))
    return out


def _fmt(v: float | None, spec: str) -> str:
    """A number for the report; none, or a non-finite one (a failed method), as a dash."""
    return "—" if v is None or not math.isfinite(v) else format(v, spec)


def shown(text: str, data: Path) -> str:
    """A command as a reader would type it from the repository root: the data folder relative."""
    try:
        rel = os.path.relpath(data, ROOT)
    except ValueError:
        return text
    return text.replace(str(data), rel).replace(str(ROOT) + os.sep, "")


def protocol_section(r: dict[str, Any], data: Path, runs: Path) -> list[str]:
    p: Protocol = r["protocol"]
    s = r["summary"]
    methods, labels, facts = s["methods"], s["labels"], r["facts"]
    deg = s["protocol"]["degradation"]
    deg = deg if isinstance(deg, str) else "; ".join(deg)
    size = s["protocol"].get("item_size")
    data_sets = [o for o in p.eval_config.overrides if o.startswith("data.")]
    lines = [f"## {p.name}: {p.title}", "",
             f"- Data: {shown(s['protocol']['dataset'], data)}; scored split: {s['protocol']['split']} "
             f"({s['protocol']['scored_items']} items"
             + (f" of {size[1]}x{size[0]}" if size else ", various sizes") + ")",
             f"- Degradation: {deg}" + (f"; seed {s['protocol']['seed']}" if s["protocol"].get("seed") is not None
                                       else ""),
             f"- Protocol: the `data` section and seed of `{p.eval_config.config}`"
             + (f" with `{' '.join('--set ' + shown(o.replace('{data}', str(data)), data) for o in data_sets)}`"
                if data_sets else ""),
             f"- Classic report's own figure: {p.report}",
             *([f"- Why the report-faithful figure here differs: {p.differs}"] if p.differs else []),
             f"- Scoring took {r['score_seconds']:.0f} s", ""]
    lines.append("| method | PSNR dB | SSIM | MSE | PSNR of mean MSE | gain dB (PSNR) | parameters | training | "
                 "train images/s | inference ms/MP |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for m, v in methods.items():
        gain = s["gain"].get(m, {}).get("psnr")
        name = labels.get(m, m)
        if m == p.faithful:
            name += " (report-faithful)"
        params = train = ips = ms = "—"
        if m in facts:
            f, mm = facts[m], s["models"][m]
            params = f"{mm['parameters']:,}"
            train = f"{f['epochs']} epochs, {f['train_seconds'] / 60:.1f} min" + (f", {f['stop']}" if f["stop"] else "")
            ips = _fmt(f["images_per_second"], ".0f")
            ms = f"{mm['ms_per_megapixel']:.0f}"
        failed = s.get("failed", {}).get(m)
        if failed:  # listed last by the evaluation, with no score
            worse = (f" **(FAILED: non-finite output (NaN/inf) on {failed['nonfinite_items']} of "
                     f"{failed['items']} items)**")
        else:
            worse = " **(worse than the blurred input)**" if gain is not None and gain <= 0 else ""
        scores = " | ".join(_fmt(v[k], spec) for k, spec in
                            (("psnr", ".2f"), ("ssim", ".4f"), ("mse", ".5f"), ("psnr_of_mean_mse", ".2f")))
        lines.append(f"| {name}{worse} | {scores} | {_fmt(gain, '+.2f')} | {params} | {train} | {ips} | {ms} |")
    if s.get("breakdown"):
        names = list(methods)
        lines += ["", "Mean PSNR (dB) by blur strength:", "",
                  "| group | n | " + " | ".join(labels.get(m, m) for m in names) + " |",
                  "| --- | ---: | " + " | ".join("---:" for _ in names) + " |"]
        for g in s["breakdown"]:
            lines.append(f"| {g['group']} | {g['n']} | " + " | ".join(_fmt(g["psnr"][m], ".2f") for m in names) + " |")
    if "alignment" in s:
        a = s["alignment"]
        lines += ["", f"Alignment: {a['aligned']} pairs registered, {a['failed']} could not be"
                  + (f" ({', '.join(a['failed_images'])})" if a["failed_images"] else "")
                  + f"; blurred-input PSNR {a['unaligned_psnr_input']:.2f} dB unaligned vs "
                    f"{a['aligned_psnr_input']:.2f} dB aligned."]
    targets = check_targets(p, s)
    if targets:
        lines += ["", "Targets:", ""]
        lines += [f"- {'met' if ok else 'MISSED'}: {text} (measured {measured})" for text, ok, measured in targets]
    notes = [*p.notes, *s.get("notes", []), *(f"not scored: {x}" for x in r["skipped"])]
    if notes:
        lines += ["", *(f"- Note: {n}" for n in notes)]
    lines += ["", "Trainings (each resumable; `--run-dir` under the benchmark's runs folder):", ""]
    for name in p.models:
        if name in facts:
            f = facts[name]
            lines.append(f"- `{name}` ({TRAININGS[name].budget}): `{shown(f['command'], data)}`")
    return [*lines, ""]


def split_speed(text: str) -> tuple[str, str, str]:
    """(before, the "## Speed" section that scripts/bench_speed.py writes, after) of BENCHMARKS.md."""
    head, sep, tail = text.partition(SPEED)
    if not sep:
        return text, "", ""
    nxt = tail.find("\n## ")
    return head, SPEED + (tail[:nxt + 1] if nxt >= 0 else tail), tail[nxt + 1:] if nxt >= 0 else ""


def speed_section(path: Path) -> str:
    """The Speed section, kept when the rest is rewritten."""
    if not path.is_file():
        return ""
    speed = split_speed(path.read_text())[1]
    return "\n" + speed if speed else ""


def write_report(results: list[dict[str, Any]], data: Path, runs: Path, out: Path, command: str) -> None:
    lines = ["# Benchmarks", "",
             f"Produced by `{command}` on {dt.date.today().isoformat()}. Every number below was computed by "
             "that command from the checkpoints it trained; rerun it to reproduce them (finished trainings are "
             "reused, interrupted ones resumed).", "",
             f"- Hardware: {hardware()}",
             "- Data: the subsets in `../shared/data` (see its README). They are NOT the official test sets: the "
             "CIFAR-10 'test_batch' is 932 images of official training batch 5 and the Fashion-MNIST 't10k' "
             "file holds 557 images of the official training split. No score here is a score on the official "
             "benchmarks.",
             "- Metric card: 8-bit quantised outputs, RGB (or gray), no border crop; PSNR per image capped at 60 dB "
             "and averaged; 'PSNR of mean MSE' is 10 log10(1 / mean MSE); SSIM is scikit-image's Gaussian-window "
             "SSIM (sigma 1.5), averaged. 'gain' is the method's mean PSNR minus the blurred input's.",
             "- Wiener and Richardson-Lucy are given the TRUE kernel of every image (a non-blind oracle) and "
             "their one parameter is tuned on the validation split. The networks are blind.",
             "- Training images/s counts training patches per second of training wall time, validation "
             "included. Inference ms/MP is measured while scoring, on the same CPU.", ""]
    for r in results:
        lines += protocol_section(r, data, runs)
    from deblur.evaluation.evaluate import json_safe
    from deblur.imaging.imageio import atomic_write_text

    atomic_write_text(out, "\n".join(lines) + speed_section(out))
    json_out = out.with_suffix(".json")
    records = [{k: v for k, v in r.items() if k != "protocol"} | {"name": r["protocol"].name} for r in results]
    # JSON has no NaN: a failed model's scores are null
    atomic_write_text(json_out, json.dumps(json_safe(records), indent=2, default=str, allow_nan=False) + "\n")
    print(f"wrote {out} and {json_out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                    help="folder with cifar-10-batches-py/, fashion-mnist/, kaggle-blur-subset/")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "bench", help="where the trainings are written")
    ap.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    ap.add_argument("--only", default="", help="comma-separated protocol names (default: all)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--train", action="store_true", help="only train (resume or skip finished runs)")
    mode.add_argument("--report", action="store_true", help="only score finished runs and write the report")
    args = ap.parse_args()
    data = args.data.resolve()
    if not data.is_dir():
        raise SystemExit(f"error: {data}: no such folder (pass --data DIR with the datasets)")
    chosen = [p for p in PROTOCOLS if not args.only or p.name in args.only.split(",")]
    if not chosen:
        raise SystemExit(f"error: --only: choose from {', '.join(p.name for p in PROTOCOLS)}")
    os.chdir(ROOT)
    if not args.report:
        wanted = {n for p in chosen for n in p.models}
        names = [n for n in TRAININGS if n in wanted]  # the order of TRAININGS: longest and most important first
        train_all(names, data, args.runs)
    if args.train:
        return
    command = shlex.join(["python", "scripts/benchmark.py", *sys.argv[1:]])
    results = [score(p, data, args.runs) for p in chosen]
    from deblur.evaluation.evaluate import failure_lines, format_table

    for r in results:
        print(format_table(r["summary"]))
    write_report(results, data, args.runs, args.output, command)
    failures = [f"{r['protocol'].name}: {line}" for r in results for line in failure_lines(r["summary"])]
    for line in failures:
        print(f"failed: {line}", file=sys.stderr)
    if failures:  # the report records them; the exit status says so too, as deblur eval's does
        raise SystemExit(1)


if __name__ == "__main__":
    main()
