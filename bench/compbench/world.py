"""T2I-CompBench on the shapes world: the one place where a learned metric meets ground truth.

``pixart-bench compbench --suite world`` (the default for the bundled world model) generates the
world's prompt suites (``bench/world/suites/``: single, color, shape, texture, spatial, complex)
through the generation store, in the official layout, and scores every image with one of the world's
two pixel readers (T2I-CompBench's per-image definitions on the facts it reads), named in the results:

- ``judge`` (the default): the world judge (``bench.world.judge``), which reads model images as people
  do; its measured agreement with people on held-out labelled model images (``judge_agreement_record``,
  docs/world.md) is recorded with the results and shown beside every suite;
- ``oracle``: the exact oracle (``bench.world.oracle``), exact on renders but rejecting most objects a
  model draws.

When evaluator weights are given, the learned metrics score the same images beside it, B-VQA for the
attribute suites (single, color, shape, texture, complex) and UniDet's 2D rules for spatial, and the
results say how far they agree with the reader that scored (``agreement_with_oracle``, its name from
version 1): the mean of each, and the Pearson correlation over images.

``--suite world --images DIR`` scores world images made elsewhere instead, in the layout the
generating run writes: ``DIR/world-<suite>/samples/<prompt>_<NNNNNN>.png`` (or ``DIR/<suite>/samples/``),
every prompt one of the suite's. Every folder is found and checked before anything is scored.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict
from pathlib import Path

import numpy as np

from bench.compbench.metrics import Evaluators, Scorers
from bench.compbench.needs import LEARNED
from bench.compbench.results import per_image_rows, summarise
from bench.compbench.samples import SAMPLES, ImageScore, SampleImage, list_samples, open_image
from bench.errors import BenchError
from pixart.files import package_versions, write_json_atomic

READERS = ("judge", "oracle")  # --world-judge: the key of each suite's result, and of the record's "reader"
METRIC = {"judge": "world judge", "oracle": "oracle"}  # the per-image rows' metric name, and what tables say
ORACLE_NAME = "exact oracle (bench.world.oracle)"
SUITES_NAME = "bench/world/suites"  # where the suites' prompts are, as error messages name it
GENERATION_SETTINGS = ("images_per_prompt", "seed", "generation_batch")  # not recorded for --images


def _check_reader(judge: str) -> None:
    if judge not in READERS:
        raise BenchError(f"--world-judge must be judge or oracle, got {judge!r}")


def world_scores(images, specs: dict[str, dict], judge: str = "judge") -> list[ImageScore]:
    """Each image's score by the reader ``judge`` ("judge": the world judge, "oracle": the exact oracle);
    BenchError naming an image whose prompt is not in ``specs``."""
    _check_reader(judge)
    if judge == "judge":
        from bench.world.judge import judge_score as score
    else:
        from bench.world.oracle import score

    out = []
    for im in images:
        if im.prompt not in specs:
            raise BenchError(f"{im.path}: its prompt {im.prompt!r} is not in the world suite")
        verdict = score(open_image(im.path), specs[im.prompt])
        out.append(ImageScore(verdict["score"], {"missing": verdict["details"]["missing"]}))
    return out


def reader_record(judge: str = "judge") -> dict:
    """results.json's "reader": {"key", "name"} and, for the judge, "weights_sha256" and "agreement" (its
    held-out agreement with people, ``judge_agreement_record()``: None when not measured for these weights)."""
    _check_reader(judge)
    if judge == "oracle":
        return {"key": "oracle", "name": ORACLE_NAME}
    from bench.world.judge import JUDGE_NAME, judge_agreement_record
    from bench.world.judge.network import DEFAULT_WEIGHTS
    from pixart.files import sha256_files

    return {"key": "judge", "name": JUDGE_NAME, "weights_sha256": sha256_files([DEFAULT_WEIGHTS]),
            "agreement": judge_agreement_record()}


def people_words(reader: dict | None, suite: str) -> str:
    """The judge's held-out precision / recall against people on ``suite`` ("not measured" without a
    record or the suite in it; "n/a" for a ratio that is undefined); "-" for the oracle."""
    if not reader or reader.get("key") != "judge":
        return "-"
    a = ((reader.get("agreement") or {}).get("categories") or {}).get(suite)
    if not isinstance(a, dict) or not a:
        return "not measured"

    def f(v, ci):
        return "n/a" if v is None else (f"{v:.2f}" if not ci else f"{v:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]")

    return (f"{f(a.get('precision'), a.get('precision_ci95'))} / {f(a.get('recall'), a.get('recall_ci95'))} "
            f"({a.get('images', '?')} images)")


def agreement(reader: list[ImageScore], learned: list[ImageScore]) -> dict:
    """Mean of each and their Pearson correlation over images (None when either is constant); the
    reader's mean keeps version 1's name, "oracle_mean", whichever reader scored."""
    a, b = np.array([s.score for s in reader]), np.array([s.score for s in learned])
    r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else None
    return {"oracle_mean": float(a.mean()), "learned_mean": float(b.mean()), "pearson_r": r}


def world_folder(images: Path, suite: str) -> Path:
    """The folder of ``suite``'s images under ``--images DIR``: ``DIR/world-<suite>/`` (the layout the
    generating run writes) or ``DIR/<suite>/``, whichever holds ``samples/``; BenchError naming both."""
    for folder in (images / f"world-{suite}", images / suite):
        if (folder / SAMPLES).is_dir():
            return folder
    raise BenchError(f"--images {images}: no images of the world suite {suite!r}: looked for "
                     f"{images / f'world-{suite}' / SAMPLES} and {images / suite / SAMPLES} (the layout "
                     f"compbench --suite world --ckpt writes: {images}/world-<suite>/{SAMPLES}/<prompt>_<NNNNNN>.png)")


def find_world_images(images: Path, suite: str, specs: list[dict], limit: int | None) -> tuple[Path, list[SampleImage]]:
    """``suite``'s folder under ``--images DIR`` and its images, of the suite's first ``limit`` prompts
    (all without a limit); BenchError names an image whose prompt is not in the suite, or a folder
    with no image of the prompts asked for."""
    folder = world_folder(Path(images), suite)
    listed = list_samples(folder)  # names a folder that is empty or holds a file not in the official layout
    prompts = [s["prompt"] for s in specs]
    for im in listed:
        if im.prompt not in prompts:
            raise BenchError(f"{im.path}: its prompt {im.prompt!r} is not in the world suite {suite!r} "
                             f"({SUITES_NAME}/{suite}_val.txt); move it out of {folder / SAMPLES}")
    wanted = set(prompts[:limit])
    chosen = [im for im in listed if im.prompt in wanted]
    if not chosen:
        raise BenchError(f"{folder / SAMPLES} holds no images of the first {limit} prompts of the world suite "
                         f"{suite!r} (--limit {limit})")
    return folder, chosen


def run_world(source, out: str | Path, ev: Evaluators, *, images: str | Path | None = None,
              categories: list[str] | None = None, limit: int | None = None, images_per_prompt: int = 4,
              seed: int = 0, generation_batch: int = 8, judge: str = "judge", progress: bool = True,
              log=print) -> tuple[dict, list[dict]]:
    """Generate (``source``) or find (``images``: a folder in the layout the generating run writes) the
    world suites' images and score them with the reader ``judge`` ("judge" or "oracle": each suite's
    result is under that key); returns ({suite: result}, per-image rows). With ``images``,
    every suite's folder and every image's prompt are checked, and every image is read by the reader,
    before anything is written (the learned metrics write their official outputs and score cache into
    the suite folders, as T2I-CompBench's --images does)."""
    from bench.compbench.preflight import world_preflight
    from bench.generate import generate
    from bench.world.dataset import load_suite
    from bench.world.demo import SUITES, select_categories

    if (source is None) == (images is None):
        raise ValueError("give a source to generate from, or a folder of images")
    _check_reader(judge)
    chosen = select_categories(categories)
    specs = {suite: load_suite(SUITES, suite) for suite in chosen}
    folders, listed = {}, {}
    if images is not None:  # every folder and every image's prompt, before an evaluator loads
        for suite in chosen:
            folders[suite], listed[suite] = find_world_images(Path(images), suite, specs[suite], limit)
    world_preflight(ev, chosen, limit)  # the learned metrics' evaluators and spaCy, before an image is made
    for suite in chosen:
        specs[suite] = specs[suite][:limit]
        if images is None:
            folders[suite] = Path(out) / f"world-{suite}"
            generate(source, [s["prompt"] for s in specs[suite]], folders[suite], images_per_prompt=images_per_prompt,
                     seed=seed, batch_size=generation_batch, progress=progress, log=log,
                     prompt_source={"suite": f"world {suite}", "file": str(SUITES / f"{suite}_val.json")})
            listed[suite] = list_samples(folders[suite])
    # the reader reads every image (a damaged one is an error) before a learned metric writes anything
    read = {suite: world_scores(listed[suite], {s["prompt"]: s for s in specs[suite]}, judge) for suite in chosen}
    scorers = Scorers(ev)
    results, rows = {}, []
    for suite in chosen:
        folder, found, scores = folders[suite], listed[suite], read[suite]
        result = {judge: summarise(suite, METRIC[judge], found, scores)}
        rows += per_image_rows(f"world-{suite}", METRIC[judge], found, scores)
        need = LEARNED[suite]
        if ev.has(need):
            from bench.compbench.run import score_category

            learned = score_category(folder, f"world-{suite}", scorers.blip() if need == "blip" else
                                     scorers.spatial(complex=False), images=found, progress=progress, log=log)
            learned_rows = learned.pop("rows")
            rows += learned_rows
            learned["agreement_with_oracle"] = agreement(scores, [ImageScore(r["score"]) for r in learned_rows])
            result["learned"] = learned
        results[suite] = result
        line = f"world {suite}: {METRIC[judge]} {result[judge]['score']:.3f}"
        if "learned" in result:
            ag = result["learned"]["agreement_with_oracle"]
            r = "n/a" if ag["pearson_r"] is None else f"{ag['pearson_r']:.2f}"
            line += f", {result['learned']['metric']} {result['learned']['score']:.3f} (r = {r})"
        log(line)
    return results, rows


def world_table(results: dict[str, dict], reader: dict | None = None) -> str:
    """The world suites' scores in Markdown: the reader's (``reader``: results.json's "reader"; None: a
    version 1 record, the exact oracle) with, for the world judge, its held-out precision / recall
    against people per suite and, where run, the learned metric's score with its correlation with the reader."""
    from bench.markdown import markdown_table

    key = (reader or {}).get("key", "oracle")

    def cell(r):
        return f"{r['score']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"

    rows = []
    for suite, r in results.items():
        learned = r.get("learned")
        ag = learned["agreement_with_oracle"] if learned else None
        row = [suite, cell(r[key]), r[key]["images"]]
        if key == "judge":
            row.append(people_words(reader, suite))
        rows.append(row + [learned["metric"] if learned else "-", cell(learned) if learned else "-",
                           "-" if not ag or ag["pearson_r"] is None else f"{ag['pearson_r']:.2f}"])
    header = ["world suite", f"{METRIC[key]} [95% CI]", "images"]
    if key == "judge":
        header.append("judge vs people: precision / recall [95% CI] (held-out)")
    header += ["learned metric", "learned [95% CI]", "Pearson r"]
    return "\n".join(markdown_table(header, rows)) + "\n"


def run_world_and_write(source, out: str | Path, ev: Evaluators, *, model: dict | None = None,
                        images: str | Path | None = None, **options) -> dict:
    """``run_world``, then ``OUT/results.json`` (the suites' results, settings, provenance) and
    ``OUT/per_image.csv``; returns the record. With ``images`` the protocol records the folder instead
    of generation settings, and the model is ``{"images": DIR}``. Version 2: each suite's result is under
    the reader's key ("judge" or "oracle"), named in "reader" (``reader_record``); version 1 records (no
    "reader") were all the exact oracle's, under "oracle"."""
    from bench.compbench.results import write_per_image_csv

    out = Path(out)
    judge = options.pop("judge", "judge")
    reader = reader_record(judge)
    log = options.get("log", print)
    if judge == "judge":
        measured = "recorded in results.json (docs/world.md)" if reader["agreement"] else "not measured for these weights"
        log(f"world suites scored by the {reader['name']}; its agreement with people on held-out model images: "
            f"{measured}")
    else:
        log(f"world suites scored by the {ORACLE_NAME}: exact on renders, it rejects most objects a model draws")
    results, rows = run_world(source, out, ev, images=images, judge=judge, **options)
    protocol = {k: v for k, v in options.items() if k not in ("log", "progress")}
    if images is not None:
        protocol = {k: v for k, v in protocol.items() if k not in GENERATION_SETTINGS} | {"images": str(images)}
        model = {"images": str(images)}
    out.mkdir(parents=True, exist_ok=True)
    record = {"format": "pixart-bench compbench (shapes world)", "version": 2,
              "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "model": model, "protocol": protocol, "reader": reader,
              "evaluators": asdict(ev), "suites": results,
              "versions": package_versions(("pixart-bench", "torch", "transformers", "diffusers"))}
    write_json_atomic(out / "results.json", record)
    write_per_image_csv(out / "per_image.csv", rows)
    return record
