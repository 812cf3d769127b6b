"""The one exception type for mistakes a user can fix.

The CLI prints a `DeblurError` as a single line and exits non-zero; anything else that escapes is a
bug in deblur and keeps its traceback, so the two are never confused.
Messages name arguments through `arg` (and say how to continue through `again`): as Python arguments
(`split`) when the API is called, as flags (`--split`) while the command line runs a command.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar


class DeblurError(Exception):
    """A problem with the user's input (config, data, paths, checkpoints), described in one line."""


class ConfigError(DeblurError):
    """A config key, value or type that cannot be used; the message names the key."""


class DataError(DeblurError):
    """Dataset files that are missing, malformed or inconsistent; the message names the file."""


class Stopped(KeyboardInterrupt):
    """The user stopped a workflow (Ctrl-C); the message says what was kept and how to continue.

    A KeyboardInterrupt still, so that code catching Exception never swallows it."""


class Spelling:
    """How a message names the arguments of deblur's functions: as the Python API spells them.

    Library code writes `arg("split")` where it names an argument, and `again(...)` where it says how
    to continue interrupted work; the command line spells both its own way (its flags) while it runs
    a command (`spelled`), so one check serves both.
    """

    def arg(self, name: str) -> str:
        """`name` is an argument of the function called (`split`), or one with the value that matters
        (`resume=True`, `refiner=False`)."""
        return name

    def again(self, workflow: str, target: object = None) -> str:
        """How to continue an interrupted `deblur.<workflow>`: on `target` (a run folder to train, a
        checkpoint to evaluate), or with the same arguments when None."""
        if target is None:
            return "the same call with resume=True"
        key = "run_dir" if workflow == "train" else "checkpoint"
        return f"deblur.{workflow}({key}={str(target)!r}, resume=True)"


_PYTHON = Spelling()
_SPELLING: ContextVar[Spelling | None] = ContextVar("deblur_spelling", default=None)


def arg(name: str) -> str:
    """Argument `name` as the caller knows it: `split` from Python, `--split` from the command line."""
    return (_SPELLING.get() or _PYTHON).arg(name)


def again(workflow: str, target: object = None) -> str:
    """How to continue an interrupted workflow, as the caller would (see `Spelling.again`)."""
    return (_SPELLING.get() or _PYTHON).again(workflow, target)


@contextlib.contextmanager
def spelled(spelling: Spelling) -> Iterator[None]:
    """Messages raised inside name arguments as `spelling` does."""
    token = _SPELLING.set(spelling)
    try:
        yield
    finally:
        _SPELLING.reset(token)
