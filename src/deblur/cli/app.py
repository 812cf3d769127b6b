"""The typer app and what every command shares: errors as one line, flags in messages, progress bars."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from typer.exceptions import TyperException

from deblur.core.errors import DeblurError, Spelling, Stopped, spelled

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the way

app = typer.Typer(help="Train, evaluate and run image-deblurring networks. Every score is shown beside the blurred "
                  "input's own, so you see the gain, not just a number.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
F = TypeVar("F", bound=Callable[..., Any])
SetOption = Annotated[list[str] | None, typer.Option(
    "--set", "-s", metavar="KEY=VALUE", help="Override a config key, e.g. --set train.epochs=3 (repeatable).")]


class Flags(Spelling):
    """The library's messages as a command-line user reads them: arguments as flags (`names`: a command's own)."""

    def __init__(self, **names: str) -> None:
        self.names = {"fmt": "--format", "json_path": "--json", "overrides": "--set", "refiner=False": "--no-refiner",
                      **names}

    def arg(self, name: str) -> str:
        return self.names.get(name) or "--" + name.removesuffix("=True").replace("_", "-")

    def again(self, workflow: str, target: object = None) -> str:
        if target is None:
            return "the same command with --resume"
        return f"deblur train --run-dir {target} --resume" if workflow == "train" else f"deblur eval {target} --resume"


def user_errors(fn: F, names: dict[str, str] | None = None) -> F:
    """Turn any failure into one `error:` line on stderr: exit status 2 for a DeblurError (the user's
    to fix), 1 for anything else (file system, memory, a bug), 130 for Ctrl-C. Messages name the
    arguments as flags (`Flags`; `names` spells this command's own)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with spelled(Flags(**(names or {}))):
                return fn(*args, **kwargs)
        except DeblurError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, TyperException):
            raise  # the command's own exit status, and typer's usage errors
        except Stopped as exc:
            typer.echo(f"\ninterrupted: {exc}", err=True)
            raise typer.Exit(130) from None
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


def command(name: str | None = None, **names: str) -> Callable[[F], F]:
    """A command of the app whose failures are one line (`user_errors`)."""
    return lambda fn: app.command(name)(user_errors(fn, names))


def progress(desc: str, unit: str) -> Callable[..., Iterable[Any]]:
    from tqdm import tqdm

    def wrap(items: Iterable[Any], total: int | None = None) -> Iterable[Any]:
        if total is None and hasattr(items, "__len__"):
            total = len(items)  # type: ignore[arg-type]
        return tqdm(items, desc=desc, unit=unit, total=total, file=sys.stderr, dynamic_ncols=True, disable=None)

    return wrap


def warn(line: str) -> None:
    typer.echo(line, err=True)


def report(scores: Any) -> None:
    """Print an evaluation's table and reports; exit 1 if a model failed (NaN or inf output: null scores)."""
    if scores is not None:
        typer.echo(scores.table() + ("\nreports: " + ", ".join(map(str, scores.reports)) if scores.reports else ""))
        for line in scores.failures():
            typer.echo(f"failed: {line}", err=True)
        if scores.failures():
            raise typer.Exit(1)


def summarise(summary: Any, verb: str, output: Path) -> None:
    """Notes, skipped inputs and the count, as predict and blur print them; exit 1 if any input failed."""
    for note in summary.notes:
        typer.echo(f"note: {note}", err=True)
    for path, reason in summary.failed:
        typer.echo(f"skipped {path}: {reason}", err=True)
    typer.echo(summary.line(verb, output))
    if summary.failed:
        raise typer.Exit(1)


def main() -> None:
    # File names that are not UTF-8 reach Python as lone surrogates; a strict stdout (any UTF-8 locale but
    # C.UTF-8) failed on them after the work was done. stderr already escapes them; so does stdout now.
    with contextlib.suppress(AttributeError, ValueError):
        if sys.stdout.errors == "strict":
            sys.stdout.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    app()
