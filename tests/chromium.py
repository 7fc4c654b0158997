"""The Chromium that browser tests drive with Playwright, and how they launch it.

Chromium comes from ``STUDY_TEST_CHROMIUM``, else ``/usr/bin/chromium``. Without one a browser test
is skipped, except on CI (``CI=true``), where it fails: ``.ci/run`` installs chromium, so a missing
one there is a broken setup.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Chromium without a network: no background, update or sync connections that would fail
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]


def chromium_path() -> str:
    path = os.environ.get("STUDY_TEST_CHROMIUM") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists()
                                                     else "")
    if path and Path(path).exists():
        return path
    why = f"no chromium at {path!r}" if path else "no chromium (set STUDY_TEST_CHROMIUM or install /usr/bin/chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} on CI: .ci/run installs chromium and sets STUDY_TEST_CHROMIUM")
    pytest.skip(f"browser tests: {why}")
