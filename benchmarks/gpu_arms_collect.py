"""Collect what the CPU side needs to score the arms of ``reference_gpu_arms.sh`` (docs/world.md).

    python benchmarks/gpu_arms_collect.py RESULTS_DIR ARM_WORK_DIR...    (on the GPU machine)
    python benchmarks/gpu_arms_collect.py --export RESULTS_DIR PIPELINES_DIR [COMPONENTS]    (here, afterwards)

For each arm (a ``train-reference --work`` folder) it writes two weight files, in half precision so
that a 7 M-parameter model fits the device tool's 16 MiB per file (the CPU side casts them back to
fp32 before use; the rounding is far below what the oracle can see):
  ``{arm}-final.safetensors``  the EMA weights of the last checkpoint of the last stage reached
                               (3b, 3, 2b, 2, 1: an arm cut off by the deadline still returns something)
  ``{arm}-64.safetensors``     the EMA weights of the last 64 px text stage (2b, else 2), to score at 64 px
and one ``rest.tar`` for all arms: the logs, each stage's ``train_config.yaml``, ``metrics.jsonl``,
``wall_seconds.json``, the chosen checkpoints' ``ema/config.json`` and ``collected.json`` (which
stage and step each weight file holds). Arms forked from one shared run (``SHARED_UNTIL``) have the
same 64 px weights: those come back once, and ``collected.json`` names the arm whose file it is.

``--export`` turns each returned weight file back into fp32 and saves it as a pipeline folder
``PIPELINES_DIR/{arm}-{final,64}`` with the bundle's tokenizer, T5 and VAE (the arms trained with
them; or those of COMPONENTS), for ``pixart-bench demo --reference``. A stage trained on scaled latents (``latent_scale`` in
its ``train_config.yaml``) gets the VAE with ``scaling_factor`` × that scale. Each ``{arm}-final``
also gets a ``training.json`` from what came back (``run_record``): every stage up to the exported
checkpoint with its settings, steps, wall time and loss curve; an arm whose first stage started from
the bundle's own transformer (``--stage3-from bench/world/reference``, recognised by the SHA-256 in
its ``inputs.json``) carries the bundle's record too (``continued_record``), so that the folder can
replace the bundle with its whole history.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tarfile
from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file, save_file

FINAL_ORDER = ("stage3b", "stage3", "stage2b", "stage2", "stage1")
TEXT64_ORDER = ("stage2b", "stage2")


def last_ema(work: Path, order: tuple[str, ...]) -> Path | None:
    """The EMA folder of the newest checkpoint of the first stage in ``order`` that has one."""
    for stage in order:
        found = sorted((work / stage / "checkpoints").glob("step-*/ema/model.safetensors"))
        if found:
            return found[-1].parent
    return None


def half(src: Path, dst: Path) -> None:
    # the fixed sin-cos position table stays fp32: loading recognises its lewei_scale from its values
    tensors = {k: (v.half() if v.is_floating_point() and "pos_embed" not in k else v)
               for k, v in load_file(str(src)).items()}
    save_file(tensors, str(dst))


def main(res: Path, arms: list[Path]) -> None:
    res.mkdir(parents=True, exist_ok=True)
    record: dict = {}
    members: list[tuple[Path, str]] = []
    written: dict[str, str] = {}  # SHA-256 of a returned weight file's source -> "{arm}-{kind}"
    for work in arms:
        name = work.parent.name  # .../<arm>/w
        record[name] = {}
        for kind, order in (("final", FINAL_ORDER), ("64", TEXT64_ORDER)):
            ema = last_ema(work, order)
            if ema is None:
                continue
            digest = hashlib.sha256((ema / "model.safetensors").read_bytes()).hexdigest()
            if digest in written:  # a fork's copy of the shared stages: returned once
                record[name][kind + "_same_as"] = written[digest]
                continue
            written[digest] = f"{name}-{kind}"
            half(ema / "model.safetensors", res / f"{name}-{kind}.safetensors")
            record[name][kind] = str(ema.relative_to(work))
            members.append((ema / "config.json", f"{name}/{ema.relative_to(work)}/config.json"))
        for stage_dir in sorted(work.glob("stage*")):
            for f in ("train_config.yaml", "metrics.jsonl", "wall_seconds.json", "inputs.json"):
                if (stage_dir / f).is_file():
                    members.append((stage_dir / f, f"{name}/{stage_dir.name}/{f}"))
        if (work / "out" / "training.json").is_file():
            members.append((work / "out" / "training.json", f"{name}/out/training.json"))
        print(name, record[name])
    (res / "collected.json").write_text(json.dumps(record, indent=2) + "\n")
    with tarfile.open(res / "rest.tar", "w") as tar:
        tar.add(res / "collected.json", "collected.json")
        for log in sorted(res.glob("*.txt")):
            tar.add(log, log.name)
        for src, arc in members:
            tar.add(src, arc)
    for f in [res / "collected.json", *res.glob("*.txt")]:  # inside the tar now: the tool returns at most 8 files
        f.unlink()


def run_record(arm: Path, ema: str, components: Path) -> dict:
    """``training.json`` for the pipeline exported from ``ema`` (``stageN/checkpoints/step-K/ema``) of
    the returned arm folder ``arm``: the stages up to that one, each with its settings (from its
    ``train_config.yaml``), the steps it reached, its wall time and its loss curve (the exported stage's
    up to the exported step). The run's ``ReferenceBudget`` is not returned, so ``budget`` is None;
    ``stages`` says what each stage did."""
    from bench.world.reference import STAGES, _loss_curve, continued_record, weights_sha256

    last, step = Path(ema).parts[0], int(Path(ema).parts[2].removeprefix("step-"))
    names = [s for s in STAGES[:STAGES.index(last) + 1] if (arm / s / "metrics.jsonl").is_file()]
    stages, seconds, curves, inputs = {}, {}, {}, {}
    for s in names:
        if (arm / s / "inputs.json").is_file():
            inputs[s] = json.loads((arm / s / "inputs.json").read_text())
        cfg = yaml.safe_load((arm / s / "train_config.yaml").read_text())
        curves[s] = _loss_curve(arm / s / "metrics.jsonl", until=step if s == last else None)
        seconds[s] = json.loads((arm / s / "wall_seconds.json").read_text())["seconds"]
        stages[s] = {"steps": int(curves[s][-1][0]) if curves[s] else 0, "batch_size": cfg["batch_size"],
                     "lr": cfg["optim"]["lr"], "warmup_steps": cfg["optim"]["warmup_steps"], "seed": cfg["seed"],
                     "max_steps": cfg["max_steps"], "max_seconds": cfg.get("max_seconds"),
                     "resolution": cfg["data"]["resolution"], "latent_scale": cfg.get("latent_scale", 1.0),
                     "model_overrides": cfg["model_overrides"], "init_from": cfg.get("init_from")}
        if s in inputs:
            stages[s]["data_sha256"] = inputs[s].get("data_sha256")
    bundle_record = components / "training.json"
    record = {"budget": None, "stages": stages, "seed": stages[names[0]]["seed"],
              "vae_psnr_db": json.loads(bundle_record.read_text()).get("vae_psnr_db") if bundle_record.is_file() else None,
              "device": "cuda", "seconds": seconds, "loss_curves": curves,
              "exported_by": "benchmarks/gpu_arms_collect.py --export (EMA weights returned in fp16, saved as fp32)"}
    started_from = inputs.get(names[0], {}).get("init_from_sha256")
    if started_from and any((components / "transformer").glob("*.safetensors")) \
            and started_from == weights_sha256(components / "transformer"):
        record = continued_record(components / "transformer", record)
    return record


def export(res: Path, out: Path, components: Path = Path(__file__).resolve().parents[1] / "bench/world/reference"):
    import tempfile

    from pixart.checkpoints import load_transformer
    from pixart.pipeline import PixArtPipeline
    from pixart.text import TextEncoder
    from pixart.vae import VAE

    with tarfile.open(res / "rest.tar") as tar:
        tar.extractall(out / "rest", filter="data")
    record = json.loads((out / "rest" / "collected.json").read_text())
    for name, kinds in record.items():
        for kind, ema in kinds.items():
            if kind.endswith("_same_as"):
                continue
            with tempfile.TemporaryDirectory() as tmp:
                tmp = Path(tmp)
                (tmp / "config.json").write_bytes((out / "rest" / name / ema / "config.json").read_bytes())
                weights = {k: v.float() if v.is_floating_point() else v
                           for k, v in load_file(str(res / f"{name}-{kind}.safetensors")).items()}
                save_file(weights, str(tmp / "model.safetensors"))
                transformer = load_transformer(tmp)
            stage_cfg = out / "rest" / name / Path(ema).parts[0] / "train_config.yaml"
            scale = yaml.safe_load(stage_cfg.read_text()).get("latent_scale", 1.0) if stage_cfg.is_file() else 1.0
            pipe = PixArtPipeline(transformer, TextEncoder.from_pretrained(
                components, max_length=transformer.config.model_max_length),
                                  VAE.from_pretrained(components).rescaled(scale))
            pipe.export_diffusers(out / f"{name}-{kind}")
            if kind == "final":
                record = run_record(out / "rest" / name, ema, components)
                (out / f"{name}-{kind}" / "training.json").write_text(json.dumps(record) + "\n")
            print(f"{out / f'{name}-{kind}'}: {ema}, {sum(p.numel() for p in transformer.parameters()) / 1e6:.2f} M "
                  f"parameters, latent scale {scale:g}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1] == "--export":  # --export RES OUT [COMPONENTS: the pipeline the arms took their parts from]
        export(Path(sys.argv[2]), Path(sys.argv[3]), *[Path(a) for a in sys.argv[4:5]])
    else:
        main(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])
