"""The pretrained general-purpose model that ships inside the package.

`deblur predict` uses it when no --checkpoint is given, so a user can restore a photo right after
installing. It is reproduced by `deblur train -c configs/default_model.yaml`; its training data,
budget, hardware and scores are in the README's model card and in BENCHMARKS.md.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from deblur.core.errors import DeblurError

DEFAULT_NAME = "default.keras"


def default_checkpoint() -> Path:
    """Path of the shipped model, or a clear error if this install lacks it."""
    path = Path(str(resources.files(__package__) / DEFAULT_NAME))
    if not path.is_file():
        raise DeblurError(f"this install has no built-in model ({path} is missing); pass --checkpoint "
                          "runs/NAME/best.keras, or train one with: deblur train -c configs/quickstart.yaml")
    return path
