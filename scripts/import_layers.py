#!/usr/bin/env python3
"""The import graph of the deblur package, read from the source with `ast`: its floors and its cycles.

    python scripts/import_layers.py            # each folder's floor and the folders it imports, then
                                               # any upward import and any cycle
    python scripts/import_layers.py --edges    # also every edge inside each cycle

Every `import` counts, those inside functions too: a function-level import delays a dependency, it
does not remove it. Imports under `if TYPE_CHECKING:` are left out (they never run). Importing
`a.b.c` also runs the `__init__` of `a.b` and `a`, so those packages count as targets, except the
importer's own packages (already being imported when it runs). `LAYERS` is the layer order, lowest
floor first: a folder (or top-level module) may import only the folders on the floors below its own;
folders on one floor never import each other. tests/test_layers.py uses this module to keep the
package free of cycles and its floors in order. Exit status 1 when there is a cycle, an upward import
or a module on no floor.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "deblur"

Graph = dict[str, set[str]]

# The floors of src/deblur/, lowest first; each entry names a folder or a top-level module. A folder
# may import the folders on the floors below its own, never one on its floor or above.
LAYERS: list[list[str]] = [
    ["core"],                     # errors, atomic files and locks, safe small-file reads, registries, schema, limits
    ["pretrained"],               # the built-in model file
    ["imaging"],                  # image I/O and metadata, tiling, output planning, alignment, the metric card
    ["models", "data"],           # model builders and losses | sources, stores, degradations, input pipelines
    ["config"],                   # the YAML loader, validated against the registries of data/ and models/
    ["restore"],                  # engines, the checkpoint loader, predict, export, blind restoration
    ["training", "evaluation"],   # the workflows
    ["api"],                      # the facade: deblur.Restorer and the workflows (deblur.train, evaluate, ...)
    ["cli"],                      # the typer app
    ["__main__"],                 # python -m deblur
]


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """`deblur.data.base` -> its file, for every module and package (`__init__.py`) under `package`."""
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except in the body of `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imports_of(name: str, path: Path, modules: Iterable[str]) -> set[str]:
    """The package's modules that module `name` (file `path`) imports."""
    known = set(modules)
    is_package = path.name == "__init__.py"
    # The package this module is in (or is): where relative imports start.
    here = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = here.split(".")[: len(here.split(".")) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        # `from a.b import c`: the module a.b.c when there is one, else a name defined in a.b.
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            targets.add(sub if sub in known else base)
    own = set(_ancestors(name)) | ({name} if is_package else set())
    deps = set()
    for target in targets:
        for module in [*_ancestors(target), target]:
            if module in known and module not in own:
                deps.add(module)
    deps.discard(name)
    return deps


def import_graph(package: Path = PACKAGE) -> Graph:
    """module -> the deblur modules it imports (anywhere in its code)."""
    modules = module_names(package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def folder_of(module: str) -> str:
    """The folder (or top-level module) of the package that `module` is in: `deblur.core.errors` ->
    `core`, `deblur.api` -> `api`; "" for the package itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def floors(layers: list[list[str]] = LAYERS) -> dict[str, int]:
    """folder -> its floor (0 is the lowest)."""
    return {folder: floor for floor, names in enumerate(layers) for folder in names}


def upward_imports(graph: Graph, layers: list[list[str]] = LAYERS) -> list[tuple[str, str]]:
    """The imports (module, imported module) that do not go down to a lower floor: into a folder on the
    same floor or above, or from or to a module on no floor. Imports inside one folder are not checked
    here (the cycle check covers them); the package's own `__init__` must import nothing of it."""
    floor = floors(layers)
    found = []
    for module in sorted(graph):
        here = folder_of(module)
        for target in sorted(graph[module]):
            there = folder_of(target)
            if here == there and here:
                continue
            if here not in floor or there not in floor or floor[there] >= floor[here]:
                found.append((module, target))
    return found


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module, each sorted (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", action="store_true", help="also list the imports inside each cycle")
    args = parser.parse_args(argv)
    graph = import_graph()
    found = cycles(graph)
    upward = upward_imports(graph)
    floor = floors()
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports, {len(found)} cycle(s), "
          f"{len(upward)} upward import(s)\n")
    print(f"{'floor':>5}  {'folder':<11} {'modules':>7}  imports (folders below)")
    for level, names in enumerate(LAYERS):
        for name in names:
            members = [m for m in graph if folder_of(m) == name]
            below = {folder_of(t) for m in members for t in graph[m]} - {name}
            uses = ", ".join(sorted(below, key=lambda f: (floor.get(f, len(LAYERS)), f))) or "-"
            print(f"{level:>5}  {name:<11} {len(members):>7}  {uses}")
    for module, target in upward:
        where = {m: f"{folder_of(m) or '(package)'}, floor {floor.get(folder_of(m), '?')}" for m in (module, target)}
        print(f"\nupward or sideways import: {module} ({where[module]}) -> {target} ({where[target]})")
    for i, component in enumerate(found, 1):
        print(f"\ncycle {i}: {len(component)} modules")
        members = set(component)
        for name in component:
            inside = sorted(graph[name] & members)
            print(f"  {name}" + (f" -> {', '.join(inside)}" if args.edges else ""))
    return 1 if found or upward else 0


if __name__ == "__main__":
    sys.exit(main())
