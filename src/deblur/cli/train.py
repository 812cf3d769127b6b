"""`deblur train`, `eval` and `compare`: options in, `deblur.api.workflows` called, scores printed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deblur.cli.app import SetOption, command, progress, report, warn


@command()
def train(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Experiment YAML, e.g. configs/quickstart.yaml."
                                                )] = None,
    set_: SetOption = None,
    run_dir: Annotated[Path | None, typer.Option(help="Where the run is written [default: runs/<name>].")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last completed epoch, using the "
                                         "config saved in its run directory.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Delete an existing run directory and start again.")] = False,
    evaluate_after: Annotated[bool, typer.Option("--eval/--no-eval", help="Score best.keras on the test split at the "
                                                 "end.")] = True,
) -> None:
    """Train a model as a config describes; writes runs/<name>/ (config, checkpoints, history)."""
    from deblur.api.workflows import train as run

    sets = set_ or []
    line = " ".join(["deblur train", *(["--config", str(config)] if config else []), *(f"--set {o}" for o in sets),
                     *(["--run-dir", str(run_dir)] if run_dir else []), *(["--resume"] if resume else []),
                     *(["--overwrite"] if overwrite else [])])
    report(run(config, overrides=sets, run_dir=run_dir, resume=resume, overwrite=overwrite, command=line, warn=warn,
               evaluate_after=evaluate_after, echo=typer.echo, progress=progress("scoring test", "batch")).scores)


BaselinesOption = Annotated[str | None, typer.Option(
    help="Comma list of classical methods to score beside the model: identity (the blurred input, always shown), "
         "wiener and richardson_lucy (non-blind: given the true kernel; tuned on validation images), unsharp (blind), "
         "blind (the built-in restorer without its refiner: blur estimation and deconvolution; seconds per image), "
         "builtin (the built-in restorer as `deblur predict` runs it, refiner included). "
         "[default: identity,wiener; identity,unsharp for real pairs]")]
SplitOption = Annotated[str, typer.Option(help="Which split to score: test or val.")]
ReportOverwriteOption = Annotated[bool, typer.Option(help="Replace reports that already exist.")]
YOption = Annotated[bool, typer.Option("--y-channel", help="Score BT.601 luma instead of RGB.")]
CropOption = Annotated[int, typer.Option(help="Ignore this many pixels at each border when scoring.")]
ShiftOption = Annotated[int, typer.Option(
    metavar="N", help="Score every method and the blurred input at their best integer shift up to N px, on the "
                      "interior (at least N px off each border), as blind deblurring is scored (Levin et al. 2009); "
                      "for the built-in restorer, whose kernel is known only up to a translation. [default: 0, no "
                      "shift]")]
ResumeOption = Annotated[bool, typer.Option(help="Continue an interrupted evaluation from the rows it journaled in "
                                            "OUTPUT/per_image.partial.jsonl (same checkpoint, data and options only) "
                                            "instead of scoring again from the first image.")]


@command("eval")
def eval_(
    checkpoint: Annotated[Path, typer.Argument(help="A .keras checkpoint, e.g. runs/quickstart/best.keras.")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Score on this config's dataset instead of the "
                                                "one the run was trained on.")] = None,
    set_: SetOption = None,
    split: SplitOption = "test",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder for metrics.json, per_image.csv, "
                                                "gallery.png, curves.png [default: beside the checkpoint].")] = None,
    overwrite: ReportOverwriteOption = False,
    baselines: BaselinesOption = None,
    y_channel: YOption = False,
    crop_border: CropOption = 0,
    shift: ShiftOption = 0,
    pairs: Annotated[tuple[Path, Path] | None, typer.Option(metavar="BLUR_DIR SHARP_DIR", help="Score on two folders "
                                                            "of real pairs matched by name; no config needed.")] = None,
    data: Annotated[Path | None, typer.Option(help="Score on every pair in a pairs or Kaggle blur-dataset folder; no "
                                              "config needed.")] = None,
    align: Annotated[bool, typer.Option(help="With --pairs/--data: register each blurred photo to its sharp twin (ECC "
                                        "homography) and score only the overlap.")] = False,
    resume: ResumeOption = False,
) -> None:
    """Score a checkpoint (PSNR, SSIM, MSE) beside the blurred input and classical baselines."""
    from deblur.api.workflows import evaluate

    bar = progress("scoring pairs", "pair") if pairs or data else progress(f"scoring {split}", "batch")
    report(evaluate(checkpoint, config=config, overrides=set_ or [], split=split, output=output, overwrite=overwrite,
                    baselines=baselines, y_channel=y_channel, crop_border=crop_border, shift=shift, pairs=pairs,
                    data=data, align=align, resume=resume, progress=bar))


@command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run directories or .keras checkpoints (a run means its "
                                               "best.keras).")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Dataset to score on [default: the first "
                                                "run's config].")] = None,
    set_: SetOption = None,
    split: SplitOption = "test",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write metrics.json and per_image.csv "
                                                "here.")] = None,
    overwrite: ReportOverwriteOption = False,
    baselines: BaselinesOption = None,
    y_channel: YOption = False,
    crop_border: CropOption = 0,
    shift: ShiftOption = 0,
    resume: ResumeOption = False,
) -> None:
    """Score several runs on the same test set with the same seed, in one table."""
    from deblur.api.workflows import compare as score

    report(score(runs, config=config, overrides=set_ or [], split=split, output=output, overwrite=overwrite,
                 baselines=baselines, y_channel=y_channel, crop_border=crop_border, shift=shift, resume=resume,
                 progress=progress(f"scoring {split}", "batch")))
