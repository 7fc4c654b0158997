"""The user-study figure of a report: first-place share per model, grouped by criterion, with the
bootstrap interval as error bars (PixArt-α's user-study chart).

The drawing is the study's own (``human_study.figure``): a report draws it from the study's
``results.json`` exactly as ``pixart-bench study aggregate`` does, so the two never disagree.
"""

from __future__ import annotations

from pathlib import Path

from human_study.figure import user_study_figure, write_figure

__all__ = ["user_study_figure", "write_study_figure"]


def write_study_figure(study_data: dict, out_dir: Path) -> list[Path]:
    """``user_study.png`` and ``user_study.svg`` in ``out_dir`` (made if missing) from a study's
    ``results.json`` dict; their paths. ``StudyError`` names a dict that is not a study's results."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_figure(study_data, out_dir)
