"""The package's shape, read from its source with `ast` (nothing is imported):

- no import cycles among runner modules (lazy imports count: a cycle hidden in a function is
  still a cycle);
- no function-level import of a runner module outside runner/cli, whose lazy command loading
  is the one deliberate exception (it keeps `campaign --version` and `validate` fast);
- the pure core (campaign, audience, planning) reaches no HTTP client, no SQLite and no
  emulator, directly or through the runner modules it imports.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "runner"
CORE = ("runner.campaign", "runner.audience", "runner.planning", "runner.consent")
FORBIDDEN_IN_CORE = ("httpx", "sqlite3", "runner.http", "runner.run", "runner.store", "runner.emulator")
LAZY_ALLOWED = ("runner.cli",)


@dataclass
class Imports:
    runner: dict[str, int] = field(default_factory=dict)  # runner module -> line
    lazy: dict[str, int] = field(default_factory=dict)  # runner modules imported inside a function
    external: dict[str, int] = field(default_factory=dict)  # top-level name of anything else


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    out = {}
    for f in sorted(package.rglob("*.py")):
        rel = f.relative_to(package.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        out[".".join(parts)] = f
    return out


def _targets(node: ast.Import | ast.ImportFrom, package: str, modules: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:
        parts = package.split(".")
        parts = parts[: len(parts) - node.level + 1]
        base = ".".join(parts + ([base] if base else []))
    # `from runner.campaign import rules` imports the module runner.campaign.rules.
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The runner module a dotted import name stands for (its longest known prefix)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> Imports:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = Imports()

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                for target in _targets(child, package, modules):
                    owner = _owner(target, modules) if target.split(".")[0] == "runner" else None
                    if owner is not None:
                        found.runner.setdefault(owner, child.lineno)
                        if in_function:
                            found.lazy.setdefault(owner, child.lineno)
                    elif target:
                        found.external.setdefault(target.split(".")[0], child.lineno)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, Imports]:
    modules = module_files(package)
    return {m: imports_of(m, p, modules) for m, p in modules.items()}


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing
    itself), each sorted: Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
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
                if len(component) > 1 or node in edges.get(node, ()):
                    out.append(sorted(component))
    return out


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.fixture(scope="module")
def graph() -> dict[str, Imports]:
    return import_graph()


def test_the_cycle_finder_finds_cycles_and_only_cycles():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"a"}}) == [["a"]]
    assert find_cycles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_the_graph_reads_absolute_relative_and_lazy_imports(tmp_path):
    pkg = tmp_path / "runner"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "a.py").write_text("from runner.sub import b\nimport httpx\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from . import a\n    from runner.sub.a import thing\n")
    got = import_graph(pkg)
    assert got["runner.sub.a"].runner == {"runner.sub.b": 1}
    assert got["runner.sub.a"].external == {"httpx": 2}
    assert got["runner.sub.b"].lazy == {"runner.sub.a": 2}
    assert find_cycles({m: set(i.runner) for m, i in got.items()}) == [["runner.sub.a", "runner.sub.b"]]


def test_no_import_cycles_among_runner_modules(graph):
    cycles = find_cycles({m: set(i.runner) for m, i in graph.items()})
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_lazy_runner_imports_outside_the_cli(graph):
    lazy = [f"{m}:{line} imports {target} inside a function"
            for m, i in sorted(graph.items()) if not _within(m, LAZY_ALLOWED)
            for target, line in sorted(i.lazy.items())]
    assert lazy == []


def test_the_pure_core_reaches_no_http_sqlite_store_or_emulator(graph):
    bad = []
    for start in sorted(m for m in graph if _within(m, CORE)):
        seen, todo = {start}, [(start, (start,))]
        while todo:
            module, via = todo.pop()
            names = [*graph[module].runner, *graph[module].external]
            bad += [" -> ".join((*via, n)) for n in names if _within(n, FORBIDDEN_IN_CORE)]
            for target in graph[module].runner:
                if target not in seen:
                    seen.add(target)
                    todo.append((target, (*via, target)))
    assert bad == []
