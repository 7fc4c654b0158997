"""Training-step time and peak memory: our PixArt vs diffusers' PixArtTransformer2DModel, same weights.

One step = forward + hybrid-loss-shaped backward (MSE on the output) + AdamW step, at an equal
config. Each model runs in its own subprocess so peak memory (CUDA: max_memory_allocated; CPU:
peak resident set size of the process) is not mixed up. Text is 120 T5 slots with ``--tokens``
real ones; "ours, trimmed" also drops the all-padding text columns first (what the trainer does),
which gives the same result.

    .venv/bin/python benchmarks/train_step.py [--preset S-2-256] [--batch 8] [--tokens 24] [--steps 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import torch


def run_one(which: str, args) -> dict:
    from pixart.model import PixArt, PixArtConfig, trim_text_padding

    torch.manual_seed(0)
    config = PixArtConfig.preset(args.preset, caption_channels=args.caption_channels)
    model = PixArt(config)
    if which == "diffusers":
        from diffusers import PixArtTransformer2DModel

        from pixart.checkpoints import save_transformer

        with tempfile.TemporaryDirectory() as tmp:
            save_transformer(model, tmp, "diffusers")
            model = PixArtTransformer2DModel.from_pretrained(tmp)
    model.to(args.device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    s = config.input_size
    g = torch.Generator().manual_seed(1)
    x = torch.randn(args.batch, 4, s, s, generator=g).to(args.device)
    y = torch.randn(args.batch, 120, config.caption_channels, generator=g).to(args.device)
    mask = torch.zeros(args.batch, 120, dtype=torch.long, device=args.device)
    mask[:, : args.tokens] = 1
    t = torch.randint(0, 1000, (args.batch,), generator=g).to(args.device)
    target = torch.randn(args.batch, config.out_channels, s, s, generator=g).to(args.device)

    def step():
        if which == "diffusers":
            out = model(x, encoder_hidden_states=y, timestep=t, encoder_attention_mask=mask,
                        added_cond_kwargs={"resolution": None, "aspect_ratio": None}).sample
        elif which == "ours, trimmed":
            yy, mm = trim_text_padding(y, mask)
            out = model(x, t, yy, mm)
        else:
            out = model(x, t, y, mask)
        loss = (out - target).square().mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    peak = (torch.cuda.max_memory_allocated() if args.device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"which": which, "median_s": sorted(times)[len(times) // 2], "peak_bytes": peak}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="S-2-256")
    ap.add_argument("--caption-channels", type=int, default=4096)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--tokens", type=int, default=24, help="real text tokens per caption (of 120)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args)))
        return
    rows = []
    for which in ("diffusers", "ours", "ours, trimmed"):
        cmd = [sys.executable, __file__, "--one", which] + [a for a in sys.argv[1:]]
        rows.append(json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]))
    base = rows[0]["median_s"]
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} preset={args.preset} "
          f"batch={args.batch} text tokens={args.tokens}/120 steps={args.steps}")
    print(f"{'model':<16}{'s/step (median)':>16}{'speed vs diffusers':>20}{'peak memory':>14}")
    for r in rows:
        print(f"{r['which']:<16}{r['median_s']:>16.3f}{base / r['median_s']:>19.2f}x{r['peak_bytes'] / 2**20:>11.0f} MiB")


if __name__ == "__main__":
    main()
