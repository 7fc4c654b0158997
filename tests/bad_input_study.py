"""Bad-input cases for ``pixart-bench study`` (prompts, create, invite, serve, results, demo) and the
``human_study`` functions behind them (see tests/bad_input.py).

Case ids start with the command or function they run. Each case builds what it needs in its own folder:
model folders of seeded noise PNGs in the official layout and tiny studies (tests/study_helpers.py), then
damages them. No case starts a server: every ``study serve`` and ``study demo`` case must fail before the
launch (tests/test_bad_input.py turns a launch into a failure, so a regression cannot block the run), and
the demo cases fail before any image is sampled."""

from __future__ import annotations

import atexit
import json
import shutil
import socket
from pathlib import Path

from bad_input import ApiCase, CliCase, truncate, write
from bad_input_world import option_cases
from study_helpers import MODEL_NAMES, free_port, make_study, model_folder, tiny_prompts

from human_study.design import STUDY_FILE, Settings, create_study, load_study
from human_study.errors import StudyError
from human_study.invites import invite_link
from human_study.prompts import default_prompts, write_prompts
from human_study.service import RatingService
from human_study.storage import StudyStore

PROMPTS = tiny_prompts(4)
ADMIN = "admin-token-for-tests"


# ---- inputs ------------------------------------------------------------------------------------------------

def models(f: Path, n: int = 2, prompts: list[str] = PROMPTS) -> dict[str, Path]:
    """``n`` model folders (official layout, one noise PNG per prompt) under ``f/models``: zebramodel,
    okapimodel, tapirmodel, dingomodel, then numbered ones."""
    names = [MODEL_NAMES[m] if m < len(MODEL_NAMES) else f"model{m}" for m in range(n)]
    return {name: model_folder(f / "models", name, prompts, seed=100 + m) for m, name in enumerate(names)}


def prompt_file(f: Path, prompts: list[str] = PROMPTS) -> Path:
    return write(f / "prompts.txt", "".join(p + "\n" for p in prompts))


def create(f: Path, i, *extra, specs: list[str] | None = None, prompts: Path | None = None,
           out: Path | None = None) -> list:
    """``study create`` of two good model folders (or the ``--model`` values ``specs``) and the prompt file."""
    specs = [f"{name}={folder}" for name, folder in models(f).items()] if specs is None else specs
    return ["study", "create", *[a for s in specs for a in ("--model", s)], "--prompts", prompts or prompt_file(f),
            "--out", out or f / "study", *extra]


def study(f: Path, **settings) -> Path:
    """A finished tiny study (4 prompts, zebramodel and okapimodel) in ``f/study``."""
    return make_study(f, n_prompts=4, **settings).folder


def edit_json(path: Path, change) -> Path:
    """``path``'s JSON object, changed in place by ``change(d)``, written back."""
    d = json.loads(path.read_text())
    change(d)
    path.write_text(json.dumps(d))
    return path


def other_study_db(f: Path) -> Path:
    """A study whose database was replaced by the database of another study."""
    folder = study(f)
    other = make_study(f / "other", n_prompts=4)
    shutil.copy2(other.folder / "study.db", folder / "study.db")
    return folder


def lose_image(f: Path) -> Path:
    folder = study(f)
    next(iter(sorted((folder / "images").glob("*.png")))).unlink()
    return folder


def hidden_password(f: Path) -> Path:
    """A study recorded with a PostgreSQL URL whose password study.json hides."""
    folder = study(f)
    edit_json(folder / STUDY_FILE, lambda d: d.update(db_url="postgresql+psycopg://study:***@db.example.org/study"))
    return folder


# what a study folder given to invite, serve or results can be wrong with, and the message it gets
STUDY_DAMAGE = {
    "not a study": (lambda f: write(f / "plain" / "notes.txt", "x").parent,
                    r"plain is not a study folder \(no study.json\); make one with pixart-bench study create"),
    "a missing folder": (lambda f: f / "nowhere", r"nowhere is not a study folder \(no study.json\)"),
    "truncated study.json": (lambda f: truncate(study(f) / STUDY_FILE).parent,
                             r"cannot read study file .*study.json: invalid JSON at line \d+, column \d+"),
    "study.json of another format": (lambda f: edit_json(study(f) / STUDY_FILE, lambda d: d.update(
        format="pixart-bench generation")).parent, r"study.json is not a pixart-bench study file"),
    "study.json a JSON list": (lambda f: write(study(f) / STUDY_FILE, "[1, 2]").parent,
                               r"study file .*study.json holds a JSON list, not an object"),
    "study.json without models": (lambda f: edit_json(study(f) / STUDY_FILE, lambda d: d.pop("models")).parent,
                                  r"study.json is damaged or from another version: 'models'"),
    "study.json settings not an object": (lambda f: edit_json(study(f) / STUDY_FILE, lambda d: d.update(
        settings="fast")).parent, r"study.json is damaged or from another version"),
    "study.json image table short": (lambda f: edit_json(study(f) / STUDY_FILE, lambda d: d["images"].pop()).parent,
                                     r"study.json: the image table does not match the prompts and models"),
    "images lost a file": (lose_image, r"images lacks 1 image\(s\) of the study, e.g. [0-9a-f]{16}.png"),
    "password hidden, no --db": (hidden_password, r"study.json records the database as postgresql\+psycopg://"
                                                  r"study:\*\*\*@db.example.org/study with its password hidden: "
                                                  r"give it again with --db URL"),
    "the database of another study": (other_study_db,
                                      r"the database sqlite:///.*study.db holds study [0-9a-f]{12}, not [0-9a-f]{12}: "
                                      r"give each study its own database"),
}


def invite(f, i, *extra, folder: Path | None = None) -> list:
    return ["study", "invite", folder or study(f), "--n", "2", *extra]


def serve(f, i, *extra, folder: Path | None = None) -> list:
    return ["study", "serve", folder or study(f), "--port", str(free_port()), "--admin-token", ADMIN, *extra]


def results(f, i, *extra, folder: Path | None = None, out: Path | None = None) -> list:
    return ["study", "results", folder or study(f), "--out", out or f / "results", "--n-boot", "10", *extra]


def damage_cases(command: str, args) -> list:
    """One case per entry of STUDY_DAMAGE: ``args(f, inputs, folder=<damaged study>)`` fails with its message."""
    return [CliCase(f"{command}: {what}", lambda f, i, make=make: args(f, i, folder=make(f)), match)
            for what, (make, match) in STUDY_DAMAGE.items()]


# a listening socket held while a case runs: `study serve` must find the port busy. Each new one closes the
# one before; the last is closed when the test session ends.
_busy: list[socket.socket] = []


def _close_busy() -> None:
    while _busy:
        _busy.pop().close()


atexit.register(_close_busy)


def busy_port() -> int:
    _close_busy()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    _busy.append(s)
    return s.getsockname()[1]


def answered_by_careless_rater(f: Path) -> Path:
    """A study (with attention checks) answered in full by one rater who fails every check."""
    from test_study_cli import answer_all

    s = make_study(f, n_prompts=4, attention_rate=0.25, items_per_rater=4, raters_per_prompt=1)
    answer_all(s, raters=1, fail_checks=True)
    return s.folder


def manifest_folder(f: Path, image) -> Path:
    """A generation-store folder (manifest.json) whose first entry's ``image`` is ``image``."""
    folder = model_folder(f / "models", "okapimodel", PROMPTS, seed=7)
    entries = [{"prompt": p, "image": image if k == 0 else 0, "file": f"samples/{p}_{k:06d}.png"}
               for k, p in enumerate(PROMPTS)]
    write(folder / "manifest.json", json.dumps({"images": entries}))
    return folder


def corrupt_png(f: Path, data: bytes | None = None) -> list[str]:
    """Two good models, and a third whose image of the second prompt is damaged (``data``, or half the file)."""
    specs = [f"{name}={folder}" for name, folder in models(f, 3).items()]
    bad = next((f / "models" / "tapirmodel" / "samples").glob(f"{PROMPTS[1]}_*.png"))
    write(bad, data) if data is not None else truncate(bad)
    return specs


CREATE_OPTIONS = r"""
--attention-rate 1.5             | --attention-rate must be in \[0, 1\), got 1.5
--attention-rate -0.1            | --attention-rate must be in \[0, 1\), got -0.1
--attention-rate nan             | --attention-rate must be in \[0, 1\), got nan
--items-per-rater 0              | --items-per-rater must be at least 1, got 0
--raters-per-prompt 0            | --raters-per-prompt must be between 1 and 1000, got 0
--raters-per-prompt 5000         | --raters-per-prompt must be between 1 and 1000, got 5000
--exclude-after 0                | --exclude-after must be at least 1, got 0
--image-index -1                 | --image-index must be a whole number at least 0, got -1
--image-index 3                  | 8 prompt image\(s\) missing.*zebramodel: 'a quokka number 0 on a hill'
--entry-params 1PID,STUDY        | --entry-params 1PID,STUDY: give URL parameter names, e.g. PROLIFIC_PID
--completion-url https://x.org/  | --completion-url https://x.org/: put \{code\} where the completion code goes
--db not-a-url                   | --db not-a-url: not a database URL .*; use sqlite:///PATH or postgresql\+psycopg://
--db sqlite://                   | --db sqlite://: an in-memory database keeps no answers; give sqlite:///PATH
--db sqlite:////nowhere/a/b.db   | --db sqlite:////nowhere/a/b.db: the folder /nowhere/a does not exist
"""

CLI_CASES = [
    # ---- study prompts ------------------------------------------------------------------------------------
    CliCase("study prompts: --n 0", lambda f, i: ["study", "prompts", "--out", f / "p.txt", "--n", "0"],
            r"--n must be a whole number at least 1, got 0"),
    CliCase("study prompts: --n more than the lists hold",
            lambda f, i: ["study", "prompts", "--out", f / "p.txt", "--n", "100000"],
            r"100000 prompts need 16667 from T2I-CompBench's color list, which has only \d+ unused distinct prompts: "
            r"ask for fewer prompts"),
    CliCase("study prompts: --seed -1", lambda f, i: ["study", "prompts", "--out", f / "p.txt", "--seed", "-1"],
            r"--seed must be a whole number at least 0, got -1"),
    CliCase("study prompts: --out a folder",
            lambda f, i: ["study", "prompts", "--out", write(f / "p.txt" / "keep.txt", "x").parent, "--n", "6"],
            r"--out .*p.txt is a folder; give a file path"),
    CliCase("study prompts: --out in a missing folder",
            lambda f, i: ["study", "prompts", "--out", f / "nowhere" / "p.txt", "--n", "6"],
            r"cannot write the prompt list .*p.txt: the folder .*nowhere does not exist"),
    CliCase("study prompts: --out under a file",
            lambda f, i: ["study", "prompts", "--out", write(f / "notes", "x") / "p.txt", "--n", "6"],
            r"--out .*p.txt: .*notes is a file"),
    # ---- study create: models ---------------------------------------------------------------------------------
    CliCase("study create: a model folder missing",
            lambda f, i: create(f, i, specs=[f"zebramodel={models(f)['zebramodel']}", f"okapimodel={f / 'gone'}"]),
            r"--model okapimodel: image folder .*gone does not exist"),
    CliCase("study create: a model folder is a file",
            lambda f, i: create(f, i, specs=[f"zebramodel={models(f)['zebramodel']}",
                                             f"okapimodel={write(f / 'okapi.png', b'x')}"]),
            r"--model okapimodel: .*okapi.png is a file, not an image folder"),
    CliCase("study create: a folder with neither manifest nor samples/",
            lambda f, i: create(f, i, specs=[f"zebramodel={models(f)['zebramodel']}",
                                             f"okapimodel={write(f / 'okapi' / 'a.png', b'x').parent}"]),
            r"--model okapimodel: .*okapi has neither a manifest.json \(from pixart-bench generate\) nor a samples/ "
            r"folder of <prompt>_<NNNNNN>.png images"),
    CliCase("study create: a misnamed file in samples/",
            lambda f, i: create(f, i, specs=[f"zebramodel={models(f)['zebramodel']}", "okapimodel=" + str(write(
                f / "okapi" / "samples" / "picture.png", b"x").parents[1])]),
            r"--model okapimodel: .*picture.png is not named <prompt>_<NNNNNN>.png"),
    CliCase("study create: a damaged manifest.json",
            lambda f, i: create(f, i, specs=[f"zebramodel={models(f)['zebramodel']}", "okapimodel=" + str(truncate(
                manifest_folder(f, 0) / "manifest.json").parent)]),
            r"--model okapimodel: cannot read generation manifest .*manifest.json: invalid JSON"),
    CliCase("study create: a manifest entry with a bad image number",
            lambda f, i: create(f, i, specs=[f"zebramodel={models(f)['zebramodel']}",
                                             f"okapimodel={manifest_folder(f, 'first')}"]),
            r"--model okapimodel: .*manifest.json: image 'samples/a quokka number 0 on a hill_000000.png' has a "
            r"non-integer \"image\" number"),
    CliCase("study create: a prompt missing for one model",
            lambda f, i: create(f, i, specs=[f"zebramodel={models(f)['zebramodel']}", "okapimodel={}".format(
                model_folder(f / "m", "okapimodel", PROMPTS[:2] + PROMPTS[3:], seed=5))]),
            r"1 prompt image\(s\) missing, every prompt needs an image from every model: okapimodel: "
            r"'a quokka number 2 on a hill'"),
    CliCase("study create: --model without =", lambda f, i: create(f, i, specs=["zebramodel", "okapimodel=x"]),
            r"--model zebramodel: give NAME=DIR, e.g. --model pixart=out/pixart/images"),
    CliCase("study create: --model with an empty DIR", lambda f, i: create(f, i, specs=["zebramodel=", "okapi=x"]),
            r"--model zebramodel=: give NAME=DIR"),
    CliCase("study create: --model name with a space", lambda f, i: create(f, i, specs=["my model=x", "okapi=y"]),
            r"--model my model=x: a model name is letters, digits, '.', '_' or '-' \(at most 64\)"),
    CliCase("study create: the same model name twice",
            lambda f, i: create(f, i, specs=[f"zebramodel={d}" for d in models(f).values()]),
            r"--model zebramodel is given twice; each model needs its own NAME"),
    CliCase("study create: one model",
            lambda f, i: create(f, i, specs=[f"zebramodel={models(f)['zebramodel']}"]),
            r"a ranking study needs at least 2 models, got 1 \(--model NAME=DIR, repeated\)"),
    CliCase("study create: nine models",
            lambda f, i: create(f, i, specs=[f"{n}={d}" for n, d in models(f, 9).items()]),
            r"9 models: at most 8 images fit on a rater's screen"),
    # ---- study create: prompts ----------------------------------------------------------------------------------
    CliCase("study create: --prompts missing", lambda f, i: create(f, i, prompts=f / "nowhere.txt"),
            r"prompt file not found: .*nowhere.txt"),
    CliCase("study create: --prompts empty", lambda f, i: create(f, i, prompts=write(f / "p.txt", "\n  \n")),
            r"prompt file .*p.txt has no prompts \(one prompt per line\)"),
    CliCase("study create: --prompts a folder", lambda f, i: create(f, i, prompts=write(f / "p" / "a.txt", "x").parent),
            r"prompt file .*p is a folder, not a file"),
    CliCase("study create: --prompts not UTF-8", lambda f, i: create(f, i, prompts=write(f / "p.txt", b"a \xff b\n")),
            r"cannot read prompt file .*p.txt: not UTF-8 text \(byte 2"),
    CliCase("study create: --prompts repeats a prompt",
            lambda f, i: create(f, i, prompts=prompt_file(f, PROMPTS + PROMPTS[1:2])),
            r"the prompt list repeats a prompt, 'a quokka number 1 on a hill'; each prompt is one study item"),
    CliCase("study create: a prompt with '_'", lambda f, i: create(f, i, prompts=write(f / "p.txt", "a_b\n")),
            r"prompt file .*p.txt, line 1: the prompt 'a_b' contains '_' or '/'"),
    CliCase("study create: one prompt with attention checks",
            lambda f, i: create(f, i, prompts=prompt_file(f, PROMPTS[:1])),
            r"attention checks show another prompt's image: they need at least 2 prompts \(or --attention-rate 0\)"),
    # ---- study create: images and the output -------------------------------------------------------------------
    CliCase("study create: an unreadable PNG", lambda f, i: create(f, i, specs=corrupt_png(f, b"\x89PNG not really")),
            r"cannot read image .*tapirmodel.samples.a quokka number 1 on a hill_000001.png: "),
    CliCase("study create: a truncated PNG", lambda f, i: create(f, i, specs=corrupt_png(f)),
            r"cannot read image .*tapirmodel.samples.a quokka number 1 on a hill_000001.png: .*truncated"),
    CliCase("study create: --out already holds a study", lambda f, i: create(f, i, out=study(f / "old")),
            r"old.study already holds a study \(study.json\); choose another --out"),
    CliCase("study create: --out is a file", lambda f, i: create(f, i, out=write(f / "study.txt", "mine")),
            r"--out .*study.txt is a file, not a folder"),
    *option_cases("study create", create, CREATE_OPTIONS),
    CliCase("study create: --db a server that does not answer",
            lambda f, i: create(f, i, "--db", "postgresql+psycopg://u:secret@127.0.0.1:1/x"),
            r"--db postgresql\+psycopg://u:\*\*\*@127.0.0.1:1/x: cannot open the study database: .*refused"),
    # ---- study invite ----------------------------------------------------------------------------------------
    *damage_cases("study invite", invite),
    CliCase("study invite: --n 0", lambda f, i: invite(f, i, "--n", "0"), r"--n must be between 1 and 100000, got 0"),
    CliCase("study invite: --n -3", lambda f, i: invite(f, i, "--n", "-3"),
            r"--n must be between 1 and 100000, got -3"),
    CliCase("study invite: --url without http", lambda f, i: invite(f, i, "--url", "study.example.org"),
            r"--url study.example.org: give the address raters open, e.g. https://study.example.org/"),
    CliCase("study invite: --url ftp", lambda f, i: invite(f, i, "--url", "ftp://study.example.org/"),
            r"--url ftp://study.example.org/: give the address raters open"),
    CliCase("study invite: --crowd with a bad --url", lambda f, i: invite(f, i, "--crowd", "--url", "localhost:7860"),
            r"--url localhost:7860: give the address raters open"),
    # ---- study serve (every case fails before the launch) ---------------------------------------------------------
    *damage_cases("study serve", serve),
    CliCase("study serve: --concurrency 0", lambda f, i: serve(f, i, "--concurrency", "0"),
            r"--concurrency must be a whole number at least 1, got 0"),
    CliCase("study serve: --port 0", lambda f, i: serve(f, i, "--port", "0"),
            r"--port must be a whole number from 1 to 65,535, got 0"),
    CliCase("study serve: --port 70000", lambda f, i: serve(f, i, "--port", "70000"),
            r"--port must be a whole number from 1 to 65,535, got 70000"),
    CliCase("study serve: a short --admin-token", lambda f, i: serve(f, i, "--admin-token", "abc"),
            r"--admin-token must be at least 8 characters \(it guards the unblinded export\), got 3"),
    CliCase("study serve: the port is busy", lambda f, i: serve(f, i, "--port", str(busy_port())),
            r"--port \d+: 127.0.0.1:\d+ is already in use \(another server\?\); choose another --port"),
    CliCase("study serve: --host not of this machine", lambda f, i: serve(f, i, "--host", "192.0.2.1"),
            r"--host 192.0.2.1: cannot listen on 192.0.2.1:\d+ \(.*\); give an address of this machine"),
    CliCase("study serve: --root-path without /", lambda f, i: serve(f, i, "--root-path", "study"),
            r"--root-path study: give the URL prefix from its leading /, e.g. /study"),
    # ---- study results ---------------------------------------------------------------------------------------
    *damage_cases("study results", results),
    CliCase("study results: no answers yet", lambda f, i: results(f, i),
            r"study: no answers yet \(0 raters started\); results need answered items: share links from "
            r"pixart-bench study invite"),
    CliCase("study results: every rater excluded",
            lambda f, i: results(f, i, folder=answered_by_careless_rater(f)),
            r"every rater who answered \(1\) failed attention checks \(--exclude-after 1\) and is excluded; "
            r"--include-excluded keeps them"),
    CliCase("study results: --out an existing file", lambda f, i: results(f, i, out=write(f / "res.json", "{}")),
            r"--out .*res.json is a file, not a folder; give a folder path"),
    CliCase("study results: --n-boot 0", lambda f, i: results(f, i, "--n-boot", "0"),
            r"--n-boot must be a whole number at least 1, got 0"),
    CliCase("study results: --seed -1", lambda f, i: results(f, i, "--seed", "-1"),
            r"--seed must be a whole number at least 0, got -1"),
    # ---- study demo (every case fails before images are made) -------------------------------------------------------
    CliCase("study demo: --prompts 0",
            lambda f, i: ["study", "demo", "--out", f / "demo", "--no-serve", "--prompts", "0"],
            r"--prompts must be a whole number at least 1, got 0"),
    CliCase("study demo: --prompts more than a suite holds",
            lambda f, i: ["study", "demo", "--out", f / "demo", "--no-serve", "--prompts", "49"],
            r"--prompts 49: the single suite has 48 prompts; ask for at most that many"),
    CliCase("study demo: --port 0", lambda f, i: ["study", "demo", "--out", f / "demo", "--port", "0"],
            r"--port must be a whole number from 1 to 65,535, got 0"),
    CliCase("study demo: the port is busy",
            lambda f, i: ["study", "demo", "--out", f / "demo", "--port", str(busy_port())],
            r"--port \d+: 127.0.0.1:\d+ is already in use"),
    CliCase("study demo: --out is a file",
            lambda f, i: ["study", "demo", "--out", write(f / "demo", "x"), "--no-serve"],
            r"--out .*demo is a file, not a folder"),
]


# ---- library calls -------------------------------------------------------------------------------------------

def service(f: Path, **settings) -> RatingService:
    """A RatingService over a fresh tiny study (its database in the case's folder)."""
    s = make_study(f, n_prompts=4, **settings)
    return RatingService(s, StudyStore(s.database_url(), s.study_id), ADMIN)


def ranks_case(name: str, ranks: dict, match: str, **settings) -> ApiCase:
    """``RatingService.check_ranks(ranks)`` on a two-model study (``settings``) fails with ``match``."""
    return ApiCase(f"RatingService.check_ranks: {name}", lambda f, i: (service(f, **settings), ranks),
                   lambda svc, r: svc.check_ranks(r), StudyError, match)


def entered(f: Path) -> tuple[RatingService, int]:
    """A service and the id of a rater who entered with an invite."""
    svc = service(f)
    return svc, svc.enter({"token": svc.store.add_invites(1)[0]}).rater_id


API_CASES = [
    ApiCase("create_study: no prompts", lambda f, i: ([], models(f), f / "study"), create_study, StudyError,
            r"no prompts: give --prompts FILE with one prompt per line"),
    ApiCase("create_study: one model", lambda f, i: (PROMPTS, models(f, 1), f / "study"), create_study, StudyError,
            r"a ranking study needs at least 2 models, got 1"),
    ApiCase("create_study: a model folder missing",
            lambda f, i: (PROMPTS, {**models(f), "tapirmodel": f / "gone"}, f / "study"), create_study, StudyError,
            r"--model tapirmodel: image folder .*gone does not exist"),
    ApiCase("create_study: --out already holds a study", lambda f, i: (PROMPTS, models(f), study(f / "old")),
            create_study, StudyError, r"already holds a study \(study.json\); choose another --out"),
    ApiCase("create_study: a negative image_index", lambda f, i: (PROMPTS, models(f), f / "study"),
            lambda p, m, o: create_study(p, m, o, image_index=-1), StudyError,
            r"--image-index must be a whole number at least 0, got -1"),
    ApiCase("create_study: bad settings", lambda f, i: (PROMPTS, models(f), f / "study"),
            lambda p, m, o: create_study(p, m, o, settings=Settings(items_per_rater=0)), StudyError,
            r"--items-per-rater must be at least 1, got 0"),
    ApiCase("create_study: a database URL of another kind", lambda f, i: (PROMPTS, models(f), f / "study"),
            lambda p, m, o: create_study(p, m, o, db_url="mysql+nodriver://u@h/db"), StudyError,
            r"--db mysql\+nodriver://u@h/db: "),
    ApiCase("load_study: not a study", lambda f, i: (f,), load_study, StudyError, r"is not a study folder"),
    ApiCase("load_study: truncated study.json", lambda f, i: (truncate(study(f) / STUDY_FILE, 0.8).parent,),
            load_study, StudyError, r"cannot read study file .*study.json: invalid JSON"),
    ApiCase("load_study: prompts not a list",
            lambda f, i: (edit_json(study(f) / STUDY_FILE, lambda d: d.update(prompts=7)).parent,), load_study,
            StudyError, r"study.json is damaged or from another version"),
    ApiCase("load_study: an image table of text",
            lambda f, i: (edit_json(study(f) / STUDY_FILE, lambda d: d.update(images="abc")).parent,), load_study,
            StudyError, r"study.json is damaged or from another version|the image table does not match"),
    ApiCase("load_study: a lost image", lambda f, i: (lose_image(f),), load_study, StudyError,
            r"images lacks 1 image\(s\) of the study"),
    ApiCase("Study.database_url: a hidden password", lambda f, i: (load_study(hidden_password(f)),),
            lambda s: s.database_url(), StudyError, r"with its password hidden: give it again with --db URL"),
    ApiCase("StudyStore: the database of another study",
            lambda f, i: (make_study(f / "a", n_prompts=4).database_url(), make_study(f / "b", n_prompts=4).study_id),
            StudyStore, StudyError, r"the database sqlite:///.*a.study.study.db holds study [0-9a-f]{12}, not "
                                    r"[0-9a-f]{12}: give each study its own database"),
    ApiCase("StudyStore: not a URL", lambda f, i: ("not a url", "abc"), StudyStore, StudyError,
            r"--db not a url: not a database URL"),
    ApiCase("StudyStore: a SQLite file that is not a database",
            lambda f, i: (f"sqlite:///{write(f / 'x.db', b'this is not a database file' * 40)}", "abc"),
            StudyStore, StudyError, r"cannot open the study database sqlite:///.*x.db: file is not a database"),
    ApiCase("RatingService: a short admin token", lambda f, i: (make_study(f, n_prompts=4),),
            lambda s: RatingService(s, StudyStore(s.database_url(), s.study_id), "short"), StudyError,
            r"--admin-token must be at least 8 characters"),
    ranks_case("a rank missing", {"quality": [1], "alignment": [1, 2]}, r"quality: give every image a rank"),
    ranks_case("a criterion missing", {"quality": [1, 2]}, r"alignment: give every image a rank"),
    ranks_case("an empty rank", {"quality": [1, ""], "alignment": [1, 2]}, r"quality: give every image a rank"),
    ranks_case("text", {"quality": [1, 2], "alignment": ["1", "best"]},
               r"alignment: ranks are whole numbers from 1 to 2"),
    ranks_case("out of range", {"quality": [1, 3], "alignment": [1, 2]},
               r"quality: ranks are whole numbers from 1 to 2"),
    ranks_case("zero", {"quality": [0, 1], "alignment": [1, 2]}, r"quality: ranks are whole numbers from 1 to 2"),
    ranks_case("a tie where ties are off", {"quality": [1, 2], "alignment": [1, 1]},
               r"alignment: give each image a different rank, from 1 \(best\) to 2"),
    ranks_case("a tie without a first", {"quality": [2, 2], "alignment": [1, 2]},
               r"quality: the best image\(s\) get rank 1", ties=True),
    ApiCase("RatingService.submit: an item the rater does not have", lambda f, i: entered(f),
            lambda svc, rater: svc.submit(rater, 99, {"quality": [1, 2], "alignment": [2, 1]}), StudyError,
            r"rater 1 has no item 99"),
    ApiCase("invite_link: not http", lambda f, i: ("localhost:7860", "t"), invite_link, StudyError,
            r"--url localhost:7860: give the address raters open"),
    ApiCase("default_prompts: n = 0", lambda f, i: (0,), default_prompts, StudyError,
            r"--n must be a whole number at least 1, got 0"),
    ApiCase("write_prompts: a prompt with a line break", lambda f, i: (["a\nb"], f / "p.txt"), write_prompts,
            StudyError, r"1 prompt\(s\) cannot be written one per line, e.g. 'a\\nb'"),
    ApiCase("write_prompts: a folder", lambda f, i: (["a cat"], write(f / "p.txt" / "keep", "x").parent),
            write_prompts, StudyError, r"cannot write the prompt list .*p.txt: it is a folder"),
]


# ---- the --out rule: a folder holding another command's run is refused, naming it (bench.errors.check_out) ----
from bad_input_world import TAKEN, another_run  # noqa: E402

CLI_CASES += [
    CliCase("study create: --out holds another command's run", lambda f, i: [
        "study", "create", "--model", f"a={f / 'a'}", "--model", f"b={f / 'b'}", "--out", another_run(f, i)],
        r"--out .*demo-report " + TAKEN),
    CliCase("study results: --out holds another command's run", lambda f, i: [
        "study", "results", f / "study", "--out", another_run(f, i)], r"--out .*demo-report " + TAKEN),
    CliCase("study demo: --out holds another command's run", lambda f, i: [
        "study", "demo", "--out", another_run(f, i), "--no-serve"], r"--out .*demo-report " + TAKEN),
]
