"""The networks that ship inside the package.

- `refiner.keras`: the built-in restorer's refiner (deblur.models.refiner), run by `deblur predict`
  after the deconvolution; reproduced by `deblur train -c configs/refiner.yaml`, its card is
  docs/refiner.md. An install without it restores without the refiner.
- `default.keras`: the end-to-end network deblur shipped as its built-in model before the blind
  restorer (`--checkpoint builtin-network`); reproduced by `deblur train -c configs/default_model.yaml`,
  its card is docs/builtin_network.md.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from deblur.core.errors import DeblurError

DEFAULT_NAME = "default.keras"
REFINER_NAME = "refiner.keras"


# names that stand for a shipped network wherever a checkpoint path is asked for (predict, export,
# benchmark-formats, Restorer.load)
SHIPPED = {"builtin-network": DEFAULT_NAME, "builtin-refiner": REFINER_NAME}


def shipped(name: str | Path) -> Path | None:
    """The file a shipped network's name stands for (None if `name` is no such name)."""
    if str(name) not in SHIPPED:
        return None
    if str(name) == "builtin-network":
        return default_checkpoint()
    path = refiner_checkpoint()
    if path is None:
        raise DeblurError("this install has no built-in refiner (src/deblur/pretrained/refiner.keras is missing)")
    return path


def refiner_checkpoint() -> Path | None:
    """Path of the shipped refiner, or None if this install has none."""
    path = Path(str(resources.files(__package__) / REFINER_NAME))
    return path if path.is_file() else None


def default_checkpoint() -> Path:
    """Path of the shipped model, or a clear error if this install lacks it."""
    path = Path(str(resources.files(__package__) / DEFAULT_NAME))
    if not path.is_file():
        raise DeblurError(f"this install has no built-in model ({path} is missing); pass --checkpoint "
                          "runs/NAME/best.keras, or train one with: deblur train -c configs/quickstart.yaml")
    return path
