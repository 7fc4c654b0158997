"""``pixart-bench study``: host a blind ranking study for real raters, and aggregate it.

It parses options and prints; the work is ``human_study`` (design, storage, service, app, answers,
aggregate, demo).
"""

from __future__ import annotations

from pathlib import Path

import typer

from bench.cli.app import app

study_app = typer.Typer(help="A blind ranking study of several models' images, hosted for real raters (Gradio), "
                        "and its aggregation.", no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(study_app, name="study")

ADMIN_ENV = "PIXART_STUDY_ADMIN_TOKEN"
DB_OPTION = typer.Option(None, "--db", help="Database URL, if not the one recorded at create (needed when it has a "
                         "password): sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB.")

STUDY_EXAMPLES = """[bold]Examples[/bold]

  [dim]# the 300 default prompts, to generate each model's images with `pixart-bench generate`[/dim]
  pixart-bench study prompts --out prompts.txt
  pixart-bench generate --ckpt PixArt-alpha/PixArt-XL-2-512x512 --prompts prompts.txt --images-per-prompt 1 \\
      --out out/pixart --device cuda --dtype fp16

  [dim]# a study of two models, 5 raters per prompt, 30 prompts per rater, answers in PostgreSQL[/dim]
  pixart-bench study create --prompts prompts.txt --model pixart=out/pixart --model sdxl=out/sdxl \\
      --out out/study --db postgresql+psycopg://study:PASSWORD@localhost/study

  pixart-bench study invite out/study --n 50 --url https://study.example.org/   [dim]# one link per rater[/dim]
  pixart-bench study invite out/study --crowd --url https://study.example.org/  [dim]# Prolific's study URL[/dim]
  pixart-bench study serve out/study --host 0.0.0.0 --port 7860 --db postgresql+psycopg://study:PASSWORD@localhost/study
  pixart-bench study results out/study --out out/study-results

  [dim]# click through a small study of the bundled world model against the world's renderer[/dim]
  pixart-bench study demo
"""


def _check_port(host: str, port: int) -> None:
    """StudyError unless ``host:port`` can be listened on now: the port is a number of 1 to 65535 and no other
    server holds it. Checked before anything is printed or launched, so a busy port never starts a half
    server (the web server binds the same way, with SO_REUSEADDR)."""
    import errno
    import socket

    from bench.errors import check_range
    from human_study.errors import StudyError

    check_range("--port", port, 1, 65535, whole=True)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise StudyError(f"--host {host}: not an address of this machine ({e.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise StudyError(f"--port {port}: {host}:{port} is already in use (another server?); choose another "
                                 "--port") from None
            raise StudyError(f"--host {host}: cannot listen on {host}:{port} ({e.strerror}); give an address of this "
                             "machine, e.g. 127.0.0.1 or 0.0.0.0") from None


def _load(folder: Path, db: str | None):
    from human_study.design import load_study
    from human_study.storage import StudyStore

    study = load_study(folder)
    return study, StudyStore(study.database_url(db), study.study_id)


def _same_study(folder: Path, study_folder: Path) -> bool:
    """Whether ``folder/results.json`` aggregates the study in ``study_folder``."""
    import json

    recorded = json.loads((folder / "results.json").read_text()).get("study", {}).get("folder")
    return recorded is not None and Path(recorded).resolve() == study_folder.resolve()


def _demo_prompts(folder: Path):
    """The prompts per category of the demo study in ``folder`` (None when unreadable)."""
    import json

    try:
        return json.loads((folder / "study" / "study.json").read_text())["prompt_source"]["per_category"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


@study_app.command("prompts", epilog=STUDY_EXAMPLES)
def prompts_command(
    out: Path = typer.Option(..., "--out", help="Text file to write, one prompt per line."),
    n: int = typer.Option(300, "--n", help="How many prompts (an equal share of each of T2I-CompBench's six paper "
                          "categories)."),
    seed: int = typer.Option(0, "--seed"),
):
    """Write the default study prompts: N drawn reproducibly from the shipped T2I-CompBench lists."""
    from bench.errors import check_out_file
    from human_study.prompts import default_prompts, write_prompts

    check_out_file(out, "--out")
    prompts, source = default_prompts(n, seed)
    write_prompts(prompts, out)
    shares = ", ".join(f"{entry['category']}: {entry['count']}" for entry in source["lists"])
    typer.echo(f"{len(prompts)} prompts → {out} ({shares})")


@study_app.command("create", epilog=STUDY_EXAMPLES)
def create_command(
    model: list[str] = typer.Option(..., "--model", help="NAME=DIR, once per model: a folder from `pixart-bench "
                                    "generate` (manifest.json) or in the official layout (samples/<prompt>_N.png)."),
    out: Path = typer.Option(..., "--out", help="The study folder to create."),
    prompts: Path = typer.Option(None, "--prompts", help="One prompt per line. Default: the 300 prompts of "
                                 "`pixart-bench study prompts`."),
    db: str = typer.Option(None, "--db", help="Database URL (default: sqlite in the study folder)."),
    raters_per_prompt: int = typer.Option(5, "--raters-per-prompt", help="Target ratings of each prompt."),
    items_per_rater: int = typer.Option(30, "--items-per-rater", help="Prompts in each rater's sequence (at most)."),
    attention_rate: float = typer.Option(0.1, "--attention-rate", help="Attention checks per item (0 for none)."),
    exclude_after: int = typer.Option(1, "--exclude-after", help="Failed checks that exclude a rater from results."),
    ties: bool = typer.Option(False, "--ties/--no-ties", help="May a rater give two images the same rank?"),
    seed: int = typer.Option(0, "--seed", help="Seeds the plan, the screen orders and the checks."),
    image_index: int = typer.Option(0, "--image-index", help="Which image of each prompt to show (0: the first)."),
    entry_params: str = typer.Option("PROLIFIC_PID,STUDY_ID,SESSION_ID", "--entry-params", help="URL parameters a "
                                     "crowd platform adds; the first identifies the rater."),
    completion_code: str = typer.Option(None, "--completion-code", help="One code for every rater (crowd "
                                        "platforms); default: a code per rater."),
    completion_url: str = typer.Option(None, "--completion-url", help="Link shown at the end, with {code}, e.g. "
                                       "https://app.prolific.com/submissions/complete?cc={code}"),
    title: str = typer.Option("Image ranking study", "--title"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Create a study: check every model has an image of every prompt, copy them blind, write the plan."""
    from bench.generate.plan import read_prompt_file
    from human_study.design import Settings, create_study, describe_plan, parse_model
    from human_study.errors import StudyError
    from human_study.prompts import default_prompts

    if out.is_dir():  # a study already there is never replaced (create_study says so)
        from bench.errors import check_out

        check_out(out, "study create", overwrite=overwrite)
    models = {}
    for spec in model:
        name, folder = parse_model(spec)
        if name in models:
            raise StudyError(f"--model {name} is given twice; each model needs its own NAME")
        models[name] = folder
    if prompts is None:
        prompt_list, source = default_prompts()
    else:
        prompt_list, source = read_prompt_file(prompts), {"file": str(prompts)}  # as `generate` reads it
    settings = Settings(items_per_rater=items_per_rater, raters_per_prompt=raters_per_prompt,
                        attention_rate=attention_rate, exclude_after=exclude_after, ties=ties, seed=seed,
                        entry_params=tuple(p.strip() for p in entry_params.split(",") if p.strip()),
                        completion_code=completion_code, completion_url=completion_url, title=title)
    study = create_study(prompt_list, models, out, settings=settings, db_url=db, image_index=image_index,
                         prompt_source=source)
    typer.echo(f"study {study.study_id}: {len(study.prompts)} prompts × {len(models)} models in {out}")
    typer.echo(describe_plan(study.plan_summary()))
    typer.echo(f"next: pixart-bench study invite {out} --n {study.planned_raters}   and   "
               f"pixart-bench study serve {out}")


@study_app.command("invite", epilog=STUDY_EXAMPLES)
def invite_command(
    study_folder: Path = typer.Argument(..., metavar="STUDY"),
    n: int = typer.Option(1, "--n", help="How many invite links (one rater each)."),
    url: str = typer.Option("http://127.0.0.1:7860/", "--url", help="Where raters reach `study serve`."),
    crowd: bool = typer.Option(False, "--crowd", help="Print the one link for a crowd platform instead (its "
                               "participant id identifies each rater)."),
    db: str = DB_OPTION,
):
    """Print invite links, one per line, each with its own random token (stored only as a hash)."""
    from human_study.errors import StudyError
    from human_study.invites import check_url, crowd_link, invite_link

    check_url(url)  # before the database: a bad --url must add no rater
    if not crowd and not 1 <= n <= 100_000:
        raise StudyError(f"--n must be between 1 and 100000, got {n}")
    study, store = _load(study_folder, db)
    try:
        if crowd:
            typer.echo(crowd_link(url, store.secret("entry_key"), study.settings.entry_params))
            return
        for token in store.add_invites(n):
            typer.echo(invite_link(url, token))
    finally:
        store.close()


@study_app.command("serve", epilog=STUDY_EXAMPLES)
def serve_command(
    study_folder: Path = typer.Argument(..., metavar="STUDY"),
    host: str = typer.Option("127.0.0.1", "--host", help="0.0.0.0 to accept raters from other machines."),
    port: int = typer.Option(7860, "--port"),
    db: str = DB_OPTION,
    admin_token: str = typer.Option(None, "--admin-token", envvar=ADMIN_ENV, help="The admin's token (default: a "
                                    f"random one, printed; or set {ADMIN_ENV})."),
    concurrency: int = typer.Option(16, "--concurrency", help="Answers handled at once."),
    root_path: str = typer.Option(None, "--root-path", help="The URL prefix behind a reverse proxy, e.g. /study."),
    url: str = typer.Option(None, "--url", help="The address raters open, for the printed links (behind a proxy: "
                            "e.g. https://study.example.org/study/)."),
):
    """Serve the study to raters (Gradio). Stop with Ctrl-C; a restart resumes every rater."""
    from bench.errors import check_range
    from human_study.errors import StudyError
    from human_study.service import RatingService, check_admin_token
    from human_study.storage import new_token

    # every option is checked, and the port tried, before anything is printed or the server starts
    check_range("--concurrency", concurrency, 1, whole=True)
    if admin_token is not None:
        check_admin_token(admin_token)
    if root_path and not root_path.startswith("/"):
        raise StudyError(f"--root-path {root_path}: give the URL prefix from its leading /, e.g. /study")
    study, store = _load(study_folder, db)
    _check_port(host, port)
    from human_study.app import launch

    token = admin_token or new_token()
    service = RatingService(study, store, token)
    base = url or f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}{root_path or ''}/"
    base = base if base.endswith("/") else base + "/"
    typer.echo(f"admin dashboard: {base}?admin={token}")
    typer.echo(f"rater links: pixart-bench study invite {study_folder} --n N --url {base}")
    launch(study, service, host=host, port=port, concurrency=concurrency, root_path=root_path, block=True)


@study_app.command("results", epilog=STUDY_EXAMPLES)
def results_command(
    study_folder: Path = typer.Argument(..., metavar="STUDY"),
    out: Path = typer.Option(..., "--out", help="Folder for results.json, the CSVs and the figure."),
    db: str = DB_OPTION,
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap replicates for the 95% CIs."),
    seed: int = typer.Option(0, "--seed"),
    include_excluded: bool = typer.Option(False, "--include-excluded", help="Keep raters who failed checks."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Aggregate the answers: first-place shares, mean ranks, Plackett–Luce strengths, agreement."""
    from bench.errors import check_out, check_range
    from human_study.aggregate import aggregate, write_results
    from human_study.answers import tables
    from human_study.errors import StudyError

    # before the bootstrap, which can take a while; the same study's results are written again (more answers)
    check_out(out, "study results", same=lambda folder: _same_study(folder, study_folder), overwrite=overwrite)
    check_range("--n-boot", n_boot, 1, whole=True)
    check_range("--seed", seed, 0, whole=True)
    study, store = _load(study_folder, db)
    try:
        judgements, raters = tables(study, store.rows())
    finally:
        store.close()
    if judgements.empty:
        raise StudyError(f"{study_folder}: no answers yet ({len(raters)} raters started); results need answered "
                         "items: share links from pixart-bench study invite")
    answered = raters[raters["rater"].isin(set(judgements["rater"]))]
    if not include_excluded and answered["excluded"].all():
        raise StudyError(f"every rater who answered ({len(answered)}) failed attention checks (--exclude-after "
                         f"{study.settings.exclude_after}) and is excluded; --include-excluded keeps them")
    result = aggregate(judgements, raters, study.models, n_boot=n_boot, seed=seed,
                       include_excluded=include_excluded)
    result["study"] = {"study_id": study.study_id, "folder": str(study_folder), "prompts": len(study.prompts),
                       "models": study.models, "prompt_source": study.prompt_source}
    files = write_results(result, out)
    typer.echo(f"{len(files)} files → {out}")
    for criterion in ("quality", "alignment"):
        shares = result["criteria"].get(criterion, {}).get("first_place_share", {})
        if shares:
            typer.echo(f"{criterion:9s} first place: " + ", ".join(
                f"{m} {v['estimate']:.1%}" for m, v in shares.items()))


@study_app.command("demo", epilog=STUDY_EXAMPLES)
def demo_command(
    out: Path = typer.Option(Path("out/study-demo"), "--out"),
    prompts: int = typer.Option(2, "--prompts", help="Prompts per world category."),
    port: int = typer.Option(7860, "--port"),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="--no-serve: create the study and print links only."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """A small study of the bundled world model against the world's renderer, to click through locally."""
    from bench.errors import check_out
    from human_study.demo import make_demo_study

    # a demo study of the same --prompts is reused; one of other --prompts, with its answers, is never replaced
    check_out(out, "study demo", same=lambda folder: _demo_prompts(folder) == prompts, replace=False,
              overwrite=overwrite)
    if serve:  # a busy or impossible port is refused before any image is made
        _check_port("127.0.0.1", port)

    study, rater_url, admin_url, admin_token = make_demo_study(out, prompts_per_category=prompts, port=port)
    typer.echo(f"rater link:  {rater_url}")
    typer.echo(f"admin link:  {admin_url}")
    typer.echo(f"results:     pixart-bench study results {out / 'study'} --out {out / 'results'}")
    if serve:
        from human_study.app import launch
        from human_study.service import RatingService
        from human_study.storage import StudyStore

        store = StudyStore(study.database_url(), study.study_id)
        launch(study, RatingService(study, store, admin_token), port=port, block=True)
