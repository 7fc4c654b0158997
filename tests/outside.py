"""Outside packages that parity tests compare with (the ``clip`` package, pingouin, krippendorff, choix,
torch-fidelity): ``require(name, why)`` imports one for a test module or a test.

When the import fails, with any exception (``import clip`` raises ModuleNotFoundError for
``pkg_resources`` under setuptools 81 or later; a broken install can raise anything), the test is
skipped with the reason, except on CI (``CI=true``), where it fails: the test extras install these
packages there, so a missing or broken one is a broken setup, and a parity check must not vanish
from the results without a failure. Chromium and PostgreSQL tests follow the same rule
(tests/chromium.py, tests/test_study_storage.py).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest


def on_ci() -> bool:
    """True on CI: the ``CI`` environment variable is ``true`` (as CI services set it)."""
    return os.environ.get("CI") == "true"


def require(name: str, why: str) -> ModuleType:
    """The module ``name``, imported; when it does not import, skip (locally) or fail (on CI) naming the
    module, the error and ``why`` (what the test checks with it, and what installs it)."""
    try:
        return importlib.import_module(name)
    except Exception as e:  # noqa: BLE001 - any failure to import makes the parity test unable to run
        reason = f"{name} does not import ({type(e).__name__}: {e}); {why}"
    if on_ci():
        pytest.fail(f"{reason}. On CI this is a broken setup: the test extras (pip install -e '.[test]') "
                    "install it", pytrace=False)
    pytest.skip(reason, allow_module_level=True)
