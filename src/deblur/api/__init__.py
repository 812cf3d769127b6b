"""The facade: `Restorer` (restore arrays as `deblur predict` restores files; `deblur.api.restorer`)
and the workflow functions, one per command (`deblur.api.workflows`: `deblur.train`, `evaluate`,
`compare`, `predict`, `export`, `benchmark_formats`).

Names are imported on first use, so `from deblur.api import Restorer` does not start the workflows.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers only: at run time each name is imported on first use (__getattr__)
    from deblur.api.restorer import (
        BUILTIN_NETWORK,
        Restorer,
        builtin_restorer,
        cached_export,
        estimate_kernel,
        kernel_array,
        open_engine,
    )

__all__ = ["BUILTIN_NETWORK", "Restorer", "builtin_restorer", "cached_export", "estimate_kernel", "kernel_array",
           "open_engine"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from deblur.api import restorer

        return getattr(restorer, name)
    raise AttributeError(f"module 'deblur.api' has no attribute {name!r}")

