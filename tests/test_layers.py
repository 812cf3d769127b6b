"""The package's import layers, read from the source (scripts/import_layers.py): no cycles, no upward imports.

One rule per folder of src/deblur/: it may import only the folders on the floors below its own
(`LAYERS` in scripts/import_layers.py, lowest first; folders on one floor never import each other):

    core                   errors, atomic files and locks, safe small-file reads, registries, schema, limits
    pretrained             the built-in model file
    imaging                image I/O and metadata, tiling, output planning, alignment, the metric card
    models | data          model builders and losses | sources, stores, degradations, input pipelines
    config                 the YAML loader, validated against the registries of data/ and models/
    restore                engines, the checkpoint loader, predict, export, blind restoration
    training | evaluation  the workflows
    api                    the facade: deblur.Restorer and the workflows (deblur.train, evaluate, compare,
                           predict, export: what each command does)
    cli, then __main__     the typer app; python -m deblur

A function-level import counts like any other (it only delays the dependency); `if TYPE_CHECKING:`
imports do not (they never run). `import deblur` itself imports nothing of the package (its names
are imported lazily, by name), so it stays cheap.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import load_script

layers = load_script("import_layers")
FLOOR = layers.floors()


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return layers.import_graph()


def test_no_import_cycles(graph: dict[str, set[str]]) -> None:
    found = layers.cycles(graph)
    lines = [f"{m} -> {', '.join(sorted(graph[m] & set(c)))}" for c in found for m in c]
    assert not found, f"{len(found)} import cycle(s), each module with its imports inside it:\n" + "\n".join(lines)


@pytest.mark.parametrize("folder", [name for floor in layers.LAYERS for name in floor])
def test_a_folder_imports_only_the_floors_below_it(graph: dict[str, set[str]], folder: str) -> None:
    members = [m for m in graph if layers.folder_of(m) == folder]
    assert members, f"no modules in {folder}: the layer table names a folder that is gone"
    below = sorted((f for f, level in FLOOR.items() if level < FLOOR[folder]), key=FLOOR.get)
    broken = [f"{m} -> {t} ({layers.folder_of(t)}, floor {FLOOR.get(layers.folder_of(t), '?')})"
              for m, t in layers.upward_imports(graph) if m in members]
    assert not broken, (f"{folder} (floor {FLOOR[folder]}) may import only {', '.join(below) or 'nothing of deblur'}:"
                        "\n" + "\n".join(broken))


def test_every_module_is_on_a_floor(graph: dict[str, set[str]]) -> None:
    lost = sorted(m for m in graph if m != "deblur" and layers.folder_of(m) not in FLOOR)
    assert not lost, "modules in no folder of the layer table (add the folder to LAYERS):\n" + "\n".join(lost)


def test_import_deblur_imports_nothing_of_the_package(graph: dict[str, set[str]]) -> None:
    assert graph["deblur"] == set(), "deblur/__init__.py must import its names lazily (its _LAZY table)"


def test_the_script_prints_the_floors(capsys) -> None:
    assert layers.main([]) == 0
    rows = {line.split()[1]: int(line.split()[0]) for line in capsys.readouterr().out.splitlines()
            if line.strip()[:1].isdigit() and len(line.split()) > 2 and line.split()[1] in FLOOR}
    assert rows == FLOOR


def test_the_graph_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The checker itself: function-level and relative imports count, TYPE_CHECKING ones do not,
    a cycle through a package's __init__ is found, and an import into a higher floor is upward."""
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
    assert layers.upward_imports(graph, [["sub"], ["top"], ["typed"]]) == [("pkg.sub.leaf", "pkg.top")]
    assert layers.upward_imports(graph, [["sub"], ["top", "typed"]]) == [
        ("pkg.sub.leaf", "pkg.top"), ("pkg.typed", "pkg.top")]  # one floor: siblings never import each other
