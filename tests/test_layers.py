"""The package's import layers, read from the source (scripts/import_layers.py): no cycles, no upward imports.

The layers, bottom up: leaf helpers (errors, registry, schema, imageio, limits...); data and models,
which declare their options in registries; config, which reads those registries to validate a
config; train, evaluate and predict; the cli. A function-level import counts like any other (it
only delays the dependency); `if TYPE_CHECKING:` imports do not (they never run).
"""

from __future__ import annotations

from collections import deque
from pathlib import Path

import pytest

from conftest import load_script

layers = load_script("import_layers")

APPS = ["deblur.training.train", "deblur.evaluation.evaluate", "deblur.restore.predict", "deblur.cli"]
# The meeting points and helpers every layer may use: they stay below all of them.
LEAVES = ["deblur.core", "deblur.models.losses", "deblur.imaging.metrics", "deblur.imaging.imageio"]

# What each layer must never import, directly or through any chain of other deblur modules.
# A key or value names a module or a whole package (every module below it).
MAY_NOT_IMPORT: dict[str, list[str]] = {
    **{leaf: ["deblur.data", "deblur.models", "deblur.config", *APPS] for leaf in LEAVES},
    "deblur.data": ["deblur.config", "deblur.models", *APPS],
    "deblur.models": ["deblur.data", "deblur.config", *APPS],
    "deblur.config": APPS,
}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _path(graph: dict[str, set[str]], start: str, banned: str) -> list[str] | None:
    """The shortest import chain from `start` to a module within `banned`, or None (breadth first)."""
    before: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if _within(node, banned) and node != start:
            chain = [node]
            while before[chain[-1]] is not None:
                chain.append(before[chain[-1]])
            return chain[::-1]
        for child in sorted(graph.get(node, ())):
            if child not in before:
                before[child] = node
                queue.append(child)
    return None


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return layers.import_graph()


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    found = layers.cycles(graph)
    lines = [f"{m} -> {', '.join(sorted(graph[m] & set(c)))}" for c in found for m in c]
    assert not found, f"{len(found)} import cycle(s), each module with its imports inside it:\n" + "\n".join(lines)


@pytest.mark.parametrize("layer", sorted(MAY_NOT_IMPORT))
def test_layer_order(graph: dict[str, set[str]], layer: str) -> None:
    members = [m for m in graph if _within(m, layer)]
    assert members, f"no modules in {layer}: the table names a layer that is gone"
    broken = []
    for module in sorted(members):
        for banned in MAY_NOT_IMPORT[layer]:
            chain = _path(graph, module, banned)
            # Through another module of this layer: that module's own chain is reported instead.
            if chain and not (len(chain) > 2 and _within(chain[1], layer)):
                broken.append(" -> ".join(chain))
    assert not broken, f"{layer} must not import {', '.join(MAY_NOT_IMPORT[layer])}:\n" + "\n".join(broken)


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself: function-level and relative imports count, TYPE_CHECKING ones do not,
    and a cycle through a package's __init__ is found."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from pkg.sub import leaf\n")
    (pkg / "sub" / "leaf.py").write_text("def f():\n    from pkg import top\n")
    (pkg / "top.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import typed\nelse:\n    import os\n"
        "from .sub.leaf import f\n")
    (pkg / "typed.py").write_text("from . import top\n")
    graph = layers.import_graph(pkg)
    assert graph["pkg.top"] == {"pkg.sub", "pkg.sub.leaf"}  # the package's __init__ runs first
    assert graph["pkg.sub.leaf"] == {"pkg.top"}
    assert graph["pkg.typed"] == {"pkg.top"}
    assert layers.cycles(graph) == [["pkg.sub", "pkg.sub.leaf", "pkg.top"]]
    assert _path(graph, "pkg.sub.leaf", "pkg.sub") == ["pkg.sub.leaf", "pkg.top", "pkg.sub"]
