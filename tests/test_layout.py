"""The layout's rules, checked on the source: imports form no cycle and ``pixart`` is at the bottom;
modules stay small; the design card's homes exist."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pixart", "bench", "human_study", "reports")
# one readable file each, like DiT's models.py: the transformer and the checkpoint converters
LONG_MODULES_ALLOWED = {"pixart/model.py", "pixart/checkpoints.py"}
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules ``path`` imports anywhere in it (function-level imports included; those under
    ``if TYPE_CHECKING:`` are for annotations only and never run)."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for branch in ast.walk(tree) if isinstance(branch, ast.If)
                   and getattr(branch.test, "id", getattr(branch.test, "attr", None)) == "TYPE_CHECKING"
                   for stmt in branch.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, set(modules)) for name, path in modules.items()}


def test_pixart_imports_nothing_of_the_benchmark_half():
    for name, deps in _graph().items():
        if name.split(".")[0] == "pixart":
            assert not [d for d in deps if d.split(".")[0] != "pixart"], (name, deps)


def test_the_import_graph_has_no_cycle():
    graph = _graph()
    # a package's __init__ re-exporting its own modules is not a cycle of jobs: fold submodules into
    # nothing, and check the module-to-module edges outside such re-exports
    edges = {n: {d for d in deps if not (n == d.rpartition(".")[0] and d.startswith(n + "."))} for n, deps in graph.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(n):
        state[n] = 1
        path.append(n)
        for d in sorted(edges.get(n, ())):
            # importing a package means importing its __init__; an edge into an ancestor package of n is
            # Python importing n's parents first, not a cycle
            if n.startswith(d + "."):
                continue
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(d):] + [d]))
            if d not in state:
                visit(d)
        path.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)


def test_modules_stay_small():
    long = {str(p.relative_to(ROOT)): n for p in _modules().values()
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert set(long) <= LONG_MODULES_ALLOWED, long


def test_the_design_cards_homes_exist():
    for home in ("bench/generate/__init__.py", "bench/compbench/__init__.py", "bench/fid/__init__.py",
                 "bench/ablate/__init__.py", "bench/stats.py", "bench/world/oracle/__init__.py", "bench/world/fid/__init__.py",
                 "human_study/__init__.py", "reports/__init__.py", "benchmarks"):
        assert (ROOT / home).exists(), home
    for home in ("bench/generate/__init__.py", "bench/compbench/__init__.py", "human_study/__init__.py"):
        assert ast.get_docstring(ast.parse((ROOT / home).read_text())), f"{home} says what goes there"
