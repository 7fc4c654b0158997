"""``pixart-bench study`` end to end through the real command line (typer's CliRunner, in process):
prompts, create, invite (token and crowd links), results and demo.

Each test checks what the command writes or prints against an independent source: the prompt file
against ``default_prompts``, the printed plan against the design's arithmetic, invite links by entering
with them through ``RatingService``, and results by answering a study with simulated raters who prefer
one model, whose first-place share must come out on top. The tiny studies are noise-image models
(tests/study_helpers.py); everything is seeded and nothing starts a server.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
from study_helpers import MODEL_NAMES, make_study, model_folder, tiny_prompts
from typer.testing import CliRunner

from bench.cli import app
from human_study.design import load_study
from human_study.prompts import default_prompts
from human_study.service import RatingService
from human_study.storage import StudyStore

ADMIN = "admin-token-for-tests"
runner = CliRunner()


def cli(*args) -> str:
    """Run ``pixart-bench ARGS``; its output, after checking it succeeded."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}\n{result.exception!r}"
    return result.output


def answer_all(study, raters: int, *, prefer: str | None = None, p_prefer: float = 0.7,
               fail_checks: bool = False, seed: int = 0) -> list[str]:
    """Invite ``raters`` raters and answer every item of each through ``RatingService``; returns the
    completion codes. Ranks are seeded random permutations, except that on alignment the model
    ``prefer`` is ranked first with probability ``p_prefer`` (otherwise at random). On an attention check
    the decoy gets the worst alignment rank, or the best with ``fail_checks``."""
    rng = random.Random(seed)
    store = StudyStore(study.database_url(), study.study_id)
    try:
        service = RatingService(study, store, ADMIN)
        k, codes = len(study.models), []
        for token in store.add_invites(raters):
            entry = service.enter({"token": token})
            while entry.item is not None:
                item = store.assignment(entry.rater_id, entry.item.position)
                ranks = {}
                for criterion in ("quality", "alignment"):
                    order = list(range(1, k + 1))  # order[i]: the rank of the image at screen position i
                    rng.shuffle(order)
                    top = bottom = None  # screen positions that must get rank 1 / rank k
                    if criterion == "alignment" and item.decoy is not None:
                        top, bottom = (item.decoy, None) if fail_checks else (None, item.decoy)
                    elif criterion == "alignment" and prefer is not None and rng.random() < p_prefer:
                        top = item.models.index(study.models.index(prefer))
                    for position, rank in ((top, 1), (bottom, k)):
                        if position is not None:
                            j = order.index(rank)
                            order[j], order[position] = order[position], order[j]
                    ranks[criterion] = order
                entry = service.submit(entry.rater_id, entry.item.position, ranks)
            assert entry.code, entry
            codes.append(entry.code)
        return codes
    finally:
        store.close()


def test_prompts_writes_the_default_prompts(tmp_path):
    out = cli("study", "prompts", "--out", tmp_path / "p.txt", "--n", "14", "--seed", "3")
    want, source = default_prompts(14, 3)
    assert (tmp_path / "p.txt").read_text().splitlines() == want
    assert len(set(want)) == 14
    # the printed shares are the draw's own: 14 over six categories is 3, 3, 2, 2, 2, 2
    assert out.startswith(f"14 prompts → {tmp_path / 'p.txt'}")
    assert [int(k) for k in re.findall(r": (\d+)", out)] == [3, 3, 2, 2, 2, 2]


def test_create_prints_the_plan_and_writes_the_study(tmp_path):
    prompts = tiny_prompts(5)
    (tmp_path / "prompts.txt").write_text("".join(p + "\n" for p in prompts))
    folders = {name: model_folder(tmp_path / "models", name, prompts, seed=s) for s, name in enumerate(MODEL_NAMES[:2])}
    out = cli("study", "create", *[a for n, d in folders.items() for a in ("--model", f"{n}={d}")],
              "--prompts", tmp_path / "prompts.txt", "--out", tmp_path / "study", "--items-per-rater", "2",
              "--raters-per-prompt", "3", "--seed", "4")
    planned = math.ceil(5 / 2) * 3  # rounds of ceil(P / items) raters, one round per rating of each prompt
    assert f"{len(prompts)} prompts × 2 models" in out
    # 5 prompts in chunks of at most 2 (2, 2, 1), each rated by 3 raters: 15 rankings per criterion
    assert (f"plan: {planned} raters of 1–2 prompts each (+ 1 attention check each, scored, not aggregated) give 3 "
            "ratings per prompt and 15 rankings per criterion (quality, alignment; a ranking orders the 2 images of "
            "one prompt)") in out
    assert f"study invite {tmp_path / 'study'} --n {planned}" in out
    record = json.loads((tmp_path / "study" / "study.json").read_text())
    assert record["plan"]["rankings_per_criterion"] == 15 and record["plan"]["ratings_per_prompt"] == [3, 3]
    assert record["models"] == list(folders) and record["prompts"] == prompts
    assert record["settings"]["items_per_rater"] == 2 and record["settings"]["seed"] == 4
    study = load_study(tmp_path / "study")
    assert study.planned_raters == planned
    images = sorted(p.name for p in (tmp_path / "study" / "images").iterdir())
    assert len(images) == 10 and all(re.fullmatch(r"[0-9a-f]{16}\.png", n) for n in images)


def test_create_leaves_no_half_study_when_an_image_is_unreadable(tmp_path):
    """A damaged image stops create before study.json; the images copied before it are removed again, so
    the same --out can be used once the image is replaced."""
    prompts = tiny_prompts(4)
    (tmp_path / "prompts.txt").write_text("".join(p + "\n" for p in prompts))
    folders = {name: model_folder(tmp_path / "models", name, prompts, seed=s) for s, name in enumerate(MODEL_NAMES[:2])}
    bad = sorted((folders["okapimodel"] / "samples").iterdir())[2]
    good = bad.read_bytes()
    bad.write_bytes(good[: len(good) // 2])
    args = ["study", "create", *[a for n, d in folders.items() for a in ("--model", f"{n}={d}")],
            "--prompts", str(tmp_path / "prompts.txt"), "--out", str(tmp_path / "study")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and f"cannot read image {bad}" in result.output, result.output
    assert not (tmp_path / "study").exists()
    bad.write_bytes(good)
    assert runner.invoke(app, args).exit_code == 0
    assert load_study(tmp_path / "study").models == list(folders)


def test_invite_prints_links_whose_tokens_enter(tmp_path):
    study = make_study(tmp_path, n_prompts=4)
    lines = cli("study", "invite", study.folder, "--n", "3", "--url", "http://127.0.0.1:9999/").splitlines()
    assert len(lines) == 3 and len(set(lines)) == 3
    tokens = []
    for line in lines:
        assert line.startswith("http://127.0.0.1:9999/?token="), line
        (token,) = parse_qs(urlsplit(line).query)["token"]
        tokens.append(token)
    store = StudyStore(study.database_url(), study.study_id)
    try:
        service = RatingService(study, store, ADMIN)
        entered = [service.enter({"token": t}) for t in tokens]
        assert [e.kind for e in entered] == ["rater"] * 3
        assert len({e.rater_id for e in entered}) == 3 and all(e.item is not None for e in entered)
        assert service.enter({"token": tokens[0][:-1] + ("A" if tokens[0][-1] != "A" else "B")}).kind == "refused"
    finally:
        store.close()


def test_invite_with_a_bad_url_adds_no_rater(tmp_path):
    study = make_study(tmp_path, n_prompts=4)
    result = runner.invoke(app, ["study", "invite", str(study.folder), "--n", "5", "--url", "study.example.org"])
    assert result.exit_code == 2, result.output
    store = StudyStore(study.database_url(), study.study_id)
    try:
        assert store.counts()["raters_invited_or_seen"] == 0
    finally:
        store.close()


def test_invite_crowd_prints_the_platform_link(tmp_path):
    study = make_study(tmp_path, n_prompts=4)
    (line,) = cli("study", "invite", study.folder, "--crowd", "--url", "https://study.example.org/").splitlines()
    assert line.startswith("https://study.example.org/?key=")
    assert "&PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}" in line
    key = re.search(r"\?key=([^&]+)&", line)[1]
    store = StudyStore(study.database_url(), study.study_id)
    try:
        service = RatingService(study, store, ADMIN)
        # the platform fills in the placeholders: the same participant is one rater on every visit
        first = service.enter({"key": key, "PROLIFIC_PID": "participant-1", "STUDY_ID": "s", "SESSION_ID": "a"})
        again = service.enter({"key": key, "PROLIFIC_PID": "participant-1", "STUDY_ID": "s", "SESSION_ID": "b"})
        assert first.kind == "rater" and first.item is not None and again.rater_id == first.rater_id
        assert service.enter({"key": key + "x", "PROLIFIC_PID": "participant-2"}).kind == "refused"
        # a second call prints the same link: the key is the study's, kept in its database
        assert cli("study", "invite", study.folder, "--crowd", "--url", "https://study.example.org/").strip() == line
    finally:
        store.close()


def test_results_ranks_the_preferred_model_first(tmp_path):
    study = make_study(tmp_path, n_prompts=6, n_models=3, items_per_rater=6, raters_per_prompt=3,
                       attention_rate=0.2, seed=2)
    codes = answer_all(study, raters=3, prefer="okapimodel", seed=5)
    assert len(codes) == 3
    out = cli("study", "results", study.folder, "--out", tmp_path / "results", "--n-boot", "50", "--seed", "1")
    files = {p.name for p in (tmp_path / "results").iterdir()}
    assert {"results.json", "first_place.csv", "mean_rank.csv", "plackett_luce.csv", "agreement.csv",
            "win_matrix_quality.csv", "win_matrix_alignment.csv", "user_study.png", "user_study.svg"} <= files
    assert f"files → {tmp_path / 'results'}" in out
    result = json.loads((tmp_path / "results" / "results.json").read_text())
    assert result["study"]["study_id"] == study.study_id and result["models"] == study.models
    alignment = result["criteria"]["alignment"]
    assert alignment["n_rankings"] == 18 and alignment["n_raters"] == 3  # 3 raters × 6 items; checks left out
    shares = {m: v["estimate"] for m, v in alignment["first_place_share"].items()}
    # expected 0.7 + 0.3 / 3 = 0.8 for the preferred model against 1/3 without a preference
    assert max(shares, key=shares.get) == "okapimodel" and shares["okapimodel"] > 0.6, shares
    mean_rank = {m: v["estimate"] for m, v in alignment["mean_rank"].items()}
    assert min(mean_rank, key=mean_rank.get) == "okapimodel", mean_rank
    assert math.isclose(sum(shares.values()), 1.0)
    assert re.search(r"alignment first place: .*okapimodel \d+\.\d%", out)
    first_csv = (tmp_path / "results" / "first_place.csv").read_text().splitlines()
    assert first_csv[0] == "criterion,model,estimate,ci_low,ci_high" and len(first_csv) == 1 + 2 * 3
    assert (tmp_path / "results" / "user_study.png").read_bytes().startswith(b"\x89PNG")
    assert "<svg" in (tmp_path / "results" / "user_study.svg").read_text()


@pytest.mark.slow
def test_demo_without_serving_makes_a_study_and_a_working_link(tmp_path):
    start = time.perf_counter()
    out = cli("study", "demo", "--out", tmp_path / "demo", "--no-serve", "--prompts", "1", "--port", "7999")
    study = load_study(tmp_path / "demo" / "study")
    assert study.models == ["world-model", "renderer"]
    link = re.search(r"rater link:\s+(\S+)", out)[1]
    assert link.startswith("http://127.0.0.1:7999/?token=")
    (token,) = parse_qs(urlsplit(link).query)["token"]
    store = StudyStore(study.database_url(), study.study_id)
    try:
        entry = RatingService(study, store, ADMIN).enter({"token": token})
        assert entry.kind == "rater" and entry.item is not None and entry.item.prompt in study.prompts
    finally:
        store.close()
    print(f"study demo --prompts 1: {time.perf_counter() - start:.1f} s")
