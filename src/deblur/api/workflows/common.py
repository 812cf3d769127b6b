"""What the workflows share: starting the Keras backend, reporting scores, stopping cleanly.

Nothing heavy is imported here at module level: `import deblur.api.workflows` stays as cheap as
`import deblur`, and Keras (TensorFlow) starts only inside a workflow that needs it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deblur.core.errors import DeblurError, Stopped, again, arg

if TYPE_CHECKING:
    from deblur.core.settings import RunConfig
    from deblur.evaluation.evaljob import MetricOptions
    from deblur.evaluation.evaljournal import Partial
    from deblur.evaluation.results import Evaluation

# progress(items, total=None) wraps an iterable to show progress (tqdm does); None shows none
Progress = Callable[..., Iterable[Any]]
# echo(line): where a workflow says what it does; warnings and notes go to the other, `warn`
Say = Callable[[str], object]


def to_stderr(line: str) -> None:
    """The default `warn`: the line on stderr."""
    print(line, file=sys.stderr)


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


def start_backend() -> None:
    """Import Keras and its backend with their native start-up lines hidden (DEBLUR_TF_LOGS=1 shows them).

    TF prints oneDNN/CUDA notices from C++ before its logging is initialised, where neither
    TF_CPP_MIN_LOG_LEVEL nor absl reach them; only the file descriptor can. Python errors still
    propagate normally once it is restored. TensorFlow is imported only when it is the backend.
    """
    import logging

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way
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


@dataclass
class Scores:
    """What an evaluation scored (`evaluation`: its rows and summary) and the reports it wrote."""

    evaluation: Evaluation
    reports: list[Path] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, Any]:
        return self.evaluation.summary

    def table(self) -> str:
        """The table `deblur eval` prints."""
        return self.evaluation.table()

    def failures(self) -> list[str]:
        """One line per model whose output held NaN or inf: it failed, and has no score."""
        return self.evaluation.failures()


def locked_output(output: Path | None) -> contextlib.AbstractContextManager[Any]:
    """The reports folder, created and locked for the whole evaluation: two evaluations writing into
    one folder would mix their reports."""
    if output is None:
        return contextlib.nullcontext()
    from deblur.imaging.outputs import output_folder

    return output_folder(output, arg("output"), "an evaluation")


def check_default_output(folder: Path) -> None:
    """A report folder deblur chose (beside the checkpoint) is never a link: one planted in a run folder
    someone else made would send the reports outside it. A folder the user names as output may be."""
    if folder.is_symlink():
        raise DeblurError(f"{folder}: is a symbolic link; deblur writes reports through a link only to a folder you "
                          f"name with {arg('output')}")


@contextlib.contextmanager
def resumable(partial: Partial | None, how: str) -> Iterator[None]:
    """Ctrl-C while scoring: Stopped, saying that the rows scored so far are kept in the journal and how
    to continue (`how`)."""
    try:
        yield
    except KeyboardInterrupt:
        if partial is None or not partial.path.is_file():
            raise
        raise Stopped(f"the batches scored so far are kept in {partial.path}; continue with: {how}") from None


def scored(evaluation: Evaluation, output: Path | None, overwrite: bool) -> Scores:
    """The evaluation with its reports written into `output` (none when None)."""
    from deblur.evaluation.results import write_reports

    return Scores(evaluation, write_reports(evaluation, output, overwrite=overwrite) if output is not None else [])


def score_checkpoint(checkpoint: Path, cfg: RunConfig, split: str, output: Path, overwrite: bool, *,
                     baselines: str | None = None, options: MetricOptions | None = None, resume: bool = False,
                     progress: Progress | None = None, how: str | None = None) -> Scores:
    """Score `checkpoint` on `split` of `cfg`'s data into `output`; `how` says how to continue after
    Ctrl-C (default: the same call, resuming)."""
    from deblur.evaluation.evaljournal import Partial
    from deblur.evaluation.evaluate import DEFAULT_BASELINES, evaluate
    from deblur.restore.loading import load_model

    model = load_model(checkpoint)
    history = checkpoint.parent / "history.csv"
    partial = Partial.beside(output, resume=resume, overwrite=overwrite)
    with locked_output(output), resumable(partial, how or again("evaluate")):
        result = evaluate(model, cfg, split, baselines=baselines or DEFAULT_BASELINES, options=options,
                          progress=progress, checkpoint=str(checkpoint),
                          history=history if history.is_file() else None, partial=partial)
        return scored(result, output, overwrite)


def as_path(name: str, value: object) -> Path:
    """A path argument as a Path, or a DeblurError naming the argument."""
    if not isinstance(value, str | os.PathLike) or isinstance(value, bytes):
        raise DeblurError(f"{arg(name)}: expected a file path (str or pathlib.Path), got {type(value).__name__}")
    return Path(value)


def optional_path(name: str, value: object) -> Path | None:
    return None if value is None else as_path(name, value)
