"""Every GPU speed figure of PixArt-XL/2, ours against diffusers, in one command and one table.

    python benchmarks/gpu_suite.py [--device cuda] [--out DIR] [--rows world,loop,e2e,train]
                                   [--skip-diffusers-compile] [--no-compile] [--tiny]

Rows, cheapest first (each calls the benchmark script that measures it):
  world  the world reference model's training step (hidden 192, depth 6, heads 3, patch 2, batch 256,
         64 px) through pixart.train: eager, bf16, and torch.compile(mode="reduce-overhead") (CUDA
         graphs), fp32 and bf16 (benchmarks/train_step_time.py). Target: < 5 ms per step.
  loop   the sampling loop alone: transformer + DPM-Solver 20 steps, guidance 4.5, bf16 weights, random
         text features (24 real tokens of 120), no T5 or VAE; XL-2 512 px batch 8, XL-2-1024-MS batch 4;
         diffusers' transformer in diffusers' loop, ours eager, ours + compile; best of 3; the largest
         latent difference from diffusers' (benchmarks/sampling.py --loop-only).
  e2e    sampling end to end, prompts to decoded images, 512 and 1024 px: PixArtAlphaPipeline vs our
         PixArtPipeline on the same random T5-XXL, SD VAE and XL-2 weights, bf16; ours eager and
         compiled; the largest image difference (benchmarks/sampling.py).
  train  one training step of XL-2 (bf16 autocast, fused AdamW, grad clip 0.01, 24 of 120 text tokens
         real, median of 10 steps after 3 warm-ups) at 256 px batch 64, 512 px batch 16, and 512 px batch
         16 with gradient checkpointing: diffusers eager, ours eager, ours trimmed, ours fastest (bf16 +
         trimmed + fused AdamW + torch.compile), diffusers + torch.compile; MFU against the card's dense
         bf16 peak (benchmarks/train_step.py). Targets: ours eager >= 1.0x diffusers eager; ours fastest
         >= 40% MFU and >= 1.2x diffusers' best (the faster of diffusers eager and diffusers + compile).

``--tiny`` (the default without a CUDA device) runs the same functions and variants at tiny sizes (the
tests' tiny transformer, a small T5 and VAE, small batches, 2 steps): a check of the suite and a format
example, not a speed figure. ``out/gpu_suite.json`` and ``out/gpu_suite.csv`` are written after every
row, so an interrupted run keeps what it finished; a row that fails (out of memory, a compile error) is
recorded as "failed: <reason>" and the suite goes on.
"""

from __future__ import annotations

import argparse
import csv
import gc
import importlib.util
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

ROWS = ("world", "loop", "e2e", "train")  # cheapest first
SUITE_JSON, SUITE_CSV = "gpu_suite.json", "gpu_suite.csv"
CSV_FIELDS = ["device", "torch", "row", "setting", "variant", "status", "ms", "mfu", "vs", "ratio", "max_abs_diff",
              "target", "met", "reason"]
TABLE_FIELDS = ["row", "setting", "variant", "ms", "MFU", "ratio", "max |diff|", "target", "met?"]

# What the full run measures and roughly how long each row takes on one H100 (an estimate, not a measurement:
# processes, model builds, compiles and the timed steps).
FULL = {
    "world": {"batch": 256, "hidden": 192, "depth": 6, "heads": 3, "patch": 2, "steps": 120, "skip": 20,
              "estimate_s": 90},
    "loop": {"settings": [("XL-2-512", 512, 8), ("XL-2-1024-MS", 1024, 4)], "steps": 20, "repeats": 3,
             "estimate_s": 100},
    "e2e": {"settings": [("XL-2-512", 512, 8), ("XL-2-1024-MS", 1024, 4)], "steps": 20, "repeats": 3,
            "estimate_s": 140},
    "train": {"settings": [("XL-2-256", 256, 64, False), ("XL-2-512", 512, 16, False), ("XL-2-512", 512, 16, True)],
              "warmup": 3, "steps": 10, "estimate_s": 190, "diffusers_compile_s": 50},
}
TINY = {
    "world": {"batch": 8, "hidden": 48, "depth": 2, "heads": 3, "patch": 2, "steps": 6, "skip": 2},
    # diffusers' pipeline gives micro-conditions only to a model of sample size 128: tiny-MS runs at 1024 px
    "loop": {"settings": [("tiny", 64, 2), ("tiny-MS", 1024, 1)], "steps": 2, "repeats": 1},
    "e2e": {"settings": [("tiny", 64, 2), ("tiny-MS", 1024, 1)], "steps": 2, "repeats": 1},
    "train": {"settings": [("tiny", 64, 4, False), ("tiny", 128, 2, False), ("tiny", 128, 2, True)],
              "warmup": 1, "steps": 2},
}
MFU_TARGET, FASTEST_TARGET, WORLD_TARGET_MS = 0.40, 1.2, 5.0
REL_TOL = {"bf16": 5e-2, "fp32": 1e-4}


def load(name: str):
    """A benchmarks/ script imported from its file (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def suite_row(row: str, setting: str, variant: str, *, status: str = "ok", ms=None, mfu=None, mfu_note=None,
              vs=None, ratio=None, max_abs_diff=None, targets=(), reason=None, detail=None) -> dict:
    """One line of the table: ``targets`` is a list of (what, value shown, met: True / False / None)."""
    return {"row": row, "setting": setting, "variant": variant, "status": status, "ms": ms, "mfu": mfu,
            "mfu_note": mfu_note, "vs": vs, "ratio": ratio, "max_abs_diff": max_abs_diff,
            "target": "; ".join(t[0] for t in targets), "met": met_text(targets),
            "targets": [{"target": t[0], "value": t[1], "met": t[2]} for t in targets], "reason": reason,
            "detail": detail or {}}


def met_text(targets) -> str:
    """"1.31x yes; 42.0% yes" for (what, value shown, met) targets; "n/a" where a value could not be had."""
    return "; ".join("n/a" if met is None and value == "n/a" else
                     f"{value} {'yes' if met else 'no' if met is False else 'n/a'}" for _, value, met in targets)


def failed(row: str, setting: str, variant: str, reason: str, detail=None) -> dict:
    return suite_row(row, setting, variant, status="failed", reason=reason, detail=detail)


def diff_target(rel, dtype: str):
    """Same output as diffusers, up to rounding: the largest difference as a fraction of diffusers' largest
    value (bf16 keeps 8 bits of mantissa, and its rounding compounds over the steps)."""
    tol = REL_TOL[dtype]
    return (f"same output: max |diff| <= {tol:g} x max |diffusers|", f"{rel:.1e}" if rel is not None else "n/a",
            None if rel is None else bool(rel <= tol))


# ---- rows ---------------------------------------------------------------------------------------------


def run_world(p: dict, ctx: dict) -> list[dict]:
    script = load("train_step_time")
    variants = ["preload+device-rng", "bf16"] + (["compile-ro", "bf16+compile-ro"] if ctx["compile"] else [])
    rows = script.measure(ctx["out"] / "world-work", [p["batch"]], p["steps"], hidden=p["hidden"], depth=p["depth"],
                          heads=p["heads"], patch=p["patch"], variants=variants, skip=p["skip"])
    setting = f"hidden {p['hidden']} depth {p['depth']} batch {p['batch']} 64px"
    eager = next((r for r in rows if r["variant"] == "preload+device-rng" and r["status"] == "ok"), None)
    out = []
    for r in rows:
        if r["status"] != "ok":
            out.append(failed("world", setting, r["variant"], r["reason"], r))
            continue
        ms = r["seconds"] * 1000
        out.append(suite_row("world", setting, r["variant"], ms=ms, mfu_note="not computed for this row",
                             vs="eager" if eager else None,
                             ratio=eager["seconds"] / r["seconds"] if eager else None,
                             targets=[(f"< {WORLD_TARGET_MS:g} ms/step", f"{ms:.1f} ms", ms < WORLD_TARGET_MS)],
                             detail=r))
    return out


def run_sampling(kind: str, p: dict, ctx: dict) -> list[dict]:
    script = load("sampling")
    out = []
    for preset, size, batch in p["settings"]:
        setting = f"{preset} {size}px batch {batch}"
        try:
            rows = script.measure(preset, device=ctx["device"], dtype=ctx["dtype"], size=size, steps=p["steps"],
                                  batch=batch, repeats=p["repeats"], loop_only=kind == "loop",
                                  compile=ctx["compile"], output="pt")
        except Exception as e:  # noqa: BLE001 - building the components failed: this setting's result
            out.append(failed(kind, setting, "all", reason_of(e)))
            continue
        finally:
            free(ctx["device"])
        for r in rows:
            if r["status"] != "ok":
                out.append(failed(kind, setting, r["variant"], r["reason"], r))
                continue
            targets = [diff_target(r["rel_diff"], ctx["dtype"])] if r["variant"] != "diffusers" else []
            if not r["finite"]:
                targets.append(("finite output", "NaN/inf", False))
            out.append(suite_row(kind, setting, r["variant"], ms=r["seconds"] * 1000,
                                 mfu_note="not computed for sampling", vs="diffusers", ratio=r["vs_diffusers"],
                                 max_abs_diff=r["max_abs_diff"], targets=targets, detail=r))
    return out


def run_train(p: dict, ctx: dict) -> list[dict]:
    script = load("train_step")
    which = ["diffusers", "ours", "ours-trimmed"]
    if ctx["compile"]:
        which += ["ours-fastest"] + ([] if ctx["skip_diffusers_compile"] else ["diffusers-compile"])
    out = []
    for preset, size, batch, ckpt in p["settings"]:
        setting = f"{preset} {size}px batch {batch}" + (" grad-ckpt" if ckpt else "")
        s = script.StepSettings(preset=preset, size=size, batch=batch, warmup=p["warmup"], steps=p["steps"],
                                clip=0.01, dtype=ctx["dtype"], grad_ckpt=ckpt, device=ctx["device"])
        rows = script.measure(s, which)
        ok = {r["variant"]: r for r in rows if r["status"] == "ok"}
        best = min((r for n, r in ok.items() if n.startswith("diffusers")), key=lambda r: r["median_s"], default=None)
        for r in rows:
            if r["status"] != "ok":
                out.append(failed("train", setting, r["variant"], r["reason"], r))
                continue
            targets = []
            if r["variant"] == "ours":
                v = r["vs_diffusers"]
                targets.append((">= 1.0x diffusers eager", f"{v:.2f}x" if v else "n/a", None if v is None else v >= 1.0))
            if r["variant"] == "ours-fastest":
                m = r["mfu"]
                targets.append((f">= {MFU_TARGET:.0%} MFU", f"{m:.1%}" if m is not None else "n/a",
                                None if m is None else m >= MFU_TARGET))
                v = best["median_s"] / r["median_s"] if best else None
                targets.append((f">= {FASTEST_TARGET:g}x diffusers' best ({best['variant'] if best else 'none'})",
                                f"{v:.2f}x" if v else "n/a", None if v is None else v >= FASTEST_TARGET))
            out.append(suite_row("train", setting, r["variant"], ms=r["median_s"] * 1000, mfu=r["mfu"],
                                 mfu_note=r["mfu_note"], vs="diffusers" if r["vs_diffusers"] else None,
                                 ratio=r["vs_diffusers"], targets=targets, detail=r))
    return out


def reason_of(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0][:300]}" if text else type(e).__name__


def free(device: str) -> None:
    gc.collect()
    if device.startswith("cuda"):
        import torch

        torch.cuda.empty_cache()


# ---- output -------------------------------------------------------------------------------------------


def cells(r: dict) -> list[str]:
    if r["status"] != "ok":
        return [r["row"], r["setting"], r["variant"], f"failed: {r['reason']}", "", "", "", "", ""]
    return [r["row"], r["setting"], r["variant"], f"{r['ms']:.1f}", f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a",
            f"{r['ratio']:.2f}x vs {r['vs']}" if r["ratio"] is not None else "",
            f"{r['max_abs_diff']:.1e}" if r["max_abs_diff"] is not None else "", r["target"], r["met"]]


def table(record: dict) -> str:
    lines = [f"device: {record['device']}; torch {record['torch']}; {'tiny' if record['tiny'] else 'full'} run",
             "| " + " | ".join(TABLE_FIELDS) + " |", "|" + "---|" * len(TABLE_FIELDS)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in record["rows"]]
    notes = sorted({r["mfu_note"] for r in record["rows"] if r["status"] == "ok" and r["mfu"] is None
                    and r["mfu_note"] and r["row"] == "train"})
    lines += [f"MFU n/a: {n}" for n in notes]
    return "\n".join(lines)


def write(out: Path, record: dict) -> None:
    """gpu_suite.json (everything) and gpu_suite.csv (the table's rows), each replaced atomically."""
    from pixart.files import atomic_write, write_text_atomic

    write_text_atomic(out / SUITE_JSON, json.dumps(record, indent=1, default=str) + "\n")

    def write_csv(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            w = csv.DictWriter(f, CSV_FIELDS, extrasaction="ignore")
            w.writeheader()
            for r in record["rows"]:
                w.writerow({**r, "device": record["device"], "torch": record["torch"]})

    atomic_write(out / SUITE_CSV, write_csv)


def estimate(rows: list[str], ctx: dict) -> str:
    if ctx["tiny"]:
        return ("tiny run: the same functions and variants at tiny sizes, on " + ctx["device"] +
                " (a check of the suite and a format example, not a speed figure)")
    total = sum(FULL[r]["estimate_s"] for r in rows)
    if "train" in rows and ctx["compile"] and not ctx["skip_diffusers_compile"]:
        total += FULL["train"]["diffusers_compile_s"]
    n = 3 if ctx["compile"] else 2
    parts = {"world": f"world model step, {2 * n - 2} variants x 120 steps",
             "loop": f"sampling loop, XL-2 512 px b8 + 1024-MS b4, {n} variants",
             "e2e": f"end to end with T5-XXL + SD VAE, 512 + 1024 px, {n} variants",
             "train": f"XL-2 training step, 3 settings x {3 + ctx['compile'] * (2 - ctx['skip_diffusers_compile'])} "
                      "variants, one process each"}
    return (f"full run on {ctx['device']}: " + "; ".join(parts[r] for r in rows) +
            f". Estimated about {total / 60:.0f} minutes on one H100 (an estimate, not a measurement).")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", help="cuda or cpu (default: cuda when there is one)")
    ap.add_argument("--out", type=Path, default=Path("runs/gpu-suite"))
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, run in this order: {', '.join(ROWS)}")
    ap.add_argument("--skip-diffusers-compile", action="store_true",
                    help="leave out diffusers + torch.compile in the training rows (saves its compiles)")
    ap.add_argument("--no-compile", action="store_true", help="leave out every torch.compile variant")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (the default without a CUDA device)")
    args = ap.parse_args(argv)

    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"--device {device}: no CUDA device is available (torch {torch.__version__}); use --device cpu")
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown or not rows:
        ap.error(f"--rows: unknown row(s) {', '.join(unknown) or '(none given)'}; choose from {', '.join(ROWS)}")
    if args.out.exists() and not args.out.is_dir():
        ap.error(f"--out {args.out} is a file; the suite writes a folder")
    args.out.mkdir(parents=True, exist_ok=True)
    tiny = args.tiny or not device.startswith("cuda")
    ctx = {"device": device, "out": args.out, "tiny": tiny, "compile": not args.no_compile,
           "skip_diffusers_compile": args.skip_diffusers_compile, "dtype": "bf16"}
    params = TINY if tiny else FULL
    name = torch.cuda.get_device_name(device) if device.startswith("cuda") else f"cpu ({torch.get_num_threads()} threads)"
    record = {"device": name, "torch": torch.__version__, "tiny": tiny, "compile": ctx["compile"],
              "skip_diffusers_compile": args.skip_diffusers_compile, "rows_requested": rows,
              "params": {r: params[r] for r in rows}, "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "finished": False,
              "rows": []}
    print(estimate(rows, ctx), flush=True)
    runners = {"world": run_world, "loop": lambda p, c: run_sampling("loop", p, c),
               "e2e": lambda p, c: run_sampling("e2e", p, c), "train": run_train}
    for row in rows:
        start = time.perf_counter()
        print(f"[{row}] running ...", flush=True)
        try:
            got = runners[row](params[row], ctx)
        except Exception as e:  # noqa: BLE001 - one row's failure is its result; the suite goes on
            got = [failed(row, "all", "all", reason_of(e))]
        free(device)
        record["rows"] += got
        record.setdefault("row_seconds", {})[row] = time.perf_counter() - start
        write(args.out, record)
        print(f"[{row}] {len(got)} lines in {record['row_seconds'][row]:.0f} s", flush=True)
    record["finished"] = True
    write(args.out, record)
    print(table(record))
    print(f"wrote {args.out / SUITE_JSON} and {args.out / SUITE_CSV}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
