"""The `deblur` command: train, eval, compare, predict, blur, pack, models, export, benchmark-formats.

Each command parses its options, calls the library (`deblur.api.workflows`: `deblur.train`, `evaluate`,
`compare`, `predict`, `export`) and prints what it returns; what a command does lives there. A mistake
the user can fix (bad config, missing files, existing outputs) is printed as one line starting with
`error:` and exits with status 2, naming the flags (the library names its arguments; `app.Flags`
spells them as flags). What the machine could not do (a full or read-only disk, memory) and bugs are
one `error:` line too, with exit status 1 (`deblur.core.failures`); never a traceback, unless
DEBLUR_DEBUG=1 asks for it. TensorFlow is imported inside the commands so that `deblur --help` is instant.
"""

from deblur.cli import train, predict, export  # noqa: F401, I001 - registers the commands in the order --help lists
from deblur.cli.app import app, main

__all__ = ["app", "main"]
