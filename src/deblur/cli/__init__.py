"""The `deblur` command: train, eval, predict, blur and models.

A mistake the user can fix (bad config, missing files, existing outputs) is printed as one line
starting with `error:` and exits with status 2. What the machine could not do (a full or read-only
disk, memory) and bugs are one `error:` line too, with exit status 1 (`deblur.core.failures`); never a
traceback, unless DEBLUR_DEBUG=1 asks for it.
TensorFlow is imported inside the commands so that `deblur --help` is instant.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.exceptions import TyperException

from deblur.core.errors import DeblurError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

app = typer.Typer(
    help="Train, evaluate and run image-deblurring networks. Every score is shown beside the blurred "
    "input's own, so you see the gain, not just a number.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

F = TypeVar("F", bound=Callable[..., Any])
# predict's and blur's output options, one wording for both
FORMAT_HELP = ("Output format: same (a JPEG input gives a JPEG of quality 95 with 4:4:4 chroma, any other input a "
               "PNG), png, or jpeg; --side-by-side images follow it too. A 16-bit or alpha image is always written as "
               "PNG.")
STRIP_HELP = ("Drop the input's metadata. By default each output keeps its input's EXIF (camera, dates, GPS "
              "location; Orientation set to 1, as the pixels are written upright) and ICC colour profile.")


def user_errors(fn: F) -> F:
    """Turn any failure into one `error:` line on stderr: exit status 2 for a DeblurError (the user's
    to fix), 1 for anything else (file system, memory, a bug), 130 for Ctrl-C."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DeblurError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, TyperException):
            raise  # the command's own exit status, and typer's usage errors
        except KeyboardInterrupt:
            typer.echo("\ninterrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            if os.environ.get("DEBLUR_DEBUG") == "1":
                raise
            from deblur.core.failures import failure_line

            typer.echo(f"error: {failure_line(exc)}", err=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _import_backend() -> None:
    """Import Keras and its backend; one that cannot be used (a misspelt or missing KERAS_BACKEND) is a
    one-line error naming it, not an internal error."""
    try:
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.list_physical_devices()
    except (ImportError, ValueError) as exc:
        reason = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        backend = os.environ.get("KERAS_BACKEND", "tensorflow (the default)")
        raise DeblurError(f"KERAS_BACKEND={backend}: Keras cannot run on it ({reason[:200]}); set KERAS_BACKEND to "
                          "tensorflow, jax or torch, with that package installed") from None


def _quiet_backend() -> None:
    """Import Keras and its backend with their native start-up lines hidden (DEBLUR_TF_LOGS=1 shows them).

    TF prints oneDNN/CUDA notices from C++ before its logging is initialised, where neither
    TF_CPP_MIN_LOG_LEVEL nor absl reach them; only the file descriptor can. Python errors still
    propagate normally once it is restored. TensorFlow is imported only when it is the backend.
    """
    import logging

    if os.environ.get("DEBLUR_TF_LOGS") != "1":
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, OSError, ValueError):  # captured stderr (tests) has no descriptor
            fd = None
        if fd is not None:
            sys.stderr.flush()
            saved, devnull = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, fd)
                _import_backend()
            finally:
                os.dup2(saved, fd)
                os.close(saved)
                os.close(devnull)
    _import_backend()  # imported already, unless stderr had no descriptor
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass


def _progress(desc: str, unit: str) -> Callable[..., Iterable]:
    from tqdm import tqdm

    def wrap(items: Iterable, total: int | None = None) -> Iterable:
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        return tqdm(items, desc=desc, unit=unit, total=total, file=sys.stderr, dynamic_ncols=True,
                    disable=None)

    return wrap


SetOption = Annotated[list[str] | None, typer.Option(
    "--set", "-s", metavar="KEY=VALUE", help="Override a config key, e.g. --set train.epochs=3 (repeatable).")]


@app.command()
@user_errors
def train(
    config: Annotated[Path | None, typer.Option("--config", "-c",
                                                help="Experiment YAML, e.g. configs/quickstart.yaml.")] = None,
    set_: SetOption = None,
    run_dir: Annotated[Path | None, typer.Option(help="Where the run is written [default: runs/<name>].")] = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its last completed epoch, "
                                               "using the config saved in its run directory.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Delete an existing run directory and start again.")] = False,
    evaluate_after: Annotated[bool, typer.Option("--eval/--no-eval",
                                                 help="Score best.keras on the test split at the end.")] = True,
) -> None:
    """Train a model as a config describes; writes runs/<name>/ (config, checkpoints, history)."""
    _quiet_backend()
    from deblur import config as cfgmod
    from deblur.training import train as trainmod

    overrides = set_ or []
    command = " ".join(["deblur train", *(["--config", str(config)] if config else []),
                        *(f"--set {o}" for o in overrides), *(["--run-dir", str(run_dir)] if run_dir else []),
                        *(["--resume"] if resume else []), *(["--overwrite"] if overwrite else [])])
    if resume:
        if run_dir is None:
            if config is None:
                raise DeblurError("--resume needs --run-dir (or --config, to find runs/<name>)")
            run_dir = Path("runs") / cfgmod.load(config, overrides).name
        run_dir, evaluate_after = _worker_resume_dir(run_dir, overrides, evaluate_after)
        paths = trainmod.prepare_run_dir(run_dir, resume=True, overwrite=overwrite)
    else:
        if config is None:
            raise DeblurError("--config is required (for example --config configs/quickstart.yaml)")
        cfg = cfgmod.load(config, overrides)
        if cfg.train.distribute == "multi_worker":
            run_dir, evaluate_after = _worker_run_dir(run_dir, cfg.name, evaluate_after)
        paths = trainmod.new_run(cfg, run_dir, overwrite)
    with paths:  # the run folder stays locked until training and its evaluation are done
        if resume:
            cfg = trainmod.resume_config(paths, overrides)
            typer.echo(f"resuming {paths.root} with its saved config")
        _train_and_evaluate(cfg, paths, resume, command, evaluate_after)


def _train_and_evaluate(cfg: Any, paths: Any, resume: bool, command: str, evaluate_after: bool) -> None:
    from deblur.core.oserror import describe
    from deblur.restore.checkpoints import Interrupted
    from deblur.training import train as trainmod

    start = time.perf_counter()
    try:
        result = trainmod.train(cfg, paths, resume=resume, echo=typer.echo, command=command)
    except (Interrupted, KeyboardInterrupt):
        typer.echo(f"\ninterrupted: {paths.last.name} and the backup of the last completed epoch are in "
                   f"{paths.root}; continue with: deblur train --run-dir {paths.root} --resume", err=True)
        raise typer.Exit(130) from None
    except OSError as exc:  # e.g. the disk filled while a checkpoint or history.csv was written
        if not paths.config.is_file():  # failed before the run was saved (reading the data, say): no resume
            raise DeblurError(f"{describe(exc)}; nothing was trained. Fix that and start the run again") from None
        raise DeblurError(f"{describe(exc)}; training stopped. Fix that, then continue with: deblur train "
                          f"--run-dir {paths.root} --resume") from None
    minutes = (time.perf_counter() - start) / 60
    typer.echo(f"trained {result['epochs_run']} epoch(s) in {minutes:.1f} min; checkpoints: {paths.best}, {paths.last}")
    if evaluate_after and cfg.train.evaluate_after:
        _evaluate_and_report(paths.best, cfg, "test", paths.root / "eval-test", overwrite=True,
                             how=f"deblur eval {paths.best} --resume")


def _worker_run_dir(run_dir: Path | None, name: str, evaluate_after: bool) -> tuple[Path | None, bool]:
    """Only the chief writes the run directory; other workers write to a scratch folder and skip the
    final evaluation, so workers sharing a file system never write the same files. The chief keeps the
    user's --eval/--no-eval."""
    from deblur.training.distribute import is_chief

    if is_chief():
        return run_dir, evaluate_after
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix=f"deblur-{name}-worker-")) / "run"
    typer.echo(f"multi-worker: this is not the chief; its files go to {scratch}", err=True)
    return scratch, False


def _worker_resume_dir(run_dir: Path, overrides: list[str], evaluate_after: bool) -> tuple[Path, bool]:
    """Under multi_worker, a worker other than the chief resumes from a scratch copy of the chief's run
    state (config, history, backup), so Keras's BackupAndRestore restores the same epoch and weights on
    every worker (and the time budget counts the same). The chief resumes its run folder itself."""
    import shutil

    from deblur.training import train as trainmod
    from deblur.training.distribute import is_chief, tf_config

    if not tf_config() or is_chief():
        return run_dir, evaluate_after
    source = trainmod.RunPaths(run_dir)
    if not source.config.is_file():
        raise DeblurError(f"--resume: this worker cannot read {source.config}: under multi_worker every worker "
                          "resumes from the chief's run folder, so it must be on a file system all workers share")
    cfg = trainmod.resume_config(source, overrides)
    if cfg.train.distribute != "multi_worker":
        return run_dir, evaluate_after
    scratch, _ = _worker_run_dir(None, cfg.name, False)
    assert scratch is not None  # not the chief: a scratch folder
    scratch.mkdir(parents=True)
    for name in (trainmod.CONFIG_FILE, source.history.name):
        if (run_dir / name).is_file():
            shutil.copy2(run_dir / name, scratch / name)
    if source.backup.is_dir():
        shutil.copytree(source.backup, scratch / source.backup.name)
    return scratch, False


def _locked_output(output: Path | None) -> contextlib.AbstractContextManager[Any]:
    """The reports folder, created and locked for the whole evaluation: two evaluations writing into
    one folder would mix their reports."""
    if output is None:
        return contextlib.nullcontext()
    from deblur.imaging.outputs import output_folder

    return output_folder(output, "--output", "an evaluation")


def _report(result: Any, output: Path | None, overwrite: bool) -> None:
    """Print the table (and write the reports when `output` is given); exit 1 if a model failed.

    A model whose output held NaN or inf has no score: the reports still record it (as failed, with
    null scores), then the command says so on stderr and exits with status 1, as predict does.
    """
    from deblur.evaluation.evaluate import write_reports

    written = write_reports(result, output, overwrite=overwrite) if output is not None else []
    typer.echo(result.table())
    if written:
        typer.echo("reports: " + ", ".join(str(p) for p in written))
    failures = result.failures()
    for line in failures:
        typer.echo(f"failed: {line}", err=True)
    if failures:
        raise typer.Exit(1)


@contextlib.contextmanager
def _resumable(partial: Any, how: str) -> Any:
    """Ctrl-C while scoring: say that the rows scored so far are kept in the journal, and how to continue."""
    try:
        yield
    except KeyboardInterrupt:
        if partial is None or not partial.path.is_file():
            raise
        typer.echo(f"\ninterrupted: the batches scored so far are kept in {partial.path}; continue with: {how}",
                   err=True)
        raise typer.Exit(130) from None


def _evaluate_and_report(checkpoint: Path, cfg: Any, split: str, output: Path, overwrite: bool,
                         baselines: str | None = None, options: Any = None, resume: bool = False,
                         how: str = "the same command with --resume") -> None:
    """Score `checkpoint` into `output`; `how` tells an interrupted user how to continue."""
    from deblur.evaluation.evaljournal import Partial
    from deblur.evaluation.evaluate import DEFAULT_BASELINES, evaluate
    from deblur.restore.loading import load_model

    model = load_model(checkpoint)
    history = checkpoint.parent / "history.csv"
    partial = Partial.beside(output, resume=resume, overwrite=overwrite)
    with _locked_output(output), _resumable(partial, how):
        result = evaluate(model, cfg, split, baselines=baselines or DEFAULT_BASELINES, options=options,
                          progress=_progress(f"scoring {split}", "batch"), checkpoint=str(checkpoint),
                          history=history if history.is_file() else None, partial=partial)
        _report(result, output, overwrite)


def _run_config(checkpoint: Path, config: Path | None, overrides: list[str], split: str) -> tuple[Any, str]:
    """The config to score on: --config if given, else the one saved beside the checkpoint."""
    from deblur import config as cfgmod
    from deblur.training.train import CONFIG_FILE, RunPaths, resume_config

    if config is not None:
        cfg = cfgmod.load(config, overrides)
        return cfg, f"eval-{cfg.name}-{split}"
    if (checkpoint.parent / CONFIG_FILE).is_file():
        return resume_config(RunPaths(checkpoint.parent), overrides), f"eval-{split}"
    raise DeblurError(f"no {CONFIG_FILE} beside {checkpoint}; pass --config to say which dataset to score on, "
                      "or --pairs / --data for a folder of real pairs")


def _check_scoring(split: str, crop_border: int) -> None:
    """The options eval and compare share, checked before any model is loaded."""
    if split not in ("test", "val"):  # "train" would score a model on the images it learnt from
        raise DeblurError(f"--split: {split!r} is not allowed; choose test or val")
    if crop_border < 0:
        raise DeblurError(f"--crop-border {crop_border}: must be 0 or more")


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
ResumeOption = Annotated[bool, typer.Option(help="Continue an interrupted evaluation from the rows it journaled "
                                            "in OUTPUT/per_image.partial.jsonl (same checkpoint, data and options "
                                            "only) instead of scoring again from the first image.")]


@app.command("eval")
@user_errors
def eval_(
    checkpoint: Annotated[Path, typer.Argument(help="A .keras checkpoint, e.g. runs/quickstart/best.keras.")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Score on this config's dataset instead "
                                                "of the one the run was trained on.")] = None,
    set_: SetOption = None,
    split: SplitOption = "test",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Folder for metrics.json, per_image.csv, "
                                                "gallery.png, curves.png [default: beside the checkpoint].")] = None,
    overwrite: ReportOverwriteOption = False,
    baselines: BaselinesOption = None,
    y_channel: YOption = False,
    crop_border: CropOption = 0,
    pairs: Annotated[tuple[Path, Path] | None, typer.Option(metavar="BLUR_DIR SHARP_DIR", help="Score on two folders "
                                                            "of real pairs matched by name; no config needed.")] = None,
    data: Annotated[Path | None, typer.Option(help="Score on every pair in a pairs or Kaggle blur-dataset "
                                              "folder; no config needed.")] = None,
    align: Annotated[bool, typer.Option(help="With --pairs/--data: register each blurred photo to its sharp twin "
                                        "(ECC homography) and score only the overlap.")] = False,
    resume: ResumeOption = False,
) -> None:
    """Score a checkpoint (PSNR, SSIM, MSE) beside the blurred input and classical baselines."""
    _quiet_backend()
    from deblur.evaluation.evaljournal import Partial
    from deblur.evaluation.evaluate import PAIRS_BASELINES, MetricOptions, evaluate_pairs
    from deblur.restore.loading import load_model

    _check_scoring(split, crop_border)
    if checkpoint.is_dir():  # a run folder, as compare takes
        if not (checkpoint / "best.keras").is_file():
            raise DeblurError(f"{checkpoint}: is a folder without a best.keras; give a .keras checkpoint")
        checkpoint = checkpoint / "best.keras"
    if not checkpoint.is_file():
        raise DeblurError(f"{checkpoint}: checkpoint not found")
    options = MetricOptions(y_channel=y_channel, crop_border=crop_border)
    if pairs or data:
        from deblur.data.sources.pairs import load_all, load_dirs

        if pairs and data:
            raise DeblurError("give --pairs or --data, not both")
        source = pairs[0] if pairs else data
        assert source is not None  # --pairs or --data
        images, description = (load_dirs(*pairs), f"pairs ({pairs[0]} + {pairs[1]})") if pairs else load_all(source)
        folder = source.name
        default_out = checkpoint.parent / f"eval-pairs-{folder}{'-aligned' if align else ''}"
        if output is None:
            _check_default_output(default_out)
        model = load_model(checkpoint)
        partial = Partial.beside(output or default_out, resume=resume, overwrite=overwrite)
        with _locked_output(output or default_out), _resumable(partial, "the same command with --resume"):
            result = evaluate_pairs(model, images, description, align=align, baselines=baselines or PAIRS_BASELINES,
                                    options=options, progress=_progress("scoring pairs", "pair"),
                                    checkpoint=str(checkpoint), partial=partial)
            _report(result, output or default_out, overwrite)
        return
    if align:
        raise DeblurError("--align applies to real pairs: use it with --pairs or --data")
    cfg, default_name = _run_config(checkpoint, config, set_ or [], split)
    if output is None:
        _check_default_output(checkpoint.parent / default_name)
    _evaluate_and_report(checkpoint, cfg, split, output or checkpoint.parent / default_name, overwrite,
                         baselines=baselines, options=options, resume=resume)


def _check_default_output(folder: Path) -> None:
    """A report folder deblur chose (beside the checkpoint) is never a link: one planted in a run folder
    someone else made would send the reports outside it. A folder the user names with --output may be."""
    if folder.is_symlink():
        raise DeblurError(f"{folder}: is a symbolic link; deblur writes reports through a link only to a folder you "
                          "name with --output")


@app.command()
@user_errors
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run directories or .keras checkpoints (a run means its "
                                               "best.keras).")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Dataset to score on [default: the "
                                                "first run's config].")] = None,
    set_: SetOption = None,
    split: SplitOption = "test",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write metrics.json and "
                                                "per_image.csv here.")] = None,
    overwrite: ReportOverwriteOption = False,
    baselines: BaselinesOption = None,
    y_channel: YOption = False,
    crop_border: CropOption = 0,
    resume: ResumeOption = False,
) -> None:
    """Score several runs on the same test set with the same seed, in one table."""
    _quiet_backend()
    from deblur.evaluation.evaljournal import Partial
    from deblur.evaluation.evaluate import DEFAULT_BASELINES, MetricOptions, evaluate
    from deblur.restore.loading import load_model

    _check_scoring(split, crop_border)
    if resume and output is None:
        raise DeblurError("--resume continues the rows journaled in --output DIR; give the --output of the "
                          "interrupted compare")
    checkpoints = [r / "best.keras" if r.is_dir() else r for r in runs]
    seen: dict[tuple[int, int], Path] = {}
    for c in checkpoints:
        if not c.is_file():
            raise DeblurError(f"{c}: checkpoint not found")
        st = c.stat()
        if (st.st_dev, st.st_ino) in seen:  # one model twice would print one row under one name
            raise DeblurError(f"{seen[st.st_dev, st.st_ino]} and {c} are the same checkpoint; give each run once")
        seen[st.st_dev, st.st_ino] = c
    labels = [c.parent.name if c.name == "best.keras" else c.stem for c in checkpoints]
    if len(set(labels)) != len(labels):
        labels = [str(c) for c in checkpoints]
    cfg, _ = _run_config(checkpoints[0], config, set_ or [], split)
    models = {label: load_model(c) for label, c in zip(labels, checkpoints, strict=True)}
    partial = Partial.beside(output, resume=resume, overwrite=overwrite) if output is not None else None
    with _locked_output(output), _resumable(partial, "the same command with --resume"):
        result = evaluate(models, cfg, split, baselines=baselines or DEFAULT_BASELINES,
                          options=MetricOptions(y_channel=y_channel, crop_border=crop_border),
                          progress=_progress(f"scoring {split}", "batch"), gallery=False, partial=partial)
        _report(result, output, overwrite)


@app.command()
@user_errors
def predict(
    inputs: Annotated[list[Path], typer.Argument(help="Image files and/or folders to restore.")],
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", "-c", help="A trained network: a .keras checkpoint, or an export of one: .onnx, OpenVINO "
                                   ".xml (with its .bin), .tflite or a SavedModel folder. Without it, the built-in "
                                   "restorer runs: it estimates each photo's blur kernel, deconvolves it, and "
                                   "leaves a photo that looks sharp, or whose blur no single kernel explains, "
                                   "exactly as it was (saying why per image). The previous built-in network is "
                                   "`--checkpoint builtin-network`.")
    ] = None,
    engine: Annotated[str, typer.Option(help="Runtime: auto, keras, onnx, openvino, litert or saved_model. auto runs "
                                        "an export on its own runtime, and a .keras checkpoint on the runtime "
                                        "`deblur benchmark-formats` measured fastest for it on this machine: Keras "
                                        "when nothing was measured. Another engine with a .keras checkpoint "
                                        "exports it once into ~/.cache/deblur/exports/ and runs that.")] = "auto",
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the restored PNGs.")] = Path("restored"),
    overwrite: Annotated[bool, typer.Option(help="Replace restored images that already exist.")] = False,
    skip_existing: Annotated[bool, typer.Option(help="Keep restored images that already exist and restore only "
                                                "the others (to continue an interrupted job).")] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Also look in sub-folders.")] = False,
    tile: Annotated[int, typer.Option(help="Memory bound: restore in tiles of at most this many pixels squared, "
                                      "each image cut into as few as fit; 0 restores each image whole.")] = 512,
    overlap: Annotated[int, typer.Option(help="Pixels by which neighbouring tiles overlap; blended so no seams "
                                         "show.")] = 32,
    side_by_side: Annotated[bool, typer.Option("--side-by-side", help="Also write <name>_side_by_side.png: "
                                               "input and result next to each other.")] = False,
    max_megapixels: Annotated[float | None, typer.Option(help="Refuse larger images before decoding them (a guard "
                                                         "against decompression bombs) [default: "
                                                         "$DEBLUR_MAX_MEGAPIXELS, or 100].")] = None,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "same",
    strip_metadata: Annotated[bool, typer.Option("--strip-metadata", help=STRIP_HELP)] = False,
    kernel: Annotated[Path | None, typer.Option("--kernel", help="A picture of the blur kernel (any image format "
                                                "and bit depth; normalised to sum 1): every input is deconvolved "
                                                "with it instead of an estimated one, for microscopy, astronomy or "
                                                "lab setups that know their blur. Built-in restorer only.")] = None,
    save_kernel: Annotated[bool, typer.Option("--save-kernel", help="Also write <name>_kernel.png beside each "
                                              "output: the kernel used, peak white (a single point where a photo "
                                              "was left as it is). Built-in restorer only.")] = False,
    trust_model: Annotated[bool, typer.Option("--trust-model", help="Run an exported model even if it holds "
                                              "operations outside deblur's allow-list (file I/O, loops, "
                                              "Python calls): only for a file whose origin you trust.")] = False,
    refiner: Annotated[bool, typer.Option(help="Built-in restorer: after the deconvolution, run the refiner "
                                          "network that removes its ringing and noise (--engine picks its "
                                          "runtime). --no-refiner shows what the deconvolution alone "
                                          "gives.")] = True,
) -> None:
    """Restore images at full resolution: same size and channels as each input, written as JPEG for a
    JPEG (quality 95) and PNG for the rest, keeping the input's EXIF (dates, GPS) and ICC profile."""
    from deblur.restore.engines import ENGINES, needs_keras

    if engine != "auto":
        ENGINES.get(engine, "--engine")
    if checkpoint is not None and str(checkpoint) == BUILTIN_NETWORK:
        from deblur.pretrained import default_checkpoint

        checkpoint = default_checkpoint()
    builtin = checkpoint is None
    if not builtin and (kernel is not None or save_kernel):
        raise DeblurError(f"{'--kernel' if kernel is not None else '--save-kernel'} works with the built-in restorer, "
                          "which deconvolves; a --checkpoint network has no kernel. Drop one of the two")
    if not builtin and not refiner:
        raise DeblurError("--no-refiner leaves the built-in restorer's refiner out; a --checkpoint network has none. "
                          "Drop one of the two")
    from deblur.pretrained import refiner_checkpoint

    shipped = refiner_checkpoint() if builtin and refiner else None
    if builtin and engine != "auto" and shipped is None:
        raise DeblurError("--engine chooses the runtime of a network: the built-in restorer runs one only as its "
                          "refiner, and " + ("--no-refiner leaves it out" if not refiner else
                                             "this install ships none") + "; the rest runs on NumPy")
    network = shipped if builtin else checkpoint
    if network is not None and needs_keras(network, engine):  # an export runs on its runtime alone: no TensorFlow
        _quiet_backend()
    from deblur.api import Restorer, builtin_restorer, open_engine
    from deblur.imaging.imageio import check_megapixels
    from deblur.imaging.imageio import max_megapixels as env_megapixels
    from deblur.imaging.tiling import check_tile
    from deblur.restore.predict import builtin_restore, plan_outputs, predict_files

    # the option wins when given; otherwise the environment's limit (a default of 100 here would hide it)
    limit = env_megapixels() if max_megapixels is None else check_megapixels(max_megapixels, "--max-megapixels")
    check_tile(tile, overlap)  # before any work; again below with the model's size multiple
    given = None
    if kernel is not None:
        from deblur.restore.kernels import load

        given = load(kernel)  # every check before any work
    from deblur.imaging.outputs import output_folder

    with output_folder(output):  # created, locked against a second job, a killed job's temporaries removed
        plan = plan_outputs(inputs, output, recursive=recursive, overwrite=overwrite, side_by_side=side_by_side,
                            skip_existing=skip_existing, fmt=fmt, strip_metadata=strip_metadata,
                            save_kernel=save_kernel)
        if builtin:
            blind = builtin_restorer(given, refiner, engine, tile, overlap)
            steps = "deconvolution with the given kernel" if given is not None else "blur estimation and deconvolution"
            steps += ", then the refiner network" if blind.refiner is not None else ""
            typer.echo(f"restorer: built-in ({steps}; pass --checkpoint to run a trained network)", err=True)
            summary = predict_files(None, plan, progress=_progress("restoring", "img"), side_by_side=side_by_side,
                                    max_megapixels=limit, restore=builtin_restore(blind), save_kernel=save_kernel)
        else:
            assert checkpoint is not None
            notes: list[str] = []
            # Restorer checks the tile for the model
            restorer = Restorer(open_engine(checkpoint, engine, notes, trust=trust_model), tile, overlap)
            for note in notes:  # said once, before the work (--engine auto ran Keras: nothing measured yet)
                typer.echo(f"note: {note}", err=True)
            summary = predict_files(restorer.engine, plan, progress=_progress("restoring", "img"), tile=tile,
                                    overlap=overlap, side_by_side=side_by_side, max_megapixels=limit)
    _summarise(summary, "restored", output)


BUILTIN_NETWORK = "builtin-network"  # --checkpoint name of the network deblur shipped before the blind restorer


def _summarise(summary: Any, verb: str, output: Path) -> None:
    """Notes, skipped inputs and the count, as predict and blur print them; exit 1 if any input failed."""
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)
    for path, reason in summary.failed:
        typer.echo(f"skipped {path}: {reason}", err=True)
    typer.echo(summary.line(verb, output))
    if summary.failed:
        raise typer.Exit(1)


@app.command()
@user_errors
def blur(
    inputs: Annotated[list[Path] | None, typer.Argument(help="Sharp image files and/or folders.")] = None,
    sample: Annotated[list[str] | None, typer.Option(help="A built-in sample photo to blur, e.g. chelsea "
                                                     "(repeatable; see `deblur models --samples`).")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder for the blurred images.")] = Path(
        "outputs/blurred"),
    kind: Annotated[str, typer.Option(help="gaussian, motion, defocus or shake (camera shake).")] = "gaussian",
    sigma: Annotated[float | None, typer.Option(help="Gaussian sigma in pixels [default: 2].")] = None,
    length: Annotated[float | None, typer.Option(help="Motion length in pixels [default: 9].")] = None,
    angle: Annotated[float | None, typer.Option(help="Motion angle in degrees [default: 0].")] = None,
    radius: Annotated[float | None, typer.Option(help="Defocus disk radius in pixels [default: 3].")] = None,
    size: Annotated[float | None, typer.Option(help="Camera-shake kernel size in pixels, its larger side "
                                               "[default: 21].")] = None,
    noise: Annotated[float, typer.Option(help="Read noise: Gaussian noise std on [0, 1] intensities.")] = 0.0,
    shot: Annotated[float, typer.Option(help="Shot noise: variance grows by this times the intensity "
                                        "(Poisson-Gaussian sensor noise).")] = 0.0,
    jpeg: Annotated[float | None, typer.Option(help="Re-compress as a JPEG of this quality (1-100), as cameras "
                                               "save photos.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the noise and the camera-shake path.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace files that already exist.")] = False,
    skip_existing: Annotated[bool, typer.Option(help="Keep files that already exist and blur only the others.")
                             ] = False,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "same",
    strip_metadata: Annotated[bool, typer.Option("--strip-metadata", help=STRIP_HELP)] = False,
) -> None:
    """Make blurred test images with exactly the degradations training uses (a JPEG input gives a
    JPEG, with its metadata, as `deblur predict` writes)."""
    _quiet_backend()
    from deblur.data.blur import blur_files, blur_spec

    spec = blur_spec(kind, noise=noise, shot=shot, jpeg=jpeg, sigma=sigma, length=length, angle=angle,
                     radius=radius, size=size)
    summary = blur_files(inputs or [], sample or [], output, spec, seed=seed, overwrite=overwrite,
                         skip_existing=skip_existing, progress=_progress("blurring", "img"), fmt=fmt,
                         strip_metadata=strip_metadata)
    for path in summary.written:
        typer.echo(f"wrote {path}")
    _summarise(summary, "blurred", output)


@app.command()
@user_errors
def pack(
    data_dir: Annotated[Path, typer.Argument(help="A dataset folder: any folder of photos, pairs (blur/ + sharp/) "
                                             "or the Kaggle blur layout.")],
    out: Annotated[Path, typer.Argument(help="New folder for the shards and pack.json; set data.path to it.")],
    source: Annotated[str | None, typer.Option(help="How to read DATA_DIR: folder, pairs or kaggle_blur "
                                               "(default: told by its layout).")] = None,
    shard_mb: Annotated[float, typer.Option(help="Shard size in MB (images are never split across shards).")
                        ] = 512,
    overwrite: Annotated[bool, typer.Option(help="Replace a pack already in OUT.")] = False,
) -> None:
    """Decode a dataset once into checksummed shards, so training reads it without decoding images.

    The images, names and splits are those the source reads from DATA_DIR; train with
    data.path: OUT and the same data.source.
    """
    from deblur.data.packed import pack as pack_data
    from deblur.data.sources.layout import detect

    done = pack_data(data_dir, out, source or detect(data_dir), shard_mb=shard_mb, overwrite=overwrite,
                     progress=_progress("packing", "item"))
    typer.echo(f"packed {done['items']} {done['source']} item(s) ({done['images']} images, "
               f"{done['bytes'] / 2**20:,.1f} MiB in {done['shards']} shard(s)) into {out}; "
               f"train with data.source: {done['source']}, data.path: {out}")


@app.command()
@user_errors
def models(
    samples: Annotated[bool, typer.Option("--samples", help="List the built-in sample photos instead.")] = False,
) -> None:
    """List the registered models (with parameter counts) and data sources."""
    if samples:
        from deblur.data.sources.samples import PHOTOS

        typer.echo("built-in sample photos (from scikit-image): " + ", ".join(sorted(PHOTOS)))
        return
    _quiet_backend()
    import numpy as np

    from deblur.data.sources import SOURCES
    from deblur.models import MODELS, fixed_input_size

    typer.echo("models (3-channel images, default settings; CPU/GPU time per megapixel measured now, "
               "median of 3 after a warm-up, 256x256 or the model's fixed size):")
    for name in MODELS:
        builder = MODELS.get(name)
        model = builder(channels=3)
        size = fixed_input_size(model) or (256, 256)
        x = np.random.default_rng(0).random((1, *size, 3)).astype("float32")
        model(x, training=False)
        times = []
        for _ in range(3):
            start = time.perf_counter()
            model(x, training=False)
            times.append(time.perf_counter() - start)
        ms_per_mp = 1000 * sorted(times)[1] / (size[0] * size[1] / 1e6)
        doc = (sys.modules[builder.__module__].__doc__ or "").strip().splitlines()[0]
        typer.echo(f"  {name:<10}{model.count_params():>12,} params {ms_per_mp:>8.0f} ms/MP  {doc}")
    typer.echo("data sources:")
    for name in SOURCES:
        typer.echo(f"  {name:<14}{SOURCES.get(name).summary}")


ExportCheckpoint = Annotated[Path | None, typer.Argument(
    help="A .keras checkpoint (e.g. runs/NAME/best.keras); omit it for the built-in model.", show_default=False)]


@app.command("export")
@user_errors
def export_command(
    checkpoint: ExportCheckpoint = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="saved_model (a folder), onnx, openvino (.xml + .bin) "
                                     "or litert (.tflite).", show_default=False)] = ...,  # type: ignore[assignment]
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Where to write it (default: beside the "
                                                "checkpoint, e.g. best.onnx; for the built-in model "
                                                "./deblur_default.onnx).", show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an export that already exists.")] = False,
) -> None:
    """Export a model to SavedModel, ONNX, OpenVINO or LiteRT, checked against Keras.

    Converts with Keras's model.export, then runs the export on a fixed blurred photo and keeps it only
    if it matches Keras within one 8-bit level; `deblur predict` runs the file directly. Writes
    <output>.deblur.json beside it (a SavedModel: deblur.json inside) with what deblur needs to run it."""
    from deblur.restore.export import (
        CHECK_LEVELS,
        FORMATS,
        ExportCheckError,
        default_output,
        export_model,
        require_runtime,
    )

    require_runtime(FORMATS.get(fmt, "--format"))  # before TensorFlow starts
    _quiet_backend()
    out = output if output is not None else default_output(checkpoint, fmt)
    if checkpoint is None:
        typer.echo("model: the built-in default model (pass a CHECKPOINT to export your own)", err=True)
    try:
        result = export_model(checkpoint, fmt, out, overwrite=overwrite)
    except ExportCheckError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    if result.fixed_size:
        shape = f"fixed at {result.fixed_size[1]}x{result.fixed_size[0]} (the model's own size; images are resized)"
    else:
        shape = "dynamic height and width"
    typer.echo(f"check: largest difference from Keras on the check photo: {result.max_diff_levels} 8-bit level(s) "
               f"after rounding (allowed: {CHECK_LEVELS}), {result.raw_diff_levels:.2g} before")
    typer.echo(f"input: {shape}")
    typer.echo(f"wrote {result.path} ({fmt}, {result.size_bytes / 2**20:.2f} MB, exported in "
               f"{result.export_seconds:.1f} s) and {result.sidecar}")


@app.command("benchmark-formats")
@user_errors
def benchmark_formats(
    checkpoint: ExportCheckpoint = None,
    formats: Annotated[list[str] | None, typer.Option("--formats", help="Formats to measure, repeatable or "
                                                      "comma-separated (default: every one whose runtime is "
                                                      "installed); Keras itself is always measured.",
                                                      show_default=False)] = None,
    size: Annotated[int, typer.Option(help="Side of the square image timed in one call (ms/MP column).")] = 1024,
    big: Annotated[float, typer.Option(help="Megapixels of the 3:2 photo restored in 512-pixel tiles as deblur "
                                       "predict does (tiled ms/MP column).")] = 24.0,
    runs: Annotated[int, typer.Option(help="Timed runs on the square image (the median is shown).")] = 3,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the table and settings here as JSON.",
                                                   show_default=False)] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace the --json file if it exists.")] = False,
) -> None:
    """Measure every installed export format on this machine; the fastest becomes --engine auto.

    Exports to each format and measures file size, export time, speed (one call and tiled), peak memory
    (each in its own process), difference from Keras and PSNR on a fixed blurred photo. The fastest on
    the tiled photo becomes what `deblur predict --engine auto` runs for this checkpoint here (only
    when every installed format was measured: --formats with a subset just shows the table)."""
    from deblur.evaluation.format_bench import report, run_benchmark, store_fastest, table

    if json_path is not None:
        if os.path.lexists(json_path) and not overwrite:
            raise DeblurError(f"--json: {json_path} already exists; pass --overwrite to replace it")
        if os.path.lexists(json_path) and not _is_benchmark_report(json_path):
            raise DeblurError(f"--json: {json_path} is not a report deblur benchmark-formats wrote; --overwrite "
                              "replaces only deblur's own: move it aside or choose another --json")
        if not json_path.parent.is_dir():
            raise DeblurError(f"--json: the folder {json_path.parent} does not exist")
    names = [n.strip() for item in formats or [] for n in item.split(",") if n.strip()] or None
    _quiet_backend()
    rows, settings = run_benchmark(checkpoint, names, size, big, runs, log=lambda s: typer.echo(s, err=True))
    from deblur.restore.export import checkpoint_path

    best, left_out = store_fastest(checkpoint_path(checkpoint), rows)
    typer.echo(f"{settings['checkpoint']}: ms/MP at {size}x{size} in one call (median of {runs}); tiled ms/MP on a "
               f"{big:g} MP photo in {settings['tile']}-pixel tiles; max diff from Keras on the check photo, in 8-bit "
               "levels before rounding")
    typer.echo(table(rows))
    if best is None:
        typer.echo("no engine ran; --engine auto is unchanged")
    elif left_out:
        typer.echo(f"fastest of these: {best.format}; --engine auto is unchanged: only a run over every installed "
                   f"format sets it ({', '.join(left_out)} not measured)")
    else:
        typer.echo(f"--engine auto now runs {best.format} for this checkpoint on this machine")
    if json_path is not None:
        import json

        from deblur.imaging.imageio import atomic_write_text

        chosen = best.format if best and not left_out else None
        atomic_write_text(json_path, json.dumps(report(rows, settings, chosen), indent=2) + "\n")
        typer.echo(f"wrote {json_path}")
    if any(r.error for r in rows):
        raise typer.Exit(1)


def _is_benchmark_report(path: Path) -> bool:
    """Whether `path` is a regular file holding the JSON `deblur benchmark-formats --json` writes."""
    from deblur.core.safefile import UnsafeFile, read_json

    if path.is_symlink():
        return False
    try:
        data = read_json(path, what="benchmark report")
    except (OSError, UnsafeFile):
        return False
    return isinstance(data, dict) and {"rows", "engine_auto", "versions"} <= data.keys()


def main() -> None:
    # File names that are not UTF-8 reach Python as lone surrogates; a strict stdout (any UTF-8 locale but
    # C.UTF-8) failed on them after the work was done. stderr already escapes them; so does stdout now.
    with contextlib.suppress(AttributeError, ValueError):
        if sys.stdout.errors == "strict":
            sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    app()


if __name__ == "__main__":
    main()
