"""No module of the package imports a module that imports it back: a cycle makes the import order
decide what exists when (a half-initialised module), and means two modules are really one.

The graph is read with ``ast``, so it holds every module-level import, including those under
``if TYPE_CHECKING:`` (a type-only import still ties the two modules together) and in class bodies;
imports inside functions are lazy by design and left out.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "tracker"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements run when the module is imported: everywhere but inside function bodies."""
    found, todo = [], list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(node))
    return found


def imported(name: str, is_package: bool, node: ast.Import | ast.ImportFrom, modules: set[str]) -> set[str]:
    """Package modules that ``node`` in module ``name`` makes Python import, relative imports resolved.

    Importing ``a.b.c`` also runs ``a`` and ``a.b``, except those the importer's own import already
    ran (its ancestor packages); ``from a import x`` imports submodule ``a.x`` when there is one.
    """
    if isinstance(node, ast.Import):
        targets = {alias.name for alias in node.names}
    else:
        base = node.module or ""
        if node.level:
            package = name.split(".") if is_package else name.split(".")[:-1]
            package = package[:len(package) - (node.level - 1)]
            base = ".".join(package + ([base] if base else []))
        targets = {base} | {f"{base}.{alias.name}" for alias in node.names}
    running = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    expanded = {".".join(t.split(".")[:i]) for t in targets for i in range(1, t.count(".") + 2)}
    return (expanded & modules) - running - {name}


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {name: set().union(*(imported(name, path.name == "__init__.py", node, modules)
                                for node in top_level_imports(ast.parse(path.read_text(), str(path)))))
            for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_imports_resolve_relative_type_checking_and_submodule_forms():
    modules = {"pkg", "pkg.a", "pkg.sub", "pkg.sub.b", "pkg.sub.c", "pkg.other", "pkg.other.d"}
    source = ("from . import c\nfrom .. import a\nfrom ..other.d import f\nimport pkg.other\n"
              "if TYPE_CHECKING:\n    from .c import T\nclass K:\n    from ..a import g\n"
              "def lazy():\n    from .. import other\n")
    found = set().union(*(imported("pkg.sub.b", False, node, modules)
                          for node in top_level_imports(ast.parse(source))))
    # pkg and pkg.sub ran before pkg.sub.b; the function's import is lazy
    assert found == {"pkg.a", "pkg.sub.c", "pkg.other", "pkg.other.d"}
    package = set().union(*(imported("pkg.sub", True, node, modules)
                            for node in top_level_imports(ast.parse("from .b import x\nfrom . import c\n"))))
    assert package == {"pkg.sub.b", "pkg.sub.c"}


def test_find_cycle_reports_the_circle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_package_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
