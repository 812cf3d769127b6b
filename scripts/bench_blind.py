"""Benchmark of the built-in blind restorer on camera shake, motion, Gaussian and defocus blur.

Protocol (issue 18): the photos of ../shared/data/photos split as every photo benchmark here splits
them (`folder` source, seed 42, 20 % validation, 20 % test: the test photos were never trained on
and never used to tune the restorer; its thresholds were set on `--split val` and `--split train`,
the photos the refiner trains on, which the classical stages never learn from). Each photo
is blurred `--draws` times per kind with deblur's own degradations, seeded:
  shake    camera shake (Boracchi and Foi trajectories), kernel size 11-31 px
  motion   linear motion, length 7-31 px, any angle
  gaussian sigma 1-3 px
  defocus  disk radius 2-6 px
  none     no blur (the sharp-input control)
each followed by Poisson-Gaussian sensor noise (read noise 0-0.01, shot 0-0.0003) and JPEG quality 90.
Scores are PSNR on RGB, 8-bit, on the interior (20 px border off), the best over integer shifts of
up to 3 px, for the blurred input and every method alike, as Levin et al. (2009) score blind
results: a blind kernel is defined up to a translation. Methods:
  blind           the built-in restorer without its refiner (`deblur predict --no-refiner`)
  refined         the built-in restorer with the refiner (`deblur predict`; `--refiner PATH` for another
                  refiner checkpoint, `--refiner none` to leave these columns out)
  true kernel     the same deconvolution handed the true kernel (the estimator's ceiling); with the
                  refiner after it; Wiener (scikit-image, balance 0.003) and TV (the same half-quadratic
                  deconvolution with alpha 1) handed the true kernel
  previous net    the network deblur shipped as its built-in model before (`--checkpoint builtin-network`)
Kernel accuracy: Levin et al.'s error ratio, the deconvolution error with the estimated kernel over
that with the true kernel (same deconvolution), for every blurred image (the estimate is made even
where triage then leaves the photo alone).

    python scripts/bench_blind.py --data ../shared/data/photos --split test
writes docs/blind_benchmark.md and .json (`--out`).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

KINDS = {
    "shake": {"kind": "shake", "size": [11.0, 31.0]},
    "motion": {"kind": "motion", "length": [7.0, 31.0], "angle": [0.0, 180.0]},
    "gaussian": {"kind": "gaussian", "sigma": [1.0, 3.0]},
    "defocus": {"kind": "defocus", "radius": [2.0, 6.0]},
    "none": {"kind": "none"},
}
SENSOR = {"noise": [0.0, 0.01], "shot": [0.0, 0.0003], "jpeg": 90.0}
BORDER, SHIFT = 20, 3


def aligned_mse(out: np.ndarray, sharp: np.ndarray) -> float:
    """The least MSE over integer shifts of up to SHIFT px, on the interior (BORDER px off), both
    quantised to 8 bits: deblur.imaging.metrics.best_shift, as `deblur eval --shift` scores."""
    from deblur.imaging.metrics import best_shift, mse, quantize

    ref, window = best_shift(quantize(sharp), quantize(out), SHIFT, BORDER)
    return mse(ref, window)


def psnr(mse: float) -> float:
    return 60.0 if mse <= 1e-6 else float(10.0 * np.log10(1.0 / mse))


def make_set(data: Path, split: str, draws: int, seed: int) -> list[dict]:
    from keras import ops

    from deblur.data import degrade
    from deblur.data.sources import folder
    from deblur.imaging.imageio import read_image, to_float

    splits = folder.load(str(data), seed=42, val_split=0.2, test_split=0.2)
    part = getattr(splits, split)
    rng = np.random.default_rng(seed)
    items = []
    for i, name in enumerate(part.names):
        sharp = to_float(read_image(data / f"{name}.jpg"))
        for kind, spec in KINDS.items():
            deg = degrade.make({**spec, **SENSOR})
            for d in range(draws):
                u = rng.uniform(size=4).astype(np.float32)
                noise = rng.standard_normal(sharp.shape).astype(np.float32)
                out, p = deg.apply(ops.convert_to_tensor(sharp), ops.convert_to_tensor(u), ops.convert_to_tensor(noise))
                params = {k: float(ops.convert_to_numpy(v)) for k, v in p.items()}
                items.append({"photo": name, "kind": kind, "draw": d, "sharp": sharp,
                              "blurred": np.asarray(ops.convert_to_numpy(out), np.float32),
                              "kernel": degrade.kernel_array(deg, params),
                              "params": {k: round(v, 3) for k, v in params.items() if v == v}})
        print(f"made {i + 1}/{len(part.names)} photos", file=sys.stderr, flush=True)
    return items


WIENER_BALANCE = 3e-3


def load_refiner(which: str):
    """The refiner callable for `--refiner` (None for "none")."""
    if which == "none":
        return None
    from deblur.api import open_engine
    from deblur.pretrained import refiner_checkpoint
    from deblur.restore.refine import network_refiner

    path = refiner_checkpoint() if which == "shipped" else Path(which)
    if path is None:
        sys.exit("error: this install ships no refiner; pass --refiner PATH or --refiner none")
    return network_refiner(open_engine(path, "keras"))


def run(items: list[dict], network: bool, refiner_name: str = "shipped") -> list[dict]:
    from deblur.evaluation.baselines import apply
    from deblur.restore.blind import BlindRestorer
    from deblur.restore.deconvolve import deconvolve
    from deblur.restore.estimate import estimate_kernel

    restorer = BlindRestorer()
    weight, alpha = restorer.settings.weight, restorer.settings.alpha
    refiner = load_refiner(refiner_name)
    net = None
    if network:
        from deblur.api import Restorer

        net = Restorer.load("builtin-network")
    rows = []
    for n, it in enumerate(items, 1):
        b, s = it["blurred"], it["sharp"]
        row = {k: it[k] for k in ("photo", "kind", "draw", "params")}
        row["input"] = psnr(aligned_mse(b, s))
        t = time.perf_counter()
        out, outcome = restorer(b)
        row["seconds"] = time.perf_counter() - t
        row["blind"] = psnr(aligned_mse(out, s))
        row["identical"] = bool(out is b)
        row["reason"] = outcome.reason
        if refiner is not None:
            # the pipeline with the refiner, on the same estimate: the refiner runs after the deconvolution
            # and before the re-blur check and the halo guard, as in BlindRestorer.restore_float
            t = time.perf_counter()
            refined = (BlindRestorer(kernel=outcome.estimate.kernel, refiner=refiner)(b)[0]
                       if outcome.changed and outcome.estimate is not None else b)
            row["refine_seconds"] = time.perf_counter() - t if outcome.changed else 0.0
            row["refined"] = psnr(aligned_mse(refined, s))
            row["refined_identical"] = bool(refined is b)
        if it["kind"] != "none":
            true_out = np.clip(deconvolve(b, it["kernel"], weight, alpha), 0, 1)
            true_mse = aligned_mse(true_out, s)
            row["true_kernel"] = psnr(true_mse)
            if refiner is not None:
                row["true_refined"] = psnr(aligned_mse(np.clip(refiner(b, true_out, it["kernel"]), 0, 1), s))
            row["wiener_true"] = psnr(aligned_mse(apply("wiener", b, it["kernel"], WIENER_BALANCE), s))
            row["tv_true"] = psnr(aligned_mse(np.clip(deconvolve(b, it["kernel"], weight, 1.0), 0, 1), s))
            est = outcome.estimate.kernel if outcome.estimate is not None else estimate_kernel(b, crops=1).kernel
            est_mse = aligned_mse(np.clip(deconvolve(b, est, weight, alpha), 0, 1), s)
            row["error_ratio"] = est_mse / max(true_mse, 1e-12)
        if net is not None:
            row["previous_net"] = psnr(aligned_mse(net(b), s))
        rows.append(row)
        print(f"{n}/{len(items)} {row['photo'][:14]:14s} {row['kind']:8s} in {row['input']:.2f} blind "
              f"{row['blind']:.2f} ({row['seconds']:.1f} s) {outcome.reason}", file=sys.stderr, flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    out: dict = {}
    for kind in KINDS:
        sel = [r for r in rows if r["kind"] == kind]
        if not sel:
            continue
        gains = np.array([r["blind"] - r["input"] for r in sel])
        entry = {"n": len(sel), "input": float(np.mean([r["input"] for r in sel])),
                 "blind": float(np.mean([r["blind"] for r in sel])), "gain": float(gains.mean()),
                 "worst_gain": float(gains.min()), "changed": sum(not r["identical"] for r in sel),
                 "seconds": float(np.mean([r["seconds"] for r in sel]))}
        if "true_kernel" in sel[0]:
            entry["true_kernel"] = float(np.mean([r["true_kernel"] for r in sel]))
            ratios = np.array([r["error_ratio"] for r in sel])
            entry["ratio_le_3"] = float(np.mean(ratios <= 3.0))
            entry["median_ratio"] = float(np.median(ratios))
        for key in ("previous_net", "refined", "true_refined", "wiener_true", "tv_true", "refine_seconds"):
            if key in sel[0]:
                entry[key] = float(np.mean([r[key] for r in sel]))
        if "refined" in sel[0]:
            entry["refined_changed"] = sum(not r["refined_identical"] for r in sel)
            entry["refined_worst_gain"] = float(min(r["refined"] - r["input"] for r in sel))
        out[kind] = entry
    blurred = [r for r in rows if r["kind"] != "none"]
    out["all_blurred"] = {"ratio_le_3": float(np.mean([r["error_ratio"] <= 3.0 for r in blurred])) if blurred else 0.0,
                          "worst_gain": float(min(r["blind"] - r["input"] for r in rows)),
                          "below_half_db": sum(r["blind"] - r["input"] < -0.5 for r in rows)}
    return out


TARGETS = {"shake": 3.0, "motion": 2.5, "gaussian": 2.0, "defocus": 1.5}


def _cell(e: dict, key: str, fmt: str = "{:.2f}") -> str:
    return fmt.format(e[key]) if key in e else "-"


def markdown(summary: dict, args: argparse.Namespace, rows: list[dict]) -> str:
    lines = [f"# Built-in blind restorer: {args.split} split of `{args.data}`", "",
             f"Command: `python scripts/bench_blind.py --data {args.data} --split {args.split} --draws {args.draws}"
             f" --seed {args.seed} --refiner {args.refiner}`; {len(rows)} images; "
             f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}.", "",
             "PSNR (dB) on RGB, 8-bit, interior (20 px border off), best over integer shifts up to 3 px, input and "
             "outputs alike. Blur per kind as in the script's docstring, then Poisson-Gaussian noise and JPEG 90. "
             "*Without refiner* is `deblur predict --no-refiner`, *with refiner* is `deblur predict`.",
             "", "| kind | n | blurred input | without refiner | gain | with refiner | gain | worst image (with) "
             "| changed | true kernel | true kernel + refiner | Wiener, true kernel | TV, true kernel "
             "| previous network | error ratio <= 3 | s / image (+ refiner) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
             "| ---: |"]
    for kind in KINDS:
        e = summary.get(kind)
        if not e:
            continue
        refined = "refined" in e
        lines.append(f"| {kind} | {e['n']} | {e['input']:.2f} | {e['blind']:.2f} | {e['gain']:+.2f} | "
                     + (f"{e['refined']:.2f} | {e['refined'] - e['input']:+.2f} | {e['refined_worst_gain']:+.2f}"
                        if refined else f"- | - | {e['worst_gain']:+.2f}")
                     + f" | {e['changed']}/{e['n']} | {_cell(e, 'true_kernel')} | {_cell(e, 'true_refined')} | "
                     f"{_cell(e, 'wiener_true')} | {_cell(e, 'tv_true')} | {_cell(e, 'previous_net')} | "
                     + (f"{100 * e['ratio_le_3']:.0f} %" if "ratio_le_3" in e else "-")
                     + f" | {e['seconds']:.1f}" + (f" (+{e['refine_seconds']:.1f})" if refined else "") + " |")
    a = summary["all_blurred"]
    lines += ["", "## Targets (issue 18: the pipeline without the refiner)", "", "| target | figure | result |",
              "| --- | --- | --- |"]
    for kind, goal in TARGETS.items():
        if kind in summary:
            g = summary[kind]["gain"]
            lines.append(f"| {kind}: mean gain >= +{goal} dB | {g:+.2f} dB | {'met' if g >= goal else '**missed**'} |")
    if "none" in summary:
        e = summary["none"]
        same = 1 - e["changed"] / e["n"]
        lines.append(f"| sharp inputs: >= 90 % bit-identical | {100 * same:.0f} % | "
                     f"{'met' if same >= 0.9 else '**missed**'} |")
        loss = -e["gain"]
        ok = "met" if loss <= 0.02 else "**missed**"
        lines.append(f"| sharp inputs: mean loss <= 0.02 dB | {loss:.3f} dB | {ok} |")
    lines.append(f"| kernel error ratio <= 3 for >= 80 % of blurred images | {100 * a['ratio_le_3']:.0f} % | "
                 f"{'met' if a['ratio_le_3'] >= 0.8 else '**missed**'} |")
    lines.append(f"| no image more than 0.5 dB below its input | worst {a['worst_gain']:+.2f} dB, "
                 f"{a['below_half_db']} image(s) below -0.5 | {'met' if a['below_half_db'] == 0 else '**missed**'} |")
    lines += refiner_targets(summary)
    lines += ["", "## Per image", "", "| photo | kind | draw | input | without refiner | with refiner | what it did |",
              "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r['photo']} | {r['kind']} | {r['draw']} | {r['input']:.2f} | {r['blind']:.2f} | "
                     + (f"{r['refined']:.2f}" if "refined" in r else "-") + f" | {r['reason']} |")
    return "\n".join(lines) + "\n"


def refiner_targets(summary: dict) -> list[str]:
    """Issue 21's targets: the refiner adds >= 1 dB on camera shake, loses on no kind, and leaves the
    photos that triage passes through bit-identical."""
    kinds = [k for k in KINDS if k in summary and "refined" in summary[k]]
    if not kinds:
        return []
    lines = ["", "## Targets (issue 21: the refiner)", "", "| target | figure | result |", "| --- | --- | --- |"]
    if "shake" in kinds:
        d = summary["shake"]["refined"] - summary["shake"]["blind"]
        lines.append(f"| shake: refiner adds >= +1 dB over the pipeline without it | {d:+.2f} dB | "
                     f"{'met' if d >= 1.0 else '**missed**'} |")
    for kind in kinds:
        d = summary[kind]["refined"] - summary[kind]["blind"]
        lines.append(f"| {kind}: no loss against the pipeline without the refiner | {d:+.2f} dB | "
                     f"{'met' if d >= 0 else '**missed**'} |")
    if "none" in kinds:
        e = summary["none"]
        same = e["changed"] == e["refined_changed"]
        lines.append(f"| sharp inputs that triage passes through stay bit-identical | {e['n'] - e['refined_changed']}"
                     f"/{e['n']} identical with, {e['n'] - e['changed']}/{e['n']} without | "
                     f"{'met' if same else '**missed**'} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/photos"))
    ap.add_argument("--split", choices=("train", "val", "test"), default="test")
    ap.add_argument("--draws", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--no-network", action="store_true", help="leave out the previous built-in network")
    ap.add_argument("--refiner", default="shipped", help="refiner checkpoint or export (default: the shipped "
                    "one); none leaves the refined columns out")
    ap.add_argument("--out", type=Path, default=Path("docs/blind_benchmark"))
    args = ap.parse_args()
    if not args.data.is_dir():
        sys.exit(f"error: {args.data}: no such folder (the photos of ../shared/data/photos)")
    items = make_set(args.data, args.split, args.draws, args.seed)
    rows = run(items, network=not args.no_network, refiner_name=args.refiner)
    summary = summarise(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps({"protocol": {"data": str(args.data), "split": args.split,
                                                                      "draws": args.draws, "seed": args.seed,
                                                                      "refiner": args.refiner},
                                                         "summary": summary, "rows": rows}, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(summary, args, rows))
    print(markdown(summary, args, rows).split("## Per image")[0])


if __name__ == "__main__":
    main()
