"""Collect what the CPU side needs to score the arms of ``reference_gpu_arms.sh`` (docs/world.md).

    python benchmarks/gpu_arms_collect.py RESULTS_DIR ARM_WORK_DIR...    (on the GPU machine)
    python benchmarks/gpu_arms_collect.py --export RESULTS_DIR PIPELINES_DIR    (here, afterwards)

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
them), for ``pixart-bench demo --reference``. A stage trained on scaled latents (``latent_scale`` in
its ``train_config.yaml``) gets the VAE with ``scaling_factor`` × that scale.
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
            print(f"{out / f'{name}-{kind}'}: {ema}, {sum(p.numel() for p in transformer.parameters()) / 1e6:.2f} M "
                  f"parameters, latent scale {scale:g}")


if __name__ == "__main__":
    torch.set_num_threads(1)
    if sys.argv[1] == "--export":
        export(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main(Path(sys.argv[1]), [Path(a) for a in sys.argv[2:]])
