"""The FID-N ablation protocol: several models, one prompt set, one cached reference (the paper's FID-5K).

    models = [("single", "runs/single/pipeline"), ("block", "runs/block/pipeline")]
    plan = prepare_ablate_fid("out/ablate-fid", prompts="sam-5k.txt", ref="sam-5k-images/", n=5000, models=models)
    record = run_ablate_fid(plan, lambda ckpt: load_source(ckpt, device="cuda", dtype="fp16"))

The paper compares its adaLN variants by zero-shot FID-5K with prompts from SAM (captions of SA-1B
images); any prompt file and reference stand in for them here. The protocol:

- image i of every model is generated from prompt ``i mod P`` (the first N prompts of the file; when the
  file holds fewer than N, the list is cycled, and the record says so) with seed ``seed + i``, so the
  models differ only by their weights. Generation goes through the generation store
  (``bench.generate.generate(..., layout="indexed")``): ``out/<model>/samples/<NNNNNN>.png`` and
  ``manifest.json``, resumable and shared between the processes of ``accelerate launch``;
- the reference (a folder of images, or an ``.npz`` written by ``pixart-bench fid``) is read once: its
  statistics are computed (or found in the cache) before any image is generated, so a bad reference
  fails first, and every model is compared with the same statistics;
- FID is ``bench.fid.compute_fid`` (what ``fid folder`` runs) on each model's N images:
  ``out/<model>/fid.json``, then ``out/ablate_fid.json`` and ``.csv`` (model, FID-N, N, reference id).

Everything that can fail is checked by ``prepare_ablate_fid`` before a model is loaded: the prompt file,
N, the seed range, the model names and paths, the feature extractor and its weights, the reference.
Run again, it resumes: the store keeps finished images (and refuses a folder holding another model's or
another setting's run), and a model's unchanged images find their statistics in the cache.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from bench.errors import BenchError, check_out_folder, check_range

ABLATE_FID_JSON, ABLATE_FID_CSV = "ablate_fid.json", "ablate_fid.csv"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass
class AblateFidPlan:
    out: Path
    prompts: list[str]  # N prompts, image i's at i
    prompt_source: dict
    models: list[tuple[str, str]]  # (name, ckpt)
    ref: str
    reference: dict  # the reference statistics' id, source, n
    seed: int
    fid: object  # bench.fid.protocol.FidSettings


def read_prompts(path, n: int) -> tuple[list[str], dict]:
    """N prompts from a text file (one per line, blank lines skipped), cycled when the file holds fewer."""
    from bench.generate.plan import prompts_sha256
    from pixart.errors import read_text

    lines = [line.strip() for line in read_text(path, BenchError, "--prompts file").splitlines()]
    prompts = [line for line in lines if line]
    if not prompts:
        raise BenchError(f"--prompts file {path} has no prompts (one prompt per line)")
    chosen = [prompts[i % len(prompts)] for i in range(n)]
    return chosen, {"file": str(path), "prompts_in_file": len(prompts), "cycled": len(prompts) < n,
                    "file_prompts_sha256": prompts_sha256(prompts)}


def model_names(ckpts: list[str]) -> list[tuple[str, str]]:
    """(name, ckpt) for ``--ckpt`` values ``NAME=CKPT`` or ``CKPT`` (named after its last path part)."""
    models = []
    for value in ckpts:
        name, eq, ckpt = value.partition("=")
        if not eq or "/" in name or not name:
            name, ckpt = Path(value.rstrip("/")).name or value, value
        if not NAME.match(name):
            raise BenchError(f"--ckpt {value!r}: the model name {name!r} must be a folder name of letters, digits, "
                             "'.', '_' and '-' (give NAME=CKPT)")
        models.append((name, ckpt))
    names = [n for n, _ in models]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BenchError(f"--ckpt: the model name(s) {', '.join(twice)} are given twice; name them NAME=CKPT")
    return models


def prepare_ablate_fid(out, *, prompts, ref, n: int = 5000, models: list[tuple[str, str]], seed: int = 0,
                       fid=None) -> AblateFidPlan:
    """Check an FID-N ablation (see the module's docstring) and compute (or find cached) the reference's
    statistics; nothing is generated or written in ``out``."""
    from bench.fid import reference_statistics
    from bench.fid.protocol import FidSettings, main_process
    from bench.generate.plan import check_indexed_prompts
    from bench.generate.sources import detect
    from pixart.pipeline import resolve_pretrained

    out = check_out_folder(out, "--out")
    check_range("--n", n, 2, 10_000_000, whole=True, why="FID needs at least 2 images")
    if not models:
        raise BenchError("give at least one --ckpt")
    chosen, source = read_prompts(prompts, n)
    check_indexed_prompts(chosen, seed)
    for name, ckpt in models:
        if detect(resolve_pretrained(ckpt)) == "folder":
            raise BenchError(f"--ckpt {ckpt}: a folder of images, not a model; score it with `pixart-bench fid "
                             "folder`")
    fid = fid or FidSettings()
    fid.check()
    if not main_process(None, None):  # under accelerate launch only the main process scores
        return AblateFidPlan(out, chosen, source, list(models), str(ref), {}, int(seed), fid)
    stats, entry = reference_statistics(ref, extractor=fid.extractor, weights=fid.weights, resize=fid.resize,
                                        cache_dir=fid.cache_dir, kid=fid.kid, device=fid.device,
                                        batch_size=fid.batch_size)
    reference = {"id": stats.provenance.get("key"), "source": str(ref), "n": int(stats.n),
                 "statistics": str(entry) if entry is not None else None}
    # the reference's own .npz (or the cache entry) is what every model is compared with
    return AblateFidPlan(out, chosen, source, list(models), str(entry or ref), reference, int(seed), fid)


def run_ablate_fid(plan: AblateFidPlan, load, *, batch_size: int = 4, progress: bool = True, log=None) -> dict | None:
    """Generate and score every model of ``plan`` (``load(ckpt)`` → a generation source); returns the
    record of ``ablate_fid.json``, or None on processes other than the main one."""
    from bench.fid.labels import ABLATE, protocol_record
    from bench.fid.protocol import main_process
    from bench.generate import generate
    from pixart.files import package_versions, write_json_atomic

    rows = []
    where = {**plan.prompt_source, "n": len(plan.prompts), "seed": plan.seed,
             "rule": "image i: prompt i mod (prompts in file), seed + i"}
    for name, ckpt in plan.models:
        folder = plan.out / name
        # a finished model resumes in the store (its images are checked, none made again) and its generated
        # statistics come from the cache
        manifest = generate(load(ckpt), plan.prompts, folder, seed=plan.seed, batch_size=batch_size,
                            progress=progress, prompt_source=where, log=log, layout="indexed")
        if not main_process(None, None):
            continue
        files = [folder / e["file"] for e in sorted(manifest["images"], key=lambda e: e["index"])]
        result = plan.fid.compute(files, plan.ref)
        record = {**result, "model": {"name": name, "ckpt": ckpt, **manifest["model"]},
                  "protocol": protocol_record(ABLATE, result), "n": len(plan.prompts), "seed": plan.seed,
                  "prompts": where, "reference_source": plan.reference,
                  "generation": {"settings": manifest["settings"], "manifest": "manifest.json"}}
        write_json_atomic(folder / "fid.json", record)
        if log:
            log(f"{name}: FID-{len(plan.prompts)} {record['fid']:.4f}")
        rows.append({"model": name, "ckpt": ckpt, "fid": record["fid"], "n": record["n_gen"],
                     "reference_id": record["reference"]["id"], "fid_json": str(folder / "fid.json"),
                     **({"kid_mean": record["kid_mean"], "kid_std": record["kid_std"]} if "kid_mean" in record else {})})
    if not main_process(None, None):
        return None
    result = {"format": "pixart-bench ablate fid", "n": len(plan.prompts), "seed": plan.seed, "prompts": where,
              "reference": plan.reference, "fid_settings": {"extractor": plan.fid.extractor, "resize": plan.fid.resize,
                                                            "kid": plan.fid.kid},
              "versions": package_versions(), "models": rows}
    write_json_atomic(plan.out / ABLATE_FID_JSON, result)
    write_table(plan.out / ABLATE_FID_CSV, rows)
    return result


def write_table(path: Path, rows: list[dict]) -> Path:
    from pixart.files import atomic_write

    def write(tmp: Path):
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["model", "fid", "n", "reference_id", "ckpt"], extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)

    return atomic_write(path, write)
