"""reports.study_figure: the user-study figure of a report, checked on the matplotlib Figure itself."""

import numpy as np
import pytest
from matplotlib.patches import Rectangle
from PIL import Image

from human_study.errors import StudyError
from reports.study_figure import user_study_figure, write_study_figure

MODELS = ["pixart", "sdxl", "dalle2"]
CRITERIA = ["quality", "alignment"]
# (estimate, ci_low, ci_high) per criterion and model: the shares of one criterion add up to 1
SHARES = {"quality": {"pixart": (0.5, 0.41, 0.6), "sdxl": (0.3, 0.22, 0.37), "dalle2": (0.2, 0.12, 0.29)},
          "alignment": {"pixart": (0.45, 0.35, 0.52), "sdxl": (0.15, 0.1, 0.21), "dalle2": (0.4, 0.31, 0.47)}}


def study_results(shares=SHARES) -> dict:
    """The parts of a study's results.json the figure reads."""
    return {"models": MODELS, "settings": {"level": 0.95},
            "criteria": {c: {"first_place_share": {m: dict(zip(("estimate", "ci_low", "ci_high"), v))
                                                   for m, v in shares[c].items()}} for c in CRITERIA}}


def bars(fig) -> list[Rectangle]:
    ax = fig.axes[0]
    return [p for container in ax.containers if hasattr(container, "patches") for p in container.patches]


def test_the_figure_has_a_bar_per_model_and_criterion_at_the_estimates_with_the_cis():
    fig = user_study_figure(study_results())
    ax = fig.axes[0]
    patches = bars(fig)
    assert len(patches) == len(MODELS) * len(CRITERIA)
    # ax.bar is called once per model, with one bar per criterion: container i is model i
    containers = [c for c in ax.containers if hasattr(c, "patches")]
    assert [c.get_label() for c in containers] == MODELS
    for model, container in zip(MODELS, containers):
        heights = [p.get_height() for p in container.patches]
        assert heights == pytest.approx([SHARES[c][model][0] for c in CRITERIA])
        # the error bar of each bar spans its CI: the vertical segment from ci_low to ci_high
        segments = container.errorbar.lines[2][0].get_segments()
        spans = [(min(s[:, 1]), max(s[:, 1])) for s in segments]
        assert spans == [pytest.approx(SHARES[c][model][1:]) for c in CRITERIA]
        # and sits over the middle of its bar
        assert [s[0, 0] for s in segments] == pytest.approx([p.get_x() + p.get_width() / 2 for p in container.patches])
    # criteria are the groups on the x axis, in order
    assert [t.get_text() for t in ax.get_xticklabels()] == [c.capitalize() for c in CRITERIA]
    centers = np.array([[p.get_x() + p.get_width() / 2 for p in c.patches] for c in containers])
    assert (np.abs(centers - np.arange(len(CRITERIA))) < 0.5).all()


def test_write_study_figure_writes_png_and_svg(tmp_path):
    paths = write_study_figure(study_results(), tmp_path / "figures")
    assert [p.name for p in paths] == ["user_study.png", "user_study.svg"]
    with Image.open(paths[0]) as im:
        assert im.width > 400 and im.height > 300
    svg = paths[1].read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "dalle2" in svg


def test_a_dict_that_is_not_study_results_is_refused(tmp_path):
    with pytest.raises(StudyError, match="lacks"):
        write_study_figure({"models": MODELS}, tmp_path)
