"""The ``ablate`` command group: the paper's ablations measured for any user's variants.

``ablate cost`` (parameters, peak training memory, step time, FLOPs and MFU per model config;
``bench.ablate.cost``), ``ablate fid`` (the FID-N protocol for several checkpoints against one cached
reference; ``bench.ablate.fid``) and ``ablate train`` (training ablations on the shapes world; its own
module registers it on ``ablate_app``). Commands parse and print; the work is done by ``bench.ablate``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer
from rich.table import Table

from bench.cli.app import (CFG_OPTION, DTYPE_OPTION, HEIGHT_OPTION, SAMPLER_OPTION, SCHEDULER_OPTION, STEPS_OPTION,
                           WIDTH_OPTION, DType, Sampler, app, console)
from bench.cli.fid import (CACHE_OPTION, CLIP_WEIGHTS_OPTION, DEVICE_OPTION, EXTRACTOR_OPTION, INCEPTION_WEIGHTS_OPTION,
                           KID_OPTION, NO_CACHE_OPTION, RESIZE_OPTION, WORLD_WEIGHTS_OPTION, FidExtractor, Resize)

ablate_app = typer.Typer(help="The paper's ablations measured: cost per config, FID-N per checkpoint, training "
                              "ablations on the shapes world.", no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(ablate_app, name="ablate")


CostDType = Enum("CostDType", {n: n for n in ("fp32", "bf16")}, type=str)

COST_EXAMPLES = """[bold]Examples[/bold]

  [dim]# the paper's comparison on a GPU: adaLN-single vs per-block adaLN, XL-2 at 256 px, batch 64, bf16[/dim]
  pixart-bench ablate cost --config XL-2-256 --config XL-2-256:adaln=block --batch-size 64 --dtype bf16 \\
      --device cuda --diffusers --out runs/cost-xl

  [dim]# small variants on a CPU: width, depth and patch size are PixArtConfig fields[/dim]
  pixart-bench ablate cost --config S-2-256:depth=4 --config S-2-256:depth=4,adaln=block --batch-size 4 \\
      --resolution 128 --steps 3 --out runs/cost-cpu
  pixart-bench ablate cost --config S-2-256:depth=4 --batch-size 4 --grad-checkpointing --out runs/cost-gc
"""


def _cell(row: dict, key: str, fmt: str, scale: float = 1.0) -> str:
    value = row.get(key)
    return "-" if value is None else format(value * scale, fmt)


@ablate_app.command("cost", epilog=COST_EXAMPLES)
def cost(
    config: list[str] = typer.Option(..., "--config", help="PRESET[:FIELD=VALUE,...] with PixArtConfig field names, "
                                     "e.g. XL-2-256:adaln=block or S-2-256:depth=6,hidden_size=256 (repeat)."),
    out: Path = typer.Option(..., "--out", help="Folder for cost.json and cost.csv (re-running resumes)."),
    batch_size: int = typer.Option(64, "--batch-size"),
    dtype: CostDType = typer.Option(CostDType.fp32, "--dtype", help="fp32, or bf16 (autocast; weights and optimizer stay fp32)."),
    grad_checkpointing: bool = typer.Option(False, "--grad-checkpointing", help="Recompute each block in backward."),
    resolution: int = typer.Option(None, "--resolution", help="Image side in pixels (default: each config's own)."),
    device: str = typer.Option(None, "--device", help="cpu or cuda[:N] (default: cuda when there is one)."),
    steps: int = typer.Option(5, "--steps", help="Timed steps per config (the median is reported)."),
    warmup: int = typer.Option(1, "--warmup", help="Untimed steps first (they create the optimizer states)."),
    diffusers: bool = typer.Option(False, "--diffusers", help="Also diffusers' PixArtTransformer2DModel, same config."),
    text_tokens: int = typer.Option(120, "--text-tokens", help="Text slots per caption (T5: 120)."),
    real_tokens: int = typer.Option(24, "--real-tokens", help="Of which real (the rest is masked padding)."),
    max_memory_gib: float = typer.Option(None, "--max-memory-gib", help="Skip a config the memory model puts above "
                                         "this (default: the memory available); on CUDA also a hard cap."),
    timeout: float = typer.Option(1800, "--timeout", help="Seconds per config measurement."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Parameters, peak training memory, step time, FLOPs and MFU of model configs, each measured in its own process.

    A config that does not fit (the memory model's estimate above the limit, out of memory, a timeout)
    is reported as "not measured (reason)", never extrapolated.
    """
    from bench.ablate.cost import CostSettings, run_cost
    from bench.cli.fid import pick_device
    from bench.errors import check_out

    settings = CostSettings(batch_size=batch_size, dtype=dtype.value, grad_checkpointing=grad_checkpointing,
                            resolution=resolution, device=pick_device(device), steps=steps, warmup=warmup,
                            text_tokens=text_tokens, real_tokens=real_tokens, diffusers=diffusers,
                            max_memory_gib=max_memory_gib, timeout_s=timeout)
    check_out(out, "ablate cost", overwrite=overwrite)  # its own run resumes when its settings are the same
    record = run_cost(config, settings, out, log=lambda message: typer.echo(message, err=True))
    print_cost(record)
    console.print(f"wrote {out / 'cost.json'} and {out / 'cost.csv'}", soft_wrap=True)


def print_cost(record: dict) -> None:
    s, device = record["settings"], record["provenance"]["device"]
    table = Table(title=f"Training step cost: batch {s['batch_size']}, {s['dtype']}"
                        f"{', grad. checkpointing' if s['grad_checkpointing'] else ''}, {device['name']}")
    for name, justify in (("variant", "left"), ("impl.", "left"), ("params", "right"), ("GiB", "right"),
                          ("model GiB", "right"), ("ms/step", "right"), ("img/s", "right"),
                          ("TFLOP/step", "right"), ("MFU", "right")):
        table.add_column(name, justify=justify, overflow="fold")
    notes = []
    for r in record["rows"]:
        params = f"{r['parameters'] / 1e6:,.1f}M" if r.get("parameters") else "-"
        if r["status"] != "measured":
            notes.append(f"[{len(notes) + 1}] {r['config']} ({r['implementation']}): {r['status']} ({r['reason']})")
            table.add_row(r["config"], r["implementation"], params, f"[{len(notes)}]",
                          _cell(r, "predicted_memory_gib", ".2f"), "-", "-",
                          _cell(r, "flops_step", ".3g", 1e-12), "")
            continue
        table.add_row(r["config"], r["implementation"], params, _cell(r, "memory_gib", ".2f"),
                      _cell(r, "predicted_memory_gib", ".2f"), _cell(r, "median_s", ".1f", 1e3),
                      _cell(r, "images_per_s", ".3g"), _cell(r, "flops_step", ".3g", 1e-12), _cell(r, "mfu", ".1%"))
    console.print(table)
    for note in notes:
        console.print(note, soft_wrap=True, markup=False)
    reasons = {r["mfu_reason"] for r in record["rows"] if r.get("mfu") is None and r.get("mfu_reason")}
    for reason in sorted(reasons):
        console.print(f"[dim]MFU: {reason}[/dim]")
    measured = {r["memory_measure"] for r in record["rows"] if r.get("memory_measure")}
    for line in sorted(measured):
        console.print(f"[dim]GiB: {line}; model GiB: bench.ablate.memory's prediction[/dim]")


FID_EXAMPLES = """[bold]Examples[/bold]

  [dim]# FID-5K of two variants on one prompt set against one reference (the paper's ablation protocol)[/dim]
  pixart-bench ablate fid --prompts sam-5k.txt --ref sam-5k-images --n 5000 \\
      --ckpt single=runs/single/pipeline --ckpt block=runs/block/pipeline --out runs/ablate-fid --device cuda

  [dim]# a reference .npz written by `pixart-bench fid folder --save-stats`; a third model later reuses it[/dim]
  pixart-bench ablate fid --prompts prompts.txt --ref ref.npz --n 1000 --ckpt runs/a --ckpt runs/b --out runs/fid1k
"""


@ablate_app.command("fid", epilog=FID_EXAMPLES)
def fid(
    prompts: Path = typer.Option(..., "--prompts", help="Text file, one prompt per line; image i uses prompt i "
                                 "(cycled when the file holds fewer than N)."),
    ref: Path = typer.Option(..., "--ref", help="Reference image folder, or an .npz of statistics "
                             "(pixart-bench fid ... --save-stats, or the cache)."),
    ckpt: list[str] = typer.Option(..., "--ckpt", help="A model, as `generate` takes it, or NAME=MODEL (repeat)."),
    out: Path = typer.Option(..., "--out", help="Folder: <model>/samples, <model>/fid.json, ablate_fid.json/.csv."),
    n: int = typer.Option(5000, "--n", help="Images per model (FID-N)."),
    seed: int = typer.Option(0, "--seed", help="Image i is generated with seed SEED + i."),
    extractor: FidExtractor = EXTRACTOR_OPTION, resize: Resize = RESIZE_OPTION, kid: bool = KID_OPTION,
    inception_weights: Path = INCEPTION_WEIGHTS_OPTION, clip_weights: Path = CLIP_WEIGHTS_OPTION,
    world_weights: Path = WORLD_WEIGHTS_OPTION, cache: Path = CACHE_OPTION, no_cache: bool = NO_CACHE_OPTION,
    fid_batch_size: int = typer.Option(64, "--fid-batch-size", help="Images per feature-extractor call."),
    steps: int = STEPS_OPTION, cfg: float = CFG_OPTION, sampler: Sampler = SAMPLER_OPTION,
    scheduler: str = SCHEDULER_OPTION, height: int = HEIGHT_OPTION, width: int = WIDTH_OPTION,
    dtype: DType = DTYPE_OPTION, device: str = DEVICE_OPTION,
    batch_size: int = typer.Option(4, "--batch-size", help="Images per model call."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """FID-N of several models on one prompt set against one cached reference (the paper's FID-5K protocol)."""
    from bench.ablate.fid import model_names, prepare_ablate_fid, run_ablate_fid
    from bench.cli.fid import fid_settings, weights_for
    from bench.errors import check_out, check_range
    from bench.generate import load_source

    check_range("--batch-size", batch_size, 1, 4096, whole=True)
    # a folder per model, each resumed by the generation store when its prompts and model are the same
    check_out(out, "ablate fid", also=tuple(name for name, _ in model_names(ckpt)), overwrite=overwrite)
    settings = fid_settings(extractor.value, weights_for(extractor, inception_weights, clip_weights, world_weights),
                            resize.value, kid, cache, no_cache, device, fid_batch_size)
    plan = prepare_ablate_fid(out, prompts=prompts, ref=ref, n=n, models=model_names(ckpt), seed=seed, fid=settings)

    def load(path: str):
        return load_source(path, steps=steps, cfg=cfg, height=height, width=width, device=settings.device,
                           dtype=dtype.value, scheduler=scheduler, sampler=sampler.value if sampler else None,
                           component_options=False)

    record = run_ablate_fid(plan, load, batch_size=batch_size, log=lambda message: typer.echo(message, err=True))
    if record is None:
        return
    table = Table(title=f"FID-{record['n']:,} against one reference ({record['reference']['n']:,} images, "
                        f"{record['fid_settings']['extractor']})")
    table.add_column("model")
    table.add_column(f"FID-{record['n']}", justify="right")
    table.add_column("N", justify="right")
    table.add_column("reference id")
    for row in record["models"]:
        table.add_row(row["model"], f"{row['fid']:.4f}", f"{row['n']:,}", row["reference_id"][:16])
    console.print(table)
    from pixart.errors import read_json

    first = read_json(out / record["models"][0]["model"] / "fid.json")  # every model's FID shares N and reference
    for warning in first.get("warnings", []):
        typer.echo(f"warning: {warning}", err=True)
    console.print(f"wrote {out / 'ablate_fid.json'} and {out / 'ablate_fid.csv'}", soft_wrap=True)
