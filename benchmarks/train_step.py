"""Training-step time, peak memory and MFU: our PixArt vs diffusers' PixArtTransformer2DModel, same weights.

One step = zero_grad → forward (bf16 autocast with ``--dtype bf16``) → MSE on the output → backward →
gradient clipping (``--clip``, 0 turns it off) → AdamW step (fused on CUDA). ``--warmup`` steps first,
then the median of ``--steps``. Each variant runs in its own subprocess so peak memory (CUDA:
max_memory_allocated; CPU: peak resident set size of the process) is not mixed up. Text is 120 T5
slots with ``--tokens`` real ones.

Variants (``--which``, comma-separated):
  diffusers          diffusers' model, eager
  ours               ours, eager
  ours-trimmed       ours, with the all-padding text slots dropped first (what the trainer does; same result)
  ours-fastest       ours, bf16 autocast + trimmed + torch.compile (whatever --dtype says)
  diffusers-compile  diffusers' model + torch.compile
``--compile`` compiles every variant. ``--compile-scope blocks`` (the default) compiles each
transformer block on its own: the blocks share one compiled graph, so compiling takes seconds
instead of minutes; ``model`` compiles the whole model as one graph.

MFU = model FLOPs per step (``bench.ablate.flops.step_flops``: forward + backward of the
architecture at the text length the variant runs, recomputation by checkpointing not counted) /
median step time / the card's dense peak for the step's precision. There is no peak figure for a
CPU, so MFU is "n/a" there.

    .venv/bin/python benchmarks/train_step.py [--preset S-2-256] [--batch 8] [--tokens 24] [--steps 10] [--device cpu]
    .venv/bin/python benchmarks/train_step.py --preset XL-2-512 --batch 16 --dtype bf16 --grad-ckpt \\
        --which diffusers,ours,ours-trimmed,ours-fastest,diffusers-compile --json step.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

TEXT_SLOTS = 120
VARIANTS = {
    # name: (label, implementation, trim text padding, compile, forced autocast dtype)
    "diffusers": ("diffusers", "diffusers", False, False, None),
    "ours": ("ours", "ours", False, False, None),
    "ours-trimmed": ("ours, trimmed", "ours", True, False, None),
    "ours-fastest": ("ours, fastest (bf16 + trimmed + compile)", "ours", True, True, "bf16"),
    "diffusers-compile": ("diffusers + compile", "diffusers", False, True, None),
}
DEFAULT_WHICH = ("diffusers", "ours", "ours-trimmed")


@dataclass
class StepSettings:
    preset: str = "S-2-256"
    size: int | None = None  # image side in pixels; None: the preset's
    caption_channels: int | None = None  # None: the preset's
    batch: int = 8
    tokens: int = 24  # real text tokens of TEXT_SLOTS
    warmup: int = 3
    steps: int = 10
    clip: float = 0.01  # gradient-norm clip; 0: none
    dtype: str = "fp32"  # autocast: fp32 (none) or bf16
    compile: bool = False  # torch.compile every variant
    compile_scope: str = "blocks"  # "blocks" (each block, one shared graph) or "model"
    grad_ckpt: bool = False
    device: str = "cuda" if torch.cuda.is_available() else "cpu"

    def config(self):
        from pixart.model import PixArtConfig

        overrides = {}
        if self.size:
            if self.size % 8:
                raise ValueError(f"--size must be a multiple of 8 pixels, got {self.size}")
            overrides["input_size"] = self.size // 8
        if self.caption_channels:
            overrides["caption_channels"] = self.caption_channels
        return PixArtConfig.preset(self.preset, **overrides)

    def argv(self) -> list[str]:
        """These settings as this script's command-line options (what a child process is given)."""
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                out += [flag] if value else []
            elif value is not None:
                out += [flag, str(value)]
        return out


def variant_settings(name: str, s: StepSettings) -> dict:
    label, implementation, trim, compile_, dtype = VARIANTS[name]
    return {"variant": name, "label": label, "implementation": implementation, "trimmed": trim,
            "compile": compile_ or s.compile, "dtype": dtype or s.dtype}


def compile_model(model, scope: str):
    """torch.compile in place: each transformer block (ours ``blocks``, diffusers' ``transformer_blocks``) or the
    whole module."""
    if scope == "model":
        model.compile()
        return model
    blocks = getattr(model, "blocks", None) or model.transformer_blocks
    for block in blocks:
        block.compile()
    return model


def run_one(name: str, s: StepSettings) -> dict:
    """Time one variant in this process (call it in a fresh one: the CPU peak memory is the process's)."""
    from bench.ablate.cost import peak_rss
    from bench.ablate.flops import batch_inputs, build, diffusers_twin, forward, step_precision
    from bench.ablate.timing import time_steps
    from pixart.model import trim_text_padding

    v = variant_settings(name, s)
    device = torch.device(s.device)
    cuda = device.type == "cuda"
    config = s.config()
    torch.manual_seed(0)
    with device:
        model = build(config, "ours")
        if v["implementation"] == "diffusers":  # the same weights in diffusers' layout
            model = diffusers_twin(model)
    model.train()
    if s.grad_ckpt:
        model.enable_gradient_checkpointing()
    if v["compile"]:
        compile_model(model, s.compile_scope)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True if cuda else None)
    inputs = batch_inputs(config, s.batch, None, TEXT_SLOTS, s.tokens, device, torch.Generator().manual_seed(1))
    host_mask = inputs["mask"].cpu()
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=v["dtype"] == "bf16")

    def step():
        optimizer.zero_grad(set_to_none=True)
        batch = inputs
        if v["trimmed"]:
            # the kept length comes from the host copy of the mask, as the trainer does: no device sync
            keep = trim_text_padding(host_mask, host_mask)[1].shape[1]
            batch = {**inputs, "y": inputs["y"][:, :keep], "mask": inputs["mask"][:, :keep]}
        with autocast:
            out = forward(model, v["implementation"], batch)
        (out.float() - inputs["target"]).square().mean().backward()
        if s.clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.clip)
        optimizer.step()

    times = time_steps(step, s.warmup, s.steps, device)
    text_tokens = trim_text_padding(host_mask, host_mask)[1].shape[1] if v["trimmed"] else TEXT_SLOTS
    return {**v, "status": "ok", "median_s": sorted(times)[len(times) // 2], "step_s": times,
            "peak_bytes": torch.cuda.max_memory_allocated(device) if cuda else peak_rss(),
            "memory_measure": "torch.cuda.max_memory_allocated" if cuda else "peak RSS of the process",
            "device_name": torch.cuda.get_device_name(device) if cuda else None,
            "precision": step_precision(v["dtype"], device.type), "text_tokens": text_tokens}


def measure(settings: StepSettings | None = None, which=DEFAULT_WHICH, *, timeout_s: float = 1800.0,
            log=None) -> list[dict]:
    """One row per variant in ``which``, each measured in a fresh subprocess. A variant whose process fails
    (out of memory, a compile error, a timeout) gives a row with status "failed" and the reason."""
    from bench.ablate.flops import mfu, peak_flops, step_flops

    s = settings or StepSettings()
    unknown = [w for w in which if w not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    config = s.config()
    flops_cache: dict[int, int] = {}
    rows = []
    for name in which:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, *s.argv()]
        try:
            proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout_s)
            if proc.returncode:
                lines = [x for x in proc.stderr.strip().splitlines() if x.strip()] or [f"exit status {proc.returncode}"]
                row = {**variant_settings(name, s), "status": "failed", "reason": lines[-1][:300]}
            else:
                row = json.loads(proc.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            row = {**variant_settings(name, s), "status": "failed", "reason": f"timed out after {timeout_s:g} s"}
        row.update(settings=asdict(s), torch=torch.__version__)
        if row["status"] == "ok":
            tokens = row["text_tokens"]
            if tokens not in flops_cache:
                flops_cache[tokens] = step_flops(config, s.batch, text_tokens=tokens)["step"]
            peak, why = peak_flops(row["device_name"], row["precision"])
            row.update(flops_per_step=flops_cache[tokens], peak_flops=peak,
                       mfu=mfu(flops_cache[tokens], row["median_s"], peak), mfu_note=why)
        rows.append(row)
        if log:
            log(row)
    base = next((r for r in rows if r["variant"] == "diffusers" and r["status"] == "ok"), None)
    for r in rows:
        r["vs_diffusers"] = base["median_s"] / r["median_s"] if base and r["status"] == "ok" else None
    return rows


def print_table(rows: list[dict], s: StepSettings) -> None:
    print(f"device={s.device} torch={torch.__version__} threads={torch.get_num_threads()} preset={s.preset} "
          f"size={s.size or s.config().input_size * 8}px batch={s.batch} text tokens={s.tokens}/{TEXT_SLOTS} "
          f"dtype={s.dtype} warmup={s.warmup} steps={s.steps} clip={s.clip:g} grad-ckpt={s.grad_ckpt}")
    print(f"{'model':<42}{'s/step (median)':>16}{'speed vs diffusers':>20}{'peak memory':>14}{'MFU':>8}")
    for r in rows:
        if r["status"] != "ok":
            print(f"{r['label']:<42}  failed: {r['reason']}")
            continue
        ratio = f"{r['vs_diffusers']:.2f}x" if r["vs_diffusers"] else "n/a"
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
        print(f"{r['label']:<42}{r['median_s']:>16.3f}{ratio:>20}{r['peak_bytes'] / 2**20:>10.0f} MiB{mfu:>8}")
    notes = {r["mfu_note"] for r in rows if r.get("mfu") is None and r.get("mfu_note")}
    for note in sorted(notes):
        print(f"MFU n/a: {note}")


def parser() -> argparse.ArgumentParser:
    d = StepSettings()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default=d.preset)
    ap.add_argument("--size", type=int, help="image side in pixels (default: the preset's)")
    ap.add_argument("--caption-channels", type=int, help="T5 width (default: the preset's)")
    ap.add_argument("--batch", type=int, default=d.batch)
    ap.add_argument("--tokens", type=int, default=d.tokens, help=f"real text tokens per caption (of {TEXT_SLOTS})")
    ap.add_argument("--warmup", type=int, default=d.warmup)
    ap.add_argument("--steps", type=int, default=d.steps)
    ap.add_argument("--clip", type=float, default=d.clip, help="gradient-norm clip (0: none)")
    ap.add_argument("--dtype", choices=("fp32", "bf16"), default=d.dtype, help="bf16: autocast")
    ap.add_argument("--compile", action="store_true", help="torch.compile every variant")
    ap.add_argument("--compile-scope", choices=("blocks", "model"), default=d.compile_scope)
    ap.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing of every block")
    ap.add_argument("--device", default=d.device)
    ap.add_argument("--which", default=",".join(DEFAULT_WHICH), help=f"comma-separated: {', '.join(VARIANTS)}")
    ap.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    return ap


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    s = StepSettings(**{f.name: getattr(args, f.name) for f in fields(StepSettings)})
    if args.one:
        print(json.dumps(run_one(args.one, s)))
        return 0
    which = [w.strip() for w in args.which.split(",") if w.strip()]
    unknown = [w for w in which if w not in VARIANTS]
    if unknown:
        parser().error(f"--which: unknown variant(s) {', '.join(unknown)}; choose from {', '.join(VARIANTS)}")
    rows = measure(s, which)
    print_table(rows, s)
    if args.json:
        args.json.write_text(json.dumps({"settings": asdict(s), "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
