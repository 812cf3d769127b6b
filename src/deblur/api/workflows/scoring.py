"""`deblur.evaluate` and `deblur.compare`: score checkpoints beside the blurred input and the baselines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from deblur.api.workflows.common import (
    Progress,
    Scores,
    as_path,
    check_default_output,
    locked_output,
    optional_path,
    resumable,
    score_checkpoint,
    scored,
    start_backend,
)
from deblur.core.errors import DeblurError, again, arg

PathLike = str | Path


def run_config(checkpoint: Path, config: PathLike | None, overrides: Sequence[str], split: str) -> tuple[Any, str]:
    """The config to score on (`config` if given, else the one saved beside the checkpoint) and the name
    of the reports folder beside the checkpoint."""
    from deblur import config as cfgmod
    from deblur.training.rundir import CONFIG_FILE, RunPaths, resume_config

    if config is not None:
        cfg = cfgmod.load(as_path("config", config), list(overrides))
        return cfg, f"eval-{cfg.name}-{split}"
    if (checkpoint.parent / CONFIG_FILE).is_file():
        return resume_config(RunPaths(checkpoint.parent), list(overrides)), f"eval-{split}"
    raise DeblurError(f"no {CONFIG_FILE} beside {checkpoint}; pass {arg('config')} to say which dataset to score on, "
                      f"or {arg('pairs')} / {arg('data')} for a folder of real pairs")


def evaluate(checkpoint: PathLike, *, config: PathLike | None = None, overrides: Sequence[str] = (),
             split: str = "test", output: PathLike | None = None, overwrite: bool = False,
             baselines: str | None = None, y_channel: bool = False, crop_border: int = 0, shift: int = 0,
             pairs: tuple[PathLike, PathLike] | None = None, data: PathLike | None = None, align: bool = False,
             resume: bool = False, progress: Progress | None = None) -> Scores:
    """Score a checkpoint (PSNR, SSIM, MSE) beside the blurred input and classical baselines, as
    `deblur eval` does, and write the reports.

    `checkpoint` is a `.keras` file or a run folder (its best.keras). The data is the run's own config
    (saved beside the checkpoint), `config` with `overrides` (KEY=VALUE, as `--set`), or real pairs:
    `pairs` (a blurred and a sharp folder matched by name) or `data` (a pairs or Kaggle blur-dataset
    folder), optionally registered first (`align`). The reports go to `output`, by default a folder
    beside the checkpoint (eval-test, eval-<config name>-test or eval-pairs-<folder>). `resume`
    continues an interrupted evaluation from its journal; Ctrl-C raises `deblur.core.errors.Stopped`.
    `shift` > 0 scores every method and the blurred input at its best integer translation of up to
    `shift` px, on the interior, as blind deblurring is scored (Levin et al. 2009, "Understanding and
    evaluating blind deconvolution algorithms"): the built-in restorer's kernel is known only up to a
    translation.
    """
    from deblur.evaluation.evaljob import MetricOptions, check_options, check_split
    from deblur.evaluation.evaljournal import Partial
    from deblur.evaluation.evaluate import PAIRS_BASELINES, evaluate_pairs
    from deblur.restore.loading import load_model
    from deblur.training.rundir import BEST

    start_backend()
    check_split(split)
    options = check_options(MetricOptions(y_channel=bool(y_channel), crop_border=crop_border, shift=shift))
    checkpoint, out = as_path("checkpoint", checkpoint), optional_path("output", output)
    if checkpoint.is_dir():  # a run folder, as compare takes
        if not (checkpoint / BEST).is_file():
            raise DeblurError(f"{checkpoint}: is a folder without a {BEST}; give a .keras checkpoint")
        checkpoint = checkpoint / BEST
    if not checkpoint.is_file():
        raise DeblurError(f"{checkpoint}: checkpoint not found")
    if pairs or data:
        from deblur.data.sources.pairs import load_all, load_dirs

        if pairs and data:
            raise DeblurError(f"give {arg('pairs')} or {arg('data')}, not both")
        if pairs:
            blur_dir, sharp_dir = as_path("pairs", pairs[0]), as_path("pairs", pairs[1])
            images, description = load_dirs(blur_dir, sharp_dir), f"pairs ({blur_dir} + {sharp_dir})"
            folder = blur_dir.name
        else:
            data_dir = as_path("data", data)
            images, description = load_all(data_dir)
            folder = data_dir.name
        default_out = checkpoint.parent / f"eval-pairs-{folder}{'-aligned' if align else ''}"
        if out is None:
            check_default_output(default_out)
        model = load_model(checkpoint)
        partial = Partial.beside(out or default_out, resume=resume, overwrite=overwrite)
        with locked_output(out or default_out), resumable(partial, again("evaluate")):
            result = evaluate_pairs(model, images, description, align=align, baselines=baselines or PAIRS_BASELINES,
                                    options=options, progress=progress, checkpoint=str(checkpoint), partial=partial)
            return scored(result, out or default_out, overwrite)
    if align:
        raise DeblurError(f"{arg('align')} applies to real pairs: use it with {arg('pairs')} or {arg('data')}")
    cfg, default_name = run_config(checkpoint, config, overrides, split)
    if out is None:
        check_default_output(checkpoint.parent / default_name)
    return score_checkpoint(checkpoint, cfg, split, out or checkpoint.parent / default_name, overwrite,
                            baselines=baselines, options=options, resume=resume, progress=progress)


def distinct_checkpoints(runs: Sequence[PathLike]) -> dict[str, Path]:
    """label -> checkpoint of each run (a run folder means its best.keras), each one file once: the same
    file twice (by inode: a link or another spelling of its path) would print one row under one name.
    Labels are the run folders' (or files') names, or the paths when two names coincide."""
    from deblur.training.rundir import BEST, run_checkpoint

    checkpoints = [run_checkpoint(as_path("runs", r)) for r in runs]
    seen: dict[tuple[int, int], Path] = {}
    for c in checkpoints:
        if not c.is_file():
            raise DeblurError(f"{c}: checkpoint not found")
        st = c.stat()
        if (st.st_dev, st.st_ino) in seen:
            raise DeblurError(f"{seen[st.st_dev, st.st_ino]} and {c} are the same checkpoint; give each run once")
        seen[st.st_dev, st.st_ino] = c
    labels = [c.parent.name if c.name == BEST else c.stem for c in checkpoints]
    if len(set(labels)) != len(labels):
        labels = [str(c) for c in checkpoints]
    return dict(zip(labels, checkpoints, strict=True))


def compare(runs: Sequence[PathLike], *, config: PathLike | None = None, overrides: Sequence[str] = (),
            split: str = "test", output: PathLike | None = None, overwrite: bool = False,
            baselines: str | None = None, y_channel: bool = False, crop_border: int = 0, shift: int = 0,
            resume: bool = False, progress: Progress | None = None) -> Scores:
    """Score several runs (run folders or `.keras` checkpoints) on the same split with the same seed, in
    one table, as `deblur compare` does; the data is the first run's config unless `config` is given.
    Reports are written only to `output`; `resume` continues an interrupted compare journaled there.
    `shift` scores at the best integer translation, as `evaluate` does."""
    from deblur.evaluation.evaljob import MetricOptions, check_options, check_split
    from deblur.evaluation.evaljournal import Partial
    from deblur.evaluation.evaluate import DEFAULT_BASELINES
    from deblur.evaluation.evaluate import evaluate as evaluate_models
    from deblur.restore.loading import load_model

    if isinstance(runs, str | Path):
        raise DeblurError(f"{arg('runs')}: expected a list of run folders or checkpoints, got one path")
    start_backend()
    check_split(split)
    options = check_options(MetricOptions(y_channel=bool(y_channel), crop_border=crop_border, shift=shift))
    out = optional_path("output", output)
    if resume and out is None:
        raise DeblurError(f"{arg('resume=True')} continues the rows journaled in {arg('output')} DIR; give the "
                          f"{arg('output')} of the interrupted compare")
    checkpoints = distinct_checkpoints(runs)
    if not checkpoints:
        raise DeblurError(f"{arg('runs')}: give at least one run folder or checkpoint")
    cfg, _ = run_config(next(iter(checkpoints.values())), config, overrides, split)
    models = {label: load_model(c) for label, c in checkpoints.items()}
    partial = Partial.beside(out, resume=resume, overwrite=overwrite) if out is not None else None
    with locked_output(out), resumable(partial, again("compare")):
        result = evaluate_models(models, cfg, split, baselines=baselines or DEFAULT_BASELINES, options=options,
                                 progress=progress, gallery=False, partial=partial)
        return scored(result, out, overwrite)
