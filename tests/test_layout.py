"""The layout's rules, checked on the source: imports flow one way through the layers and form no cycle;
modules stay small; the design card's homes exist.

Every import counts wherever it is written: at the top of a module, inside a function, or under
``if TYPE_CHECKING:``. A function-level import is still an edge between two modules; "import it late"
hides a circle, it does not break it."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pixart", "bench", "human_study", "reports")
# one readable file, like DiT's models.py: the transformer
LONG_MODULES_ALLOWED = {"pixart/model.py"}
MAX_LINES = 450
# the layers, bottom up: a module imports only from its own layer or those below it
LAYERS = ("pixart", "bench core", "human_study / reports", "the command line")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def layer(module: str) -> int:
    """``module``'s place in ``LAYERS``: pixart; bench's metrics, generation store, world and ablations;
    the human study and the reports; the command line (``bench.cli``, ``python -m bench``) on top."""
    top = module.split(".")[0]
    if top == "pixart":
        return 0
    if module == "bench.__main__" or module == "bench.cli" or module.startswith("bench.cli."):
        return 3
    return 1 if top == "bench" else 2


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Project modules ``path`` imports anywhere in it: module level, in functions, under TYPE_CHECKING."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
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


def test_imports_flow_down_the_layers():
    """pixart < bench core (metrics, generation, world, ablations) < human_study, reports < the command
    line: the core writes its own summaries (``bench.markdown``), the demo's report is written a layer up
    (``reports.build.write_demo_report``), and nothing below the command line imports it."""
    upward = sorted(f"{name} ({LAYERS[layer(name)]}) imports {d} ({LAYERS[layer(d)]})"
                    for name, deps in _graph().items() for d in deps if layer(d) > layer(name))
    assert not upward, "\n".join(upward)


def test_the_import_graph_has_no_cycle():
    """No circle of imports between modules. Importing a package runs its ``__init__``, so a package
    that re-exports its modules depends on them; a module's edge to its own parent package is Python
    importing the parent first, not a dependency of the module's code."""
    edges = _graph()
    state: dict[str, int] = {}
    path: list[str] = []
    cycles = []

    def visit(n):
        state[n] = 1
        path.append(n)
        for d in sorted(edges.get(n, ())):
            if n.startswith(d + "."):  # n's own parent package
                continue
            if state.get(d) == 1:
                cycles.append(" -> ".join(path[path.index(d):] + [d]))
            elif d not in state:
                visit(d)
        path.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_world_extractor_is_wired_from_above():
    """``bench.fid`` knows "world-cnn" by name, not its network: until the world's extractor is registered
    with torch-fidelity (by the command line, or the world's own FID functions) it refuses it, and after
    it uses the weights that come with it. In a fresh interpreter: nothing registered it before."""
    import subprocess
    import sys

    code = ("import sys, bench.fid\nfrom bench.errors import BenchError\n"
            "try:\n    print('found', bench.fid.resolve_weights('world-cnn'))\n"
            "except BenchError as e:\n    print('refused:', e)\n"
            "print('bench.world.fid' in sys.modules)\n"
            "from bench.world.fid import DEFAULT_WEIGHTS, register_world_extractor\n"
            "register_world_extractor()\nprint(bench.fid.resolve_weights('world-cnn') == DEFAULT_WEIGHTS)\n")
    lines = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    assert lines[0].startswith("refused: the world-cnn extractor is not registered with torch-fidelity"), lines
    assert lines[1:] == ["False", "True"], lines


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
