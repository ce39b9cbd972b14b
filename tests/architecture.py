"""The package's shape, read from its source: every import (TYPE_CHECKING and function-level ones
too), the cycles they make, and the size of each module.

    python -m tests.architecture          # prints cycles and oversized modules; exit 1 if any

``tests/unit/test_architecture.py`` asserts the same, so the shape cannot drift back.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "mailsrv"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE
#: A module longer than this holds more than one concept.
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(current: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = current.split(".")
    if not is_package:
        base = base[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every mailsrv module ``name`` imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()

    def add(target: str) -> None:
        # "from pkg import mod" names a module; "from mod import name" names the module.
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, path.name == "__init__.py", node)
            if target.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                add(full if full in known else target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(name, path, known) for name, path in mods.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def oversized() -> Iterator[tuple[str, int]]:
    for name, path in modules().items():
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            yield name, lines


def imports_outside(package: str, forbidden: tuple[str, ...]) -> list[tuple[str, str]]:
    """(module, import) pairs where a module of ``package`` imports one of ``forbidden``
    (mailsrv subpackages or top-level stdlib/third-party modules)."""
    bad: list[tuple[str, str]] = []
    for name, path in modules().items():
        if name != package and not name.startswith(package + "."):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                targets = [_resolve(name, path.name == "__init__.py", node)]
            for target in targets:
                if any(target == f or target.startswith(f + ".") for f in forbidden):
                    bad.append((name, target))
    return bad


def main() -> int:
    found = cycles(graph())
    for component in found:
        print("cycle:", " <-> ".join(component))
    big = list(oversized())
    for name, lines in big:
        print(f"over {MAX_LINES} lines: {name} ({lines})")
    print(f"{len(found)} import cycles, {len(big)} modules over {MAX_LINES} lines")
    return 1 if found or big else 0


if __name__ == "__main__":
    raise SystemExit(main())
