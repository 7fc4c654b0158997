"""A study's design: prompts, models and their images, the raters' plan and the attention checks.

``create_study(prompts, {name: folder}, out)`` writes the study folder:

    STUDY/study.json      the design (never served): models, prompts, settings, which opaque image
                          id is which model's image of which prompt, and the plan's figures
    STUDY/images/ID.png   the images raters see: copies under random 16-hex names, re-saved as PNG with
                          no metadata (pixels exactly as generated; nothing in the file or its name
                          names the model or the original path)
    STUDY/study.db        the answers (SQLite), unless ``db_url`` names another database

**The plan.** Each rater gets a slot; slot ``s`` belongs to round ``r = s // per_round`` where
``per_round = ceil(P / items_per_rater)``. A round is one seeded permutation of the P prompts cut into
``per_round`` near-equal chunks, so each round rates every prompt exactly once and ``raters_per_prompt``
rounds give every prompt that many ratings; raters beyond the planned ones start further rounds, which
keeps the counts balanced. Within an item the models' screen order is a seeded random permutation
(stored with the item). Everything follows from ``(seed, slot)``, so the plan is reproducible and never
needs storing ahead of time. ``Study.plan_summary()`` counts what the planned raters get from these
chunks (raters, ratings per prompt, rankings per criterion, attention checks); ``describe_plan`` is the
line ``study create`` prints.

**Attention checks.** At ``attention_rate`` (share of a rater's items, rounded, at least one when the
rate is positive) a rater's sequence gets check items at random positions: a prompt the rater does not
otherwise rate (when the study has one), with the K models' images where one image (the *decoy*) is the
same model's image of another prompt. A rater passes a
check when the decoy gets the worst alignment rank. Raters who fail ``exclude_after`` checks or more
are excluded in the aggregation by default (and counted).
"""

from __future__ import annotations

import math
import re
import secrets
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from human_study.errors import StudyError
from human_study.storage import Assignment, shown_url
from pixart.errors import InputError, read_json
from pixart.files import package_versions, sha256_files, write_json_atomic

STUDY_FILE = "study.json"
IMAGES = "images"
DB_FILE = "study.db"
FORMAT = "pixart-bench study"
CRITERIA = ("quality", "alignment")
QUESTIONS = {
    "quality": "Rank the images by visual quality (1 = best looking), whatever the text says.",
    "alignment": "Rank the images by how precisely they show the text (1 = matches best).",
}
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class Settings:
    items_per_rater: int = 30
    raters_per_prompt: int = 5
    attention_rate: float = 0.1
    exclude_after: int = 1  # failed checks that exclude a rater from the aggregation
    ties: bool = False  # may a rater give two images the same rank?
    seed: int = 0
    entry_params: tuple[str, ...] = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")  # first one identifies the rater
    completion_code: str | None = None  # one code for everyone (crowd platforms); None: a code per rater
    completion_url: str | None = None  # e.g. https://app.prolific.com/submissions/complete?cc={code}
    title: str = "Image ranking study"
    instructions: str = ("You will see a text and several images made from it. Rank the images twice: "
                         "once by visual quality, once by how well they match the text.")

    def check(self, n_prompts: int, n_models: int) -> None:
        if n_models < 2:
            raise StudyError(f"a ranking study needs at least 2 models, got {n_models} (--model NAME=DIR, repeated)")
        if n_models > 8:
            raise StudyError(f"{n_models} models: at most 8 images fit on a rater's screen")
        if not 1 <= self.items_per_rater:
            raise StudyError(f"--items-per-rater must be at least 1, got {self.items_per_rater}")
        if not 1 <= self.raters_per_prompt <= 1000:
            raise StudyError(f"--raters-per-prompt must be between 1 and 1000, got {self.raters_per_prompt}")
        if not (0 <= self.attention_rate < 1 and math.isfinite(self.attention_rate)):
            raise StudyError(f"--attention-rate must be in [0, 1), got {self.attention_rate}")
        if self.attention_rate > 0 and n_prompts < 2:
            raise StudyError("attention checks show another prompt's image: they need at least 2 prompts "
                             "(or --attention-rate 0)")
        if self.exclude_after < 1:
            raise StudyError(f"--exclude-after must be at least 1, got {self.exclude_after}")
        if not self.entry_params or not all(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p) for p in self.entry_params):
            raise StudyError(f"--entry-params {','.join(self.entry_params)}: give URL parameter names, e.g. "
                             "PROLIFIC_PID,STUDY_ID,SESSION_ID")
        if self.completion_url and "{code}" not in self.completion_url:
            raise StudyError(f"--completion-url {self.completion_url}: put {{code}} where the completion code goes")


@dataclass
class Study:
    """A study folder, read back."""

    folder: Path
    study_id: str
    models: list[str]
    prompts: list[str]
    images: list[list[str]]  # images[prompt][model]: opaque image id
    settings: Settings
    db_url: str  # as recorded; a password is hidden (give --db again to serve or aggregate)
    prompt_source: dict = field(default_factory=dict)

    @property
    def per_round(self) -> int:
        return math.ceil(len(self.prompts) / min(self.settings.items_per_rater, len(self.prompts)))

    @property
    def planned_raters(self) -> int:
        return self.per_round * self.settings.raters_per_prompt

    def image_path(self, image_id: str) -> Path:
        return self.folder / IMAGES / f"{image_id}.png"

    def database_url(self, override: str | None = None) -> str:
        url = override or self.db_url
        if "***" in url:
            raise StudyError(f"{self.folder / STUDY_FILE} records the database as {url} with its password hidden: "
                             "give it again with --db URL")
        return url

    def round_chunks(self, round_: int) -> list[np.ndarray]:
        """Round ``round_``'s slots' prompts: one seeded permutation of all prompts, cut into ``per_round``
        near-equal chunks (slot ``round_ * per_round + i`` rates chunk i)."""
        order = np.random.default_rng([self.settings.seed, 1, round_]).permutation(len(self.prompts))
        return np.array_split(order, self.per_round)

    def n_checks(self, n_items: int) -> int:
        """Attention checks added to a sequence of ``n_items`` items: ``attention_rate`` of them, rounded, at
        least one when the rate is positive."""
        rate = self.settings.attention_rate
        return 0 if rate == 0 else max(1, round(rate * n_items))

    def plan_summary(self) -> dict:
        """What the planned raters (slots 0 to ``planned_raters`` - 1) are given, counted from their plans'
        prompt chunks: raters, items per rater (min, max), ratings of each prompt (min, max), rankings per
        criterion (every rater ranks an item's K images once per criterion; attention checks are scored,
        not aggregated, so they are counted apart), attention checks per rater (min, max) and in all."""
        rated = np.zeros(len(self.prompts), dtype=np.int64)
        items = []
        rounds, rest = divmod(self.planned_raters, self.per_round)  # slot s rates chunk s % R of round s // R
        assert rest == 0, "the planned raters fill whole rounds"
        for round_ in range(rounds):
            for chunk in self.round_chunks(round_):
                rated[chunk] += 1
                items.append(len(chunk))
        return {"raters": len(items), "models": len(self.models), "criteria": list(CRITERIA),
                "items_per_rater": [min(items), max(items)],
                "ratings_per_prompt": [int(rated.min()), int(rated.max())],
                "rankings_per_criterion": int(sum(items)),
                "checks_per_rater": [self.n_checks(min(items)), self.n_checks(max(items))],
                "attention_checks": int(sum(self.n_checks(n) for n in items))}

    def plan(self, slot: int) -> list[Assignment]:
        """The items of slot ``slot``: its chunk of its round's prompt permutation, and its checks."""
        s, n_prompts, k = self.settings, len(self.prompts), len(self.models)
        round_, chunk = divmod(slot, self.per_round)
        prompts = [int(p) for p in self.round_chunks(round_)[chunk]]
        rng = np.random.default_rng([s.seed, 2, slot])
        n_checks = self.n_checks(len(prompts))
        kinds = ["item"] * len(prompts) + ["check"] * n_checks
        check_at = set(rng.choice(len(kinds), n_checks, replace=False).tolist()) if n_checks else set()
        items, queue = [], iter(prompts)
        for position in range(len(kinds)):
            screen = [int(m) for m in rng.permutation(k)]
            if position in check_at:
                # a prompt the rater does not rate otherwise, when there is one; the decoy is another prompt's
                pool = [p for p in range(n_prompts) if p not in prompts] or list(range(n_prompts))
                prompt = int(pool[rng.integers(len(pool))])
                other = int((prompt + 1 + rng.integers(n_prompts - 1)) % n_prompts)
                decoy = int(rng.integers(k))
                images = [self.images[other if i == decoy else prompt][m] for i, m in enumerate(screen)]
                items.append(Assignment(position, prompt, "check", screen, images, decoy))
            else:
                prompt = next(queue)
                items.append(Assignment(position, prompt, "item", screen, [self.images[prompt][m] for m in screen],
                                        None))
        return items


def _span(low_high) -> str:
    low, high = low_high
    return f"{low:,}" if low == high else f"{low:,}–{high:,}"


def describe_plan(summary: dict) -> str:
    """``plan_summary()`` in one line: raters, items and checks per rater, ratings per prompt and rankings
    per criterion."""
    checks = summary["checks_per_rater"]
    extra = f" (+ {_span(checks)} attention check{'' if checks == [1, 1] else 's'} each, scored, not aggregated)" \
        if checks[1] else ""
    return (f"plan: {summary['raters']:,} raters of {_span(summary['items_per_rater'])} prompts each{extra} give "
            f"{_span(summary['ratings_per_prompt'])} ratings per prompt and {summary['rankings_per_criterion']:,} "
            f"rankings per criterion ({', '.join(summary['criteria'])}; a ranking orders the {summary['models']} "
            "images of one prompt)")


def parse_model(spec: str) -> tuple[str, Path]:
    """``NAME=DIR`` → (name, folder)."""
    name, sep, folder = spec.partition("=")
    if not sep or not folder:
        raise StudyError(f"--model {spec}: give NAME=DIR, e.g. --model pixart=out/pixart/images")
    if not MODEL_NAME.match(name):
        raise StudyError(f"--model {spec}: a model name is letters, digits, '.', '_' or '-' (at most 64)")
    return name, Path(folder)


def model_images(folder: Path, prompts: list[str], image_index: int = 0) -> dict[int, Path]:
    """The image of each prompt in ``folder``: the generation store's ``manifest.json`` (image
    ``image_index`` of each prompt), else the official layout ``samples/<prompt>_<NNNNNN>.png`` (the
    ``image_index``-th of each prompt by number). Prompts without one are left out."""
    from bench.compbench.samples import SAMPLES, list_samples

    if not folder.exists():
        raise StudyError(f"image folder {folder} does not exist")
    if not folder.is_dir():
        raise StudyError(f"{folder} is a file, not an image folder")
    manifest = folder / "manifest.json"
    found: dict[str, list[tuple[int, Path]]] = {}
    if manifest.is_file():
        for entry in read_json(manifest, StudyError, "generation manifest").get("images", []):
            if isinstance(entry, dict) and "prompt" in entry and "file" in entry:
                try:
                    k = int(entry.get("image") or 0)
                except (TypeError, ValueError):
                    raise StudyError(f"{manifest}: image {entry['file']!r} has a non-integer \"image\" "
                                     "number") from None
                found.setdefault(entry["prompt"], []).append((k, folder / entry["file"]))
    elif (folder / SAMPLES).is_dir():
        for im in list_samples(folder):
            found.setdefault(im.prompt, []).append((im.index, im.path))
    else:
        raise StudyError(f"{folder} has neither a manifest.json (from pixart-bench generate) nor a {SAMPLES}/ "
                         "folder of <prompt>_<NNNNNN>.png images")
    out = {}
    for i, prompt in enumerate(prompts):
        have = sorted(found.get(prompt, []))
        if len(have) > image_index:
            out[i] = have[image_index][1]
    return out


def _copy_clean(source: Path, target: Path) -> tuple[int, int]:
    """Re-save ``source`` as a PNG with no metadata (same pixels); returns its size."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(source) as im:
            im.load()
            mode = im.mode if im.mode in ("RGB", "RGBA", "L") else "RGB"
            clean = Image.frombytes(mode, im.size, im.convert(mode).tobytes())  # pixels only: no info, no ICC
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise StudyError(f"cannot read image {source}: {e}") from None
    tmp = target.with_suffix(".tmp")
    clean.save(tmp, format="PNG")
    tmp.replace(target)
    return clean.size


def create_study(prompts: list[str], models: dict[str, Path], out: Path, *, settings: Settings | None = None,
                 db_url: str | None = None, image_index: int = 0, prompt_source: dict | None = None) -> Study:
    """Check the images, copy them under opaque names and write ``study.json``; creates the database."""
    from human_study.storage import StudyStore, check_database

    settings = settings or Settings()
    if not prompts:
        raise StudyError("no prompts: give --prompts FILE with one prompt per line")
    repeated = [p for p, n in Counter(prompts).items() if n > 1]
    if repeated:
        more = f" (and {len(repeated) - 1} more)" if len(repeated) > 1 else ""
        raise StudyError(f"the prompt list repeats a prompt, {repeated[0]!r}{more}; each prompt is one study item")
    settings.check(len(prompts), len(models))
    if isinstance(image_index, bool) or not isinstance(image_index, int) or image_index < 0:
        raise StudyError(f"--image-index must be a whole number at least 0, got {image_index!r}")
    out = Path(out)
    if (out / STUDY_FILE).exists():
        raise StudyError(f"{out} already holds a study ({STUDY_FILE}); choose another --out")
    blocker = next((p for p in (out, *out.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise StudyError(f"--out {out} is a file, not a folder" if blocker == out else
                         f"--out {out}: {blocker} is a file, so no folder can be made there")
    if db_url is not None:
        check_database(db_url)  # before any image is copied
    found = {}
    for name, folder in models.items():
        try:
            found[name] = model_images(Path(folder), prompts, image_index)
        except InputError as e:  # say which model's folder it is
            raise StudyError(f"--model {name}: {e}") from None
    missing = [(name, i) for name in models for i in range(len(prompts)) if i not in found[name]]
    if missing:
        listed = "; ".join(f"{name}: {prompts[i]!r}" for name, i in missing[:10])
        raise StudyError(f"{len(missing)} prompt image(s) missing, every prompt needs an image from every model: "
                         f"{listed}{' ...' if len(missing) > 10 else ''}")
    made = out if not out.exists() else out / IMAGES if not (out / IMAGES).exists() else None
    (out / IMAGES).mkdir(parents=True, exist_ok=True)
    ids, sizes, sources = [], set(), {}
    try:
        for i in range(len(prompts)):
            row = []
            for name in models:
                image_id = secrets.token_hex(8)
                sizes.add(_copy_clean(found[name][i], out / IMAGES / f"{image_id}.png"))
                sources[image_id] = str(found[name][i])
                row.append(image_id)
            ids.append(row)
    except BaseException:
        if made is not None:  # only what this call made: nothing of the user's is removed
            shutil.rmtree(made, ignore_errors=True)
        raise
    study_id = secrets.token_hex(6)
    db_url = db_url or f"sqlite:///{(out / DB_FILE).resolve()}"
    record = {"format": FORMAT, "study_id": study_id, "models": list(models),
              "model_folders": {name: str(folder) for name, folder in models.items()},
              "prompts": prompts, "prompt_source": prompt_source or {}, "images": ids, "image_sources": sources,
              "image_sizes": sorted(sizes), "settings": _settings_json(settings), "db_url": shown_url(db_url),
              "images_sha256": sha256_files(sorted((out / IMAGES).glob("*.png"))), "versions": package_versions()}
    study = Study(out, study_id, list(models), prompts, ids, settings, db_url, prompt_source or {})
    record["plan"] = study.plan_summary()  # the figures `study create` prints
    StudyStore(db_url, study_id).close()
    write_json_atomic(out / STUDY_FILE, record)
    return study


def _settings_json(settings: Settings) -> dict:
    d = asdict(settings)
    d["entry_params"] = list(settings.entry_params)
    return d


def load_study(folder: str | Path) -> Study:
    folder = Path(folder)
    path = folder / STUDY_FILE
    if not path.is_file():
        raise StudyError(f"{folder} is not a study folder (no {STUDY_FILE}); make one with pixart-bench study create")
    d = read_json(path, StudyError, "study file")
    if d.get("format") != FORMAT:
        raise StudyError(f"{path} is not a pixart-bench study file")
    try:
        raw = dict(d["settings"])
        raw["entry_params"] = tuple(raw.get("entry_params", ()))
        settings = Settings(**raw)
        study = Study(folder, str(d["study_id"]), list(d["models"]), list(d["prompts"]),
                      [list(row) for row in d["images"]], settings, str(d["db_url"]), d.get("prompt_source", {}))
    except (KeyError, TypeError, ValueError) as e:
        raise StudyError(f"{path} is damaged or from another version: {e}") from None
    if len(study.images) != len(study.prompts) or any(len(r) != len(study.models) for r in study.images):
        raise StudyError(f"{path}: the image table does not match the prompts and models")
    gone = [i for row in study.images for i in row if not study.image_path(i).is_file()]
    if gone:
        raise StudyError(f"{folder / IMAGES} lacks {len(gone)} image(s) of the study, e.g. {gone[0]}.png")
    return study
