"""The Chromium that browser tests drive with Playwright, and how they launch it: ``launch()`` gives a
headless browser for a module-scoped ``browser`` fixture.

Chromium comes from ``STUDY_TEST_CHROMIUM``, else ``/usr/bin/chromium``. Without one a browser test
is skipped, except on CI (``CI=true``), where it fails: ``.ci/run`` installs chromium, so a missing
one there is a broken setup.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def launch():
    """A headless Chromium through Playwright's sync API (skipped or failed as ``chromium_path`` says)."""
    executable = chromium_path()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
