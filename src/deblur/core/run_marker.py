"""The file that marks a folder as made by `deblur train`, and the checkpoint a run folder stands for.

A leaf module: `deblur.training.rundir` writes the marker (and re-exports these names), and the folder data
source skips run folders by it, without the data layer importing training/ (tests/test_layers.py).
"""

from __future__ import annotations

# Written into a run folder when deblur creates it: the one proof that --overwrite may empty it.
MARKER = ".deblur-run"
MARKER_LINE = "deblur-run-folder 1"
MARKER_TEXT = (f"{MARKER_LINE}\nThis folder was made by `deblur train`; `deblur train --overwrite` deletes everything "
               "in it.\n")

# The checkpoint a run folder stands for: `deblur eval RUN`, `compare RUN ...` and the loaders' hints
# name it; `deblur.training.rundir.run_checkpoint` resolves a folder to it.
BEST = "best.keras"
LAST = "last.keras"
