"""tests/outside.py: a parity test's outside package that does not import is skipped with its reason
locally and fails on CI (CI=true), whatever the import raises; every parity test imports its outside
packages through it, and pyproject.toml's dependencies or test extras install them."""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest

from outside import require

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent
# the outside packages parity tests compare with (module names); the first two come only with the test extras,
# so a plain import of them would fail collection where they are absent
PARITY_PACKAGES = {"clip", "pingouin", "krippendorff", "choix", "torch_fidelity"}
TEST_EXTRAS_ONLY = {"clip", "pingouin"}


@pytest.fixture
def local(monkeypatch):
    monkeypatch.delenv("CI", raising=False)


@pytest.fixture
def ci(monkeypatch):
    monkeypatch.setenv("CI", "true")


def test_an_importable_module_is_returned(ci):
    assert require("json", "a standard module") is json


def test_a_missing_module_is_skipped_with_its_reason_locally(monkeypatch, local):
    monkeypatch.setitem(sys.modules, "parity_reference_pkg", None)  # as if not installed
    with pytest.raises(pytest.skip.Exception, match=r"parity_reference_pkg does not import \(ModuleNotFoundError"
                                                    r".*; the test extras install it"):
        require("parity_reference_pkg", "the test extras install it")


def test_a_missing_module_fails_on_ci(monkeypatch, ci):
    monkeypatch.setitem(sys.modules, "parity_reference_pkg", None)
    with pytest.raises(pytest.fail.Exception, match=r"parity_reference_pkg does not import .*broken setup"):
        require("parity_reference_pkg", "the test extras install it")


@pytest.mark.parametrize("ci_value", ["", "false", "1"])
def test_only_ci_true_turns_the_skip_into_a_failure(monkeypatch, ci_value):
    """The same rule as tests/chromium.py and tests/test_study_storage.py: CI is exactly "true"."""
    monkeypatch.setenv("CI", ci_value)
    monkeypatch.setitem(sys.modules, "parity_reference_pkg", None)
    with pytest.raises(pytest.skip.Exception):
        require("parity_reference_pkg", "why")


@pytest.mark.parametrize("body,error", [
    # the clip package under setuptools >= 81: its own import of pkg_resources fails
    ("from pkg_resources import packaging\n", "ModuleNotFoundError"),
    ("raise RuntimeError('compiled for another numpy')\n", "RuntimeError"),
    ("raise AttributeError(\"module 'numpy' has no attribute 'float'\")\n", "AttributeError"),
])
def test_any_exception_during_import_counts(tmp_path, monkeypatch, body, error):
    """Not only ImportError: a package that is installed but breaks while importing is as unusable."""
    (tmp_path / "broken_reference_pkg.py").write_text(body)
    monkeypatch.syspath_prepend(tmp_path)
    monkeypatch.setitem(sys.modules, "pkg_resources", None)  # as with setuptools >= 81
    monkeypatch.delitem(sys.modules, "broken_reference_pkg", raising=False)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=f"broken_reference_pkg does not import \\({error}"):
        require("broken_reference_pkg", "why")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=f"broken_reference_pkg does not import \\({error}"):
        require("broken_reference_pkg", "why")


def test_a_module_level_skip_skips_the_whole_module(pytester, monkeypatch):
    """At a test module's top, as the parity modules call it: locally the module is skipped (reason shown),
    on CI its collection fails."""
    pytester.syspathinsert(TESTS)
    pytester.makepyfile(test_parity="""
        from outside import require
        ref = require("parity_reference_pkg", "the test extras install it")
        def test_parity():
            assert ref
    """)
    monkeypatch.setitem(sys.modules, "parity_reference_pkg", None)
    monkeypatch.delenv("CI", raising=False)
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(skipped=1)
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*parity_reference_pkg does not import*broken setup*"])


# --- the parity tests use it ---------------------------------------------------------------------------------
def _imports_and_requires(path: Path) -> tuple[set[str], set[str], set[str]]:
    """(outside packages the file imports, those it passes to require, those it passes to importorskip)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported, required, skipped = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "require":
                required.add(str(node.args[0].value).split(".")[0])
            elif name == "importorskip":
                skipped.add(str(node.args[0].value).split(".")[0])
    return imported & PARITY_PACKAGES, required, skipped


def test_parity_tests_import_outside_packages_through_require():
    """No test skips a parity package with importorskip (that skip hides a broken one on CI); the packages
    that only the test extras install are imported through require wherever a test uses them; and the
    parity modules take every reference package through require."""
    uses = {}
    for path in sorted(TESTS.glob("test_*.py")):
        imported, required, skipped = _imports_and_requires(path)
        assert not skipped & PARITY_PACKAGES, f"{path.name}: importorskip hides a broken parity package on CI"
        extras = imported & TEST_EXTRAS_ONLY
        assert extras <= required, f"{path.name} imports {sorted(extras - required)} without require()"
        uses[path.name] = (imported, required & PARITY_PACKAGES)
    parity_modules = {"test_compbench_clip.py": {"clip"}, "test_compbench_complex.py": {"clip"},
                      "test_study_aggregate.py": {"pingouin", "krippendorff", "choix"},
                      "test_fid.py": {"torch_fidelity"}, "test_world_fid.py": {"torch_fidelity"}}
    for name, packages in parity_modules.items():
        imported, required = uses[name]
        assert required == packages and imported <= required, (name, imported, required)


def _normalized(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement).group()).lower()


def test_pyproject_installs_every_required_package():
    """Each outside package a test requires comes with the project or its test extras (so CI has it), and
    the clip package's pkg_resources with it: setuptools below 81."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = require("tomli", "reads pyproject.toml on Python 3.10; the test extras install it")
    from importlib.metadata import packages_distributions

    project = tomllib.loads((TESTS.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    test_extras = project["optional-dependencies"]["test"]
    installed = {_normalized(r) for r in project["dependencies"] + test_extras}
    required = set().union(*(_imports_and_requires(p)[1] for p in TESTS.glob("test_*.py"))) & PARITY_PACKAGES
    assert required == PARITY_PACKAGES
    dists = packages_distributions()
    for module in sorted(required):
        names = {_normalized(d) for d in dists.get(module, [])}
        assert names, f"{module} is not installed here, so its distribution cannot be checked"
        assert names & installed, f"{module} ({sorted(names)}) is in neither the dependencies nor the test extras"
    assert "setuptools<81" in [r.replace(" ", "") for r in test_extras]  # clip imports pkg_resources
