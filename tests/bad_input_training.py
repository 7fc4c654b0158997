"""Bad-input cases for the training commands and loaders (see tests/bad_input.py).

Case ids start with the command they run (``"COMMAND: what is wrong"``, ``"world fid: ..."``)."""

from bad_input import ApiCase, CliCase  # noqa: F401

CLI_CASES: list = []
API_CASES: list = []
