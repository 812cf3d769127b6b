#!/usr/bin/env python3
"""The import graph of the deblur package, read from the source with `ast`, and its cycles.

    python scripts/import_layers.py            # the cycles (strongly connected components), if any
    python scripts/import_layers.py --edges    # also every edge inside each cycle

Every `import` counts, those inside functions too: a function-level import delays a dependency, it
does not remove it. Imports under `if TYPE_CHECKING:` are left out (they never run). Importing
`a.b.c` also runs the `__init__` of `a.b` and `a`, so those packages count as targets, except the
importer's own packages (already being imported when it runs). tests/test_layers.py uses this
module to keep the package free of cycles and its layers in order. Exit status 1 when there is a cycle.
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
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports, {len(found)} cycle(s)")
    for i, component in enumerate(found, 1):
        print(f"\ncycle {i}: {len(component)} modules")
        members = set(component)
        for name in component:
            inside = sorted(graph[name] & members)
            print(f"  {name}" + (f" -> {', '.join(inside)}" if args.edges else ""))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
