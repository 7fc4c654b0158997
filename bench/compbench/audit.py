"""Audit a compbench run against the official T2I-CompBench scripts' output on the same images.

``pixart-bench compbench audit RUN --official DIR`` compares, image by image, the scores a run wrote
(``RUN/results.json`` and ``RUN/per_image.csv``) with the ``vqa_result.json`` files the official
scripts wrote for the same images, in their official places under ``DIR/<category>/`` (or ``DIR``
itself when the run has one category):

| category | official output | question_id |
|---|---|---|
| color, shape, texture | ``annotation_blip/vqa_result.json`` (answers: 4-decimal text) | position |
| spatial | ``labels/annotation_obj_detection_2d/vqa_result.json`` | index |
| non_spatial | ``annotation_clip/vqa_result.json`` | position |
| complex | ``annotation_3_in_1/vqa_result.json`` | position |
| 3d_spatial | ``labels/annotation_obj_detection_3d/vqa_result.json`` | index |
| numeracy | ``annotation_num/vqa_result.json`` | index |

"position" is the image's position after sorting ``samples/`` by the number in its file name, as
the BLIP, CLIP and 3-in-1 scripts number images; "index" is that number itself, as the UniDet and
numeracy scripts do. Question ids are mapped to our images through the file names of
``per_image.csv``; when ``DIR/<category>/samples/`` is there, its file names must be ours (positions
depend on them).

Per category the audit gives the images matched, the largest and mean |Δ| (ours − theirs), the
Pearson correlation (None when either side is constant), the number of images differing by more
than ``TOLERANCE`` (1e-4), and both category scores (the mean of each side's per-image scores).
The official B-VQA answers are rounded to 4 decimals: against an unrounded score that alone makes
|Δ| up to 5e-5; our B-VQA scores are rounded the same way, so one rounding step (1e-4) is the
smallest difference two B-VQA computations can show, and it is not counted above the tolerance.

``plan_audit`` reads and checks every file (a ``BenchError`` naming the file, before any work);
``audit`` computes the record of ``OUT/audit.json``; ``run_audit`` does both and writes it. Which code
wrote the files in ``DIR`` is not something the audit can check: the record calls them the official
output because the user gives them as such.
"""

from __future__ import annotations

import csv
import datetime
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.compbench.run import OFFICIAL_OUTPUT, PER_IMAGE, RESULTS
from bench.compbench.samples import NAME, SAMPLES
from bench.errors import BenchError, check_in_folder, check_out_folder
from pixart.errors import read_json, read_text
from pixart.files import package_versions, sha256_files, write_json_atomic

FORMAT = "pixart-bench compbench audit"
AUDIT = "audit.json"
TOLERANCE = 1e-4  # images with |Δ| above this are counted
_SLACK = 1e-9  # 0.6901 − 0.6900 is a float hair above 1e-4: one rounding step, not counted
BVQA_ROUNDING = 5e-5  # half a unit of the 4th decimal: the official B-VQA answer's rounding alone
LARGEST = 10  # images with the largest |Δ| kept per category in audit.json
# the official metric of each category (its output place and numbering: bench.compbench.run.OFFICIAL_OUTPUT)
OFFICIAL_KIND = {"color": "B-VQA", "shape": "B-VQA", "texture": "B-VQA", "spatial": "2D", "non_spatial": "CLIPScore",
                 "complex": "3-in-1", "3d_spatial": "3D", "numeracy": "numeracy"}
NO_OUTPUT = "no official output"


@dataclass
class Official:
    """One category's official ``vqa_result.json``, read, checked and mapped to our file names."""

    path: Path
    place: str  # where under the category folder (e.g. "annotation_blip/vqa_result.json")
    numbering: str  # "position" or "index"
    answers: dict[str, float]  # our file name -> their answer
    question_ids: dict[str, int]  # our file name -> their question_id
    answer_format: str  # "text", "numbers" or "mixed"
    sha256: str
    samples: Path | None  # the official samples/ folder, when there (its names are ours)


@dataclass
class Plan:
    run: Path
    official: Path
    out: Path
    results: dict
    ours: dict[str, dict[str, float]]  # category -> our file name -> our score
    found: dict[str, Official] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # category -> the official file looked for
    sha256: dict[str, str] = field(default_factory=dict)  # every file read -> its SHA-256


def read_run(run: Path) -> tuple[dict, dict[str, dict[str, float]]]:
    """(results.json, {category: {file: score}}) of a compbench ``--out`` folder; BenchError naming a
    missing or damaged file, a shapes-world run, or a category without per-image rows."""
    run = check_in_folder(run, "RUN (a compbench --out folder)")
    for name in (RESULTS, PER_IMAGE):
        if not (run / name).is_file():
            raise BenchError(f"RUN {run} has no {name}: give the --out folder of a finished pixart-bench compbench "
                             f"run (it holds {RESULTS} and {PER_IMAGE})")
    results = read_json(run / RESULTS, BenchError, "compbench result")
    if results.get("format") == "pixart-bench compbench (shapes world)":
        raise BenchError(f"{run / RESULTS} is a shapes-world run (compbench --suite world): its suites have no "
                         "official scripts to audit against; give a T2I-CompBench run")
    if results.get("format") != "pixart-bench compbench" or not isinstance(results.get("categories"), dict) \
            or not results["categories"]:
        raise BenchError(f"{run / RESULTS} is not a pixart-bench compbench result (no \"format\": \"pixart-bench "
                         "compbench\" with categories); give the --out folder of a compbench run")
    unknown = [c for c in results["categories"] if c not in OFFICIAL_KIND]
    if unknown:
        raise BenchError(f"{run / RESULTS}: unknown categories {', '.join(unknown)}")
    ours: dict[str, dict[str, float]] = {c: {} for c in results["categories"]}
    text = read_text(run / PER_IMAGE, BenchError, "per-image scores")
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in ("category", "file", "score") if c not in (reader.fieldnames or [])]
    if missing:
        raise BenchError(f"per-image scores {run / PER_IMAGE} lack the column(s) {', '.join(missing)}")
    for line, row in enumerate(reader, start=2):
        if row["category"] not in ours:
            continue
        try:
            score = float(row["score"])
        except (TypeError, ValueError):
            score = math.nan
        if not math.isfinite(score):
            raise BenchError(f"per-image scores {run / PER_IMAGE}, row {line}: score {row['score']!r} is not a number")
        if NAME.match(row["file"] or "") is None:
            raise BenchError(f"per-image scores {run / PER_IMAGE}, row {line}: file {row['file']!r} is not named "
                             "<prompt>_<NNNNNN>.png (the official layout)")
        if row["file"] in ours[row["category"]]:
            raise BenchError(f"per-image scores {run / PER_IMAGE}, row {line}: {row['file']} of {row['category']} "
                             "appears twice")
        ours[row["category"]][row["file"]] = score
    for category, files in ours.items():
        if not files:
            raise BenchError(f"per-image scores {run / PER_IMAGE} have no row of {category}, which {RESULTS} lists")
        indices = [int(NAME.match(f)["index"]) for f in files]
        if len(set(indices)) < len(indices):
            raise BenchError(f"per-image scores {run / PER_IMAGE}: two files of {category} have one index")
    return results, ours


def category_folder(official: Path, category: str, categories: list[str]) -> Path:
    """Where ``category``'s official outputs are: ``DIR/<category>/``, or ``DIR`` itself for a run of one
    category whose output is there."""
    place = OFFICIAL_OUTPUT[OFFICIAL_KIND[category]][0]
    if (official / category).is_dir() or len(categories) > 1:
        return official / category
    return official if (official / place / "vqa_result.json").is_file() else official / category


def read_vqa_result(path: Path) -> list[tuple[int, float, bool]]:
    """[(question_id, answer, answer was text)] of an official ``vqa_result.json``; BenchError naming the
    file and the first entry that is not ``{"question_id": int, "answer": number or numeric text}``."""
    text = read_text(path, BenchError, "official output")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise BenchError(f"cannot read official output {path}: invalid JSON at line {e.lineno}, column {e.colno}: "
                         f"{e.msg} (truncated or hand-edited?)") from None
    if not isinstance(value, list) or not value:
        what = "an empty list" if value == [] else f"a JSON {type(value).__name__}"
        raise BenchError(f"official output {path} holds {what}, not the list of {{\"question_id\", \"answer\"}} the "
                         "official scripts write")
    rows = []
    for i, entry in enumerate(value):
        bad = f"official output {path}, entry {i}"
        if not isinstance(entry, dict) or "question_id" not in entry or "answer" not in entry:
            raise BenchError(f"{bad} is not {{\"question_id\", \"answer\"}}: {json.dumps(entry)[:80]}")
        qid, answer = entry["question_id"], entry["answer"]
        if isinstance(qid, str) and qid.strip().isdigit():
            qid = int(qid)
        if not isinstance(qid, int) or isinstance(qid, bool) or qid < 0:
            raise BenchError(f"{bad}: question_id {qid!r} is not a whole number")
        as_text = isinstance(answer, str)
        try:
            number = float(answer) if not isinstance(answer, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number):
            raise BenchError(f"{bad}: answer {answer!r} is not a number")
        rows.append((qid, number, as_text))
    return rows


def _files(names, limit: int = 5) -> str:
    names = sorted(names)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def match_answers(path: Path, category: str, files: dict[str, float], numbering: str,
                  rows: list[tuple[int, float, bool]]) -> tuple[dict[str, float], dict[str, int]]:
    """Their answers by our file name, through ``numbering``; BenchError for repeated question ids, ids
    that match none of our images, and a count that is not ours."""
    ordered = sorted(files, key=lambda f: int(NAME.match(f)["index"]))
    by_id = ({i: f for i, f in enumerate(ordered)} if numbering == "position"
             else {int(NAME.match(f)["index"]): f for f in ordered})
    seen: dict[int, int] = {}
    for qid, _, _ in rows:
        seen[qid] = seen.get(qid, 0) + 1
    twice = sorted(q for q, n in seen.items() if n > 1)
    if twice:
        raise BenchError(f"official output {path}: question_id {', '.join(map(str, twice[:5]))} appear(s) more than "
                         "once; the file is damaged")
    rule = (f"the position 0…{len(ordered) - 1} after sorting by the file name's number" if numbering == "position"
            else "the number in the file name")
    unknown = sorted(q for q in seen if q not in by_id)
    if unknown:
        raise BenchError(f"official output {path}: question_id {', '.join(map(str, unknown[:5]))} "
                         f"({len(unknown)} of {len(rows)}) match none of our {len(ordered)} images of {category} "
                         f"({rule}, per_image.csv); the official scripts ran on other images")
    if len(rows) != len(ordered):
        lost = [by_id[q] for q in by_id if q not in seen]
        raise BenchError(f"official output {path} has {len(rows)} answers for our {len(ordered)} images of "
                         f"{category}; none for {_files(lost)}")
    return {by_id[q]: a for q, a, _ in rows}, {by_id[q]: q for q, _, _ in rows}


def check_samples(samples: Path, category: str, files: dict[str, float]) -> None:
    """BenchError naming the files of the official ``samples/`` folder that are not ours, and ours that
    are not there: the positions the official scripts number images by depend on the whole folder."""
    theirs = {p.name for p in samples.iterdir() if not p.name.startswith(".")}
    extra, lost = theirs - set(files), set(files) - theirs
    if extra or lost:
        parts = ([f"only in {samples}: {_files(extra)}"] if extra else []) + \
                ([f"only in our per_image.csv: {_files(lost)}"] if lost else [])
        raise BenchError(f"the file names of {samples} are not those our run scored for {category} "
                         f"({'; '.join(parts)}); run the official scripts on the same images")


def plan_audit(run: str | Path, official: str | Path, out: str | Path | None = None) -> Plan:
    """Read and check the run, every official output of its categories and ``out``; BenchError naming the
    file or option, before any work (see the module docstring)."""
    run, official = Path(run), Path(official)
    results, ours = read_run(run)
    official = check_in_folder(official, "--official DIR (the official scripts' outputs)")
    out = check_out_folder(Path(out) if out is not None else run / "audit", "--out")
    plan = Plan(run, official, out, results, ours)
    plan.sha256 = {str(run / name): sha256_files([run / name]) for name in (RESULTS, PER_IMAGE)}
    categories = list(results["categories"])
    for category in categories:
        place, numbering, _ = OFFICIAL_OUTPUT[OFFICIAL_KIND[category]]
        folder = category_folder(official, category, categories)
        path = folder / place / "vqa_result.json"
        if not path.is_file():
            plan.missing[category] = str(path)
            continue
        _check_not_ours(path, run, category, results["categories"][category], place)
        rows = read_vqa_result(path)
        samples = folder / SAMPLES if (folder / SAMPLES).is_dir() else None
        if samples is not None:
            check_samples(samples, category, ours[category])
        answers, ids = match_answers(path, category, ours[category], numbering, rows)
        kinds = {t for _, _, t in rows}
        plan.found[category] = Official(path, f"{place}/vqa_result.json", numbering, answers, ids,
                                        "mixed" if len(kinds) > 1 else "text" if True in kinds else "numbers",
                                        sha256_files([path]), samples)
        plan.sha256[str(path)] = plan.found[category].sha256
    if not plan.found:
        looked = "; ".join(plan.missing.values())
        raise BenchError(f"--official {official}: no official output for the run's categories "
                         f"({', '.join(categories)}); looked for {looked}")
    _check_previous(plan)
    return plan


def _check_not_ours(path: Path, run: Path, category: str, summary: dict, place: str) -> None:
    """BenchError when ``path`` is, byte for byte, the vqa_result.json our run wrote itself (compbench
    writes the official files too): comparing it would show a perfect agreement that means nothing."""
    folders = {Path(str(summary["folder"])), run / category} if summary.get("folder") else {run / category}
    digest = None
    for folder in folders:
        ours = folder / place / "vqa_result.json"
        if ours.is_file():
            digest = digest or sha256_files([path])
            if sha256_files([ours]) == digest:
                raise BenchError(f"--official: {path} is the vqa_result.json our run wrote for {category} ({ours}), "
                                 "not the official scripts' output; run the official scripts on a copy of the "
                                 "samples/ folders and give the folder they write to")


def _check_previous(plan: Plan) -> None:
    """BenchError when ``out`` already holds an audit of another run folder, or against other official
    files, or a file named audit.json that is no audit: it is never overwritten. The audit of the same
    run folder against the same official folder is written again (the run may have been rescored)."""
    previous = plan.out / AUDIT
    if not previous.exists():
        return
    record = read_json(previous, BenchError, "earlier audit") if previous.is_file() else {}
    run, official = record.get("run"), record.get("official")
    same = (record.get("format") == FORMAT and isinstance(run, dict) and isinstance(official, dict)
            and _same_path(run.get("path"), plan.run) and _same_path(official.get("path"), plan.official))
    if not same:
        raise BenchError(f"--out {plan.out} already holds {AUDIT} of another run or other official files (or "
                         "not an audit); give another --out, or remove it yourself")


def _same_path(recorded, path: Path) -> bool:
    return recorded is not None and Path(str(recorded)).resolve() == path.resolve()


def stats(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """|Δ| (max, mean), Pearson r (None when either side is constant or there is one image), the count
    above ``TOLERANCE``, and both means."""
    diff = ours - theirs
    r = float(np.corrcoef(ours, theirs)[0, 1]) if len(ours) > 1 and ours.std() > 0 and theirs.std() > 0 else None
    return {"images": len(ours), "ours": float(ours.mean()), "theirs": float(theirs.mean()),
            "difference": float(ours.mean() - theirs.mean()), "max_abs_diff": float(np.abs(diff).max()),
            "mean_abs_diff": float(np.abs(diff).mean()), "pearson_r": r,
            "over_tolerance": int((np.abs(diff) > TOLERANCE + _SLACK).sum())}


def metric_note(summary: dict) -> str | None:
    """Why our metric is not the official one, when its label says so (boxes from another detector or
    checkpoint, or from an unknown one); for complex, the label of its spatial part too."""
    labels = [str(summary.get("metric", ""))]
    spatial = (summary.get("provenance") or {}).get("spatial")
    if isinstance(spatial, dict) and spatial.get("metric"):
        labels.append(str(spatial["metric"]))
    flagged = [m for m in labels if any(w in m for w in ("not the official", "official rule uses", "unknown",
                                                        "detections"))]
    if flagged:
        return (f"our metric is {flagged[0]}: its boxes are not the official detector's, so agreement with the "
                "official output is not expected")
    return None


def audit(plan: Plan) -> dict:
    """The record of ``audit.json`` for a checked ``plan``."""
    results = plan.results
    categories = {}
    for category, summary in results["categories"].items():
        metric = str(summary.get("metric", "unknown"))
        entry = {"metric": metric, "official_metric": OFFICIAL_KIND[category],
                 "note": metric_note(summary)}
        if category not in plan.found:
            categories[category] = {**entry, "status": NO_OUTPUT, "looked_for": plan.missing[category]}
            continue
        found = plan.found[category]
        files = sorted(found.answers, key=lambda f: int(NAME.match(f)["index"]))
        ours = np.array([plan.ours[category][f] for f in files])
        theirs = np.array([found.answers[f] for f in files])
        order = np.argsort(-np.abs(ours - theirs), kind="stable")[:LARGEST]
        categories[category] = {
            **entry, "status": "compared", "official_file": str(found.path), "official_sha256": found.sha256,
            "place": found.place, "question_id": found.numbering, "answers": found.answer_format,
            "samples_checked": str(found.samples) if found.samples else None,
            "results_score": summary.get("score"), **stats(ours, theirs),
            "expected_rounding": BVQA_ROUNDING if found.answer_format != "numbers" else 0.0,
            "largest": [{"file": files[i], "question_id": found.question_ids[files[i]], "ours": float(ours[i]),
                         "theirs": float(theirs[i]), "diff": float(ours[i] - theirs[i])} for i in order]}
    return {"format": FORMAT, "version": 1,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "model": results.get("model") or {},
            "run": {"path": str(plan.run), "results_sha256": plan.sha256[str(plan.run / RESULTS)],
                    "per_image_sha256": plan.sha256[str(plan.run / PER_IMAGE)], "protocol": results.get("protocol"),
                    "evaluators": results.get("evaluators")},
            "official": {"path": str(plan.official),
                         "note": "the vqa_result.json files given as the official scripts' output; which code "
                                 "wrote them is not checked"},
            "tolerance": TOLERANCE, "bvqa_rounding": BVQA_ROUNDING, "categories": categories,
            "files": plan.sha256, "versions": package_versions(("pixart-bench", "numpy"))}


def run_audit(run: str | Path, official: str | Path, out: str | Path | None = None) -> tuple[dict, Path]:
    """Check everything (``plan_audit``), compare, and write ``OUT/audit.json`` (default ``RUN/audit``);
    returns (the record, its path)."""
    plan = plan_audit(run, official, out)
    record = audit(plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    return record, write_json_atomic(plan.out / AUDIT, record)


def _small(value: float) -> str:
    """5e-05 as 5e-5."""
    return f"{value:.0e}".replace("e-0", "e-")


def _number(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_table(record: dict) -> str:
    """The audit in Markdown: a row per category, then what to read into the numbers."""
    from bench.markdown import markdown_table

    rows = []
    for category, c in record["categories"].items():
        if c["status"] != "compared":
            rows.append([category, c["metric"], NO_OUTPUT, *["-"] * 6])
            continue
        rows.append([category, c["metric"], c["images"], _number(c["ours"]), _number(c["theirs"]),
                     f"{c['max_abs_diff']:.2e}", f"{c['mean_abs_diff']:.2e}", _number(c["pearson_r"]),
                     c["over_tolerance"]])
    header = ["category", "our metric", "images", "ours", "theirs", "max abs Δ", "mean abs Δ", "Pearson r",
              f"abs Δ > {_small(TOLERANCE)}"]
    lines = markdown_table(header, rows)
    lines += ["", "ours: the mean of our per-image scores; theirs: the mean of the official vqa_result.json answers "
                  "(the files given as the official scripts' output). Pearson r over images; '-' when a side is "
                  "constant."]
    if any(c.get("answers") in ("text", "mixed") for c in record["categories"].values()):
        lines.append(f"B-VQA answers are 4-decimal text in the official files: rounding alone makes abs Δ up to "
                     f"{_small(BVQA_ROUNDING)} against an unrounded score; our B-VQA is rounded the same way, and one "
                     f"rounding step ({_small(TOLERANCE)}) is not counted above the tolerance.")
    for category, c in record["categories"].items():
        if c.get("note"):
            lines.append(f"{category}: {c['note']}.")
        worst = [w for w in c.get("largest", [])[:3] if abs(w["diff"]) > TOLERANCE + _SLACK]
        if worst:
            lines.append(f"{category}, largest differences: " + "; ".join(
                f"{w['file']} (question_id {w['question_id']}): ours {w['ours']:.4f}, theirs {w['theirs']:.4f}"
                for w in worst) + f" (all in {AUDIT})")
    return "\n".join(lines) + "\n"
