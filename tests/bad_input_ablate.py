"""Bad-input cases for the ``ablate`` group (``ablate cost``, ``ablate fid``, ``ablate train``) and the
``bench.ablate`` functions behind them (see tests/bad_input.py). Case ids start with the command or
function they run; every case fails before anything is measured, generated or trained."""

from __future__ import annotations

CLI_CASES: list = []
API_CASES: list = []
