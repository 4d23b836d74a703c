"""The package's shape, read from its source with `ast` (nothing is imported):

- no import cycles among runner modules (lazy imports count: a cycle hidden in a function is
  still a cycle);
- no function-level import of a runner module outside runner/cli, whose lazy command loading
  is the one deliberate exception (it keeps `campaign --version` and `validate` fast);
- the pure core (source, campaign, audience, planning) reaches no HTTP client, no SQLite and
  no emulator, directly or through the runner modules it imports;
- no import cycle among the packages either, and none of the edges that once ran backwards
  (``FORBIDDEN_EDGES``) comes back;
- a name is imported from the module that defines it (package ``__init__`` facades aside): one
  home per name, no re-exports for callers to find it under a second address;
- `campaign send` leaves the send -> track -> exit-code sequence to the session.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "runner"
CORE = ("runner.source", "runner.campaign", "runner.audience", "runner.planning", "runner.consent")
FORBIDDEN_IN_CORE = (
    "httpx",
    "sqlite3",
    "runner.http",
    "runner.run",
    "runner.store",
    "runner.emulator",
)
LAZY_ALLOWED = ("runner.cli",)
# Single modules that may import lazily, and why.
LAZY_ALLOWED_MODULES = {
    "runner.report": "the package is callable (runner.report(...)); importing one of its "
    "modules must not load the journal and the planner",
}
# (importer, imported) packages, and why the edge must not exist.
FORBIDDEN_EDGES = {
    ("runner.run", "runner.report"): "a run writes what the report reads; the plan the report "
    "counts (CurrentPlan) is planning's",
    ("runner.store", "runner.planning"): "the journal stores rows; content_hash's home is "
    "runner.planning.keys",
    ("runner.audience", "runner.campaign"): "a campaign names its audience, not the other way "
    "round; Document and paths live in runner.source",
    ("runner.source", "runner.campaign"): "runner.source is what campaign and audience share",
    ("runner.source", "runner.audience"): "runner.source is what campaign and audience share",
    ("runner.law", "runner.campaign"): "a campaign builds its Law; the window both read is "
    "runner.window's, the schedule's states runner.states'",
}
# Modules still re-exporting names (the opt-out module is being rewritten).
REEXPORT_ALLOWED = ("runner.run.optouts",)


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


def _targets(
    node: ast.Import | ast.ImportFrom, package: str, modules: dict[str, Path]
) -> list[str]:
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
            visit(
                child,
                in_function
                or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)),
            )

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
    (pkg / "sub" / "b.py").write_text(
        "def f():\n    from . import a\n    from runner.sub.a import thing\n"
    )
    got = import_graph(pkg)
    assert got["runner.sub.a"].runner == {"runner.sub.b": 1}
    assert got["runner.sub.a"].external == {"httpx": 2}
    assert got["runner.sub.b"].lazy == {"runner.sub.a": 2}
    assert find_cycles({m: set(i.runner) for m, i in got.items()}) == [
        ["runner.sub.a", "runner.sub.b"]
    ]


def test_no_import_cycles_among_runner_modules(graph):
    cycles = find_cycles({m: set(i.runner) for m, i in graph.items()})
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_lazy_runner_imports_outside_the_cli(graph):
    lazy = [
        f"{m}:{line} imports {target} inside a function"
        for m, i in sorted(graph.items())
        if not _within(m, LAZY_ALLOWED) and m not in LAZY_ALLOWED_MODULES
        for target, line in sorted(i.lazy.items())
    ]
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


def package_of(module: str) -> str:
    """``runner.run.send`` -> ``runner.run``; a top-level module (``runner.errors``) is its own."""
    return ".".join(module.split(".")[:2])


def package_edges(graph: dict[str, Imports]) -> dict[str, dict[str, str]]:
    """Importing package -> imported package -> the first module-level edge that makes it."""
    out: dict[str, dict[str, str]] = {}
    for module, found in sorted(graph.items()):
        for target, line in sorted(found.runner.items()):
            a, b = package_of(module), package_of(target)
            if a != b:
                out.setdefault(a, {}).setdefault(b, f"{module}:{line} imports {target}")
    return out


def test_no_import_cycles_among_runner_packages(graph):
    edges = package_edges(graph)
    cycles = find_cycles({a: set(b) for a, b in edges.items()})
    why = ["; ".join(edges[a][b] for a in c for b in c if b in edges.get(a, {})) for c in cycles]
    assert cycles == [], "package cycles: " + " | ".join(why)


def test_the_package_cycle_check_sees_a_cycle_through_modules(tmp_path):
    pkg = tmp_path / "runner"
    for sub in ("a", "b"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "x.py").write_text("from runner.b import y\n")
    (pkg / "b" / "y.py").write_text("")
    (pkg / "b" / "z.py").write_text("from runner.a.x import thing\n")
    edges = package_edges(import_graph(pkg))
    assert find_cycles({a: set(b) for a, b in edges.items()}) == [["runner.a", "runner.b"]]


@pytest.mark.parametrize(("importer", "imported"), sorted(FORBIDDEN_EDGES))
def test_no_backward_edge(graph, importer, imported):
    edge = package_edges(graph).get(importer, {}).get(imported)
    assert edge is None, f"{edge}: {FORBIDDEN_EDGES[importer, imported]}"


def _bound(statements: list[ast.stmt]) -> set[str]:
    """Names bound by these statements (and by their if/try branches), imports excluded."""
    names: set[str] = set()
    for node in statements:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.If, ast.Try)):
            names |= _bound(node.body) | _bound(node.orelse)
            names |= _bound([s for h in getattr(node, "handlers", []) for s in h.body])
    return names


# `from runner.x import a, b as c` and its parenthesised form, wherever it stands.
_FROM_RUNNER = re.compile(r"^[ \t]*from (runner(?:\.\w+)*) import (\([^)]*\)|[^\n]+)", re.M)


def test_names_are_imported_from_their_home():
    modules = module_files()
    defined = {
        m: _bound(ast.parse(p.read_text(encoding="utf-8")).body)
        for m, p in modules.items()
        if p.name != "__init__.py"
    }
    sources = [
        *PACKAGE.rglob("*.py"),
        *(ROOT / "tests").glob("*.py"),
        *(ROOT / "benchmarks").glob("*.py"),
    ]
    bad = []
    for path in sorted(sources):
        text = path.read_text(encoding="utf-8")
        for found in _FROM_RUNNER.finditer(text):
            module = found.group(1)
            if module not in defined or module in REEXPORT_ALLOWED:
                continue
            listed = re.sub(r"#[^\n]*", "", found.group(2)).strip("() \n")
            names = [part.split(" as ")[0].strip() for part in listed.split(",") if part.strip()]
            line = text.count("\n", 0, found.start()) + 1
            bad += [
                f"{path.relative_to(ROOT)}:{line} imports {name} from {module}, which does "
                "not define it"
                for name in names
                if name not in defined[module] and f"{module}.{name}" not in modules
            ]
    assert bad == []


def test_the_send_command_leaves_orchestration_to_the_session():
    tree = ast.parse((PACKAGE / "cli" / "send.py").read_text(encoding="utf-8"))
    called = {
        node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    # SendSession.send runs, tracks and merges the exit codes; the CLI only draws and prints.
    assert called.isdisjoint({"run", "run_once", "track", "exit_after_track"})
    assert "send" in called
