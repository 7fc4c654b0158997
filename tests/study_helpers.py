"""The human-study tests' helpers: the synthetic study, server and simulated raters of
``human_study.loadtest`` (shared with ``benchmarks/study_load.py``), and the repository root."""

from pathlib import Path

from human_study.loadtest import (  # noqa: F401 (re-exported for the tests)
    MODEL_NAMES,
    PROMPT_WORD,
    Server,
    SimRater,
    View,
    client,
    free_port,
    make_study,
    model_folder,
    parse_view,
    prompt_text,
    release,
    tiny_prompts,
    wait_for_http,
)

ROOT = Path(__file__).resolve().parents[1]
