"""The cost ablation: parameters, peak training memory, step time, FLOPs and MFU of model configs, measured.

``pixart-bench ablate cost`` calls ``run_cost``; benchmarks call ``measure_step`` (one process, one
model) or ``measure_in_subprocess``. Per config (a preset with field overrides, ``parse_config``):

- **parameters** on the meta device, with ``bench.ablate.params``' per-module breakdown;
- **FLOPs per step** (forward + backward) and the forward's alone, on meta (``bench.ablate.flops``);
- **peak memory and step time** of a real step, warm-up first, then the median of ``steps`` steps:
  zero_grad(set_to_none) → forward (bf16 autocast when asked) → MSE against a random target →
  backward → AdamW step (fused on CUDA, as the trainer). Each measurement runs in a *fresh
  subprocess*, so one config's memory never counts for another, an out-of-memory failure takes only
  its own process, and a per-config timeout can stop it.
  - CUDA: ``torch.cuda.max_memory_allocated()`` over the timed steps (reset after the warm-up, when
    the optimizer states exist): weights, gradients, optimizer states, activations, workspace; not
    the allocator's reserve nor the CUDA context (``max_memory_reserved`` is recorded beside it).
    ``max_memory_gib`` caps the process (``set_per_process_memory_fraction``).
  - CPU: the peak resident set size of the measuring process (``VmHWM``) minus that of a baseline
    process that runs the same step (same imports, implementation, dtype, checkpointing) on the
    ``tiny`` preset at batch 1 (110K parameters: a few MB), which takes out what every process
    carries: Python, torch's libraries, its thread pools and lazily loaded modules. Both raw figures
    are recorded. The processes run with glibc's ``MALLOC_MMAP_THRESHOLD_=131072``, so tensors freed
    during the step go back to the system and the peak follows the live tensors, not the allocator's
    high-water mark (its page faults cost CPU step time a little).
- **MFU** on CUDA: FLOPs / median step time / the card's dense peak for the precision
  (``bench.ablate.flops.peak_flops``); None with the reason elsewhere.
- **the memory model's prediction** (``bench.ablate.memory``) beside each measurement.
- With ``diffusers=True`` the same for diffusers' ``PixArtTransformer2DModel`` built from the
  equivalent config; a config diffusers cannot express (per-block adaLN) is "not available".

Honest scaling: a config is never extrapolated. When the memory model predicts more than the limit
(``max_memory_gib``, else the memory available: free RAM on CPU, the card's memory on CUDA), it is
not tried; a CUDA out-of-memory error, a killed process or a timeout is recorded; each such row says
"not measured (reason)", with its parameters and FLOPs still counted.

``run_cost`` writes ``out/cost.json`` after every row (settings, provenance, rows) and ``out/cost.csv``;
run again with the same settings it keeps the rows already measured.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.errors import BenchError, check_device, check_out_folder, check_range

COST_JSON, COST_CSV = "cost.json", "cost.csv"
DTYPES = ("fp32", "bf16")
IMPLEMENTATIONS = ("ours", "diffusers")
CSV_FIELDS = ["config", "implementation", "parameters", "status", "reason", "memory_gib", "predicted_memory_gib",
              "step_ms", "images_per_s", "tflops_per_step", "achieved_tflops_per_s", "mfu"]


@dataclass(frozen=True)
class CostSettings:
    batch_size: int = 64
    dtype: str = "fp32"
    grad_checkpointing: bool = False
    resolution: int | None = None  # image side in pixels; None: each config's own
    device: str = "cpu"
    steps: int = 5  # timed steps (the median is reported)
    warmup: int = 1
    text_tokens: int = 120
    real_tokens: int = 24
    diffusers: bool = False
    max_memory_gib: float | None = None
    timeout_s: float = 1800.0

    def check(self) -> None:
        """BenchError naming the option, before anything is built."""
        check_range("--batch-size", self.batch_size, 1, 65536, whole=True)
        if self.dtype not in DTYPES:
            raise BenchError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        check_range("--steps", self.steps, 1, 10000, whole=True)
        check_range("--warmup", self.warmup, 0, 1000, whole=True)
        check_range("--text-tokens", self.text_tokens, 1, 4096, whole=True)
        check_range("--real-tokens", self.real_tokens, 1, self.text_tokens, whole=True,
                    why="at least one real token, at most --text-tokens")
        if self.resolution is not None:
            check_range("--resolution", self.resolution, 8, 16384, whole=True)
        if self.max_memory_gib is not None:
            check_range("--max-memory-gib", self.max_memory_gib, 0, above=True)
        check_range("--timeout", self.timeout_s, 0, above=True)
        check_device(self.device)


def parse_config(spec: str, resolution: int | None = None):
    """``PRESET[:FIELD=VALUE[,FIELD=VALUE...]]`` (PixArtConfig field names) → (spec, PixArtConfig); BenchError
    naming --config. ``resolution`` (pixels) sets ``input_size`` = resolution / 8."""
    from pixart.model import PRESETS, PixArtConfig

    preset, _, overrides = spec.partition(":")
    if preset not in PRESETS:
        raise BenchError(f"--config {spec!r}: unknown preset {preset!r}; choose one of {', '.join(sorted(PRESETS))}")
    fields = {f.name: f for f in dataclasses.fields(PixArtConfig)}
    changes = {}
    for item in filter(None, (part.strip() for part in overrides.split(","))):
        name, eq, value = item.partition("=")
        name = name.strip()
        if not eq or name not in fields:
            raise BenchError(f"--config {spec!r}: {item!r} is not FIELD=VALUE with a PixArtConfig field; the fields "
                             f"are {', '.join(fields)}")
        changes[name] = _convert(spec, name, str(fields[name].type), value.strip())
    if resolution is not None:
        changes["input_size"] = resolution // 8
        if resolution % 8:
            raise BenchError(f"--resolution {resolution} must be a multiple of 8 (the VAE's factor)")
    try:
        return spec, PixArtConfig.preset(preset, **changes)
    except ValueError as e:
        raise BenchError(f"--config {spec!r}{f' at --resolution {resolution}' if resolution else ''}: {e}") from None


def _convert(spec: str, name: str, kind: str, value: str):
    try:
        if kind.startswith("bool"):
            if value.lower() not in ("true", "false", "1", "0"):
                raise ValueError
            return value.lower() in ("true", "1")
        return int(value) if kind.startswith("int") else float(value) if kind.startswith("float") else value
    except ValueError:
        raise BenchError(f"--config {spec!r}: {name}={value!r} is not a {kind}") from None


# ---- one measured step -------------------------------------------------------------------------------------


def measure_step(config, settings: CostSettings, implementation: str = "ours") -> dict:
    """Build ``implementation`` on ``settings.device`` and time ``settings.steps`` training steps after
    ``settings.warmup`` (see the module's docstring). Returns {"step_s": [...], "median_s", "peak_bytes"
    (CUDA: max_memory_allocated; CPU: this process's peak RSS), "memory_measure", ...}. In this process:
    on CPU the peak RSS is the process's whole life, so call it in a fresh one (``measure_in_subprocess``)."""
    import torch

    from bench.ablate.flops import batch_inputs, build, forward
    from bench.ablate.timing import time_steps

    device = torch.device(settings.device)
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    with device:
        model = build(config, implementation).train()
    if settings.grad_checkpointing:
        model.enable_gradient_checkpointing()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True if cuda else None)
    inputs = batch_inputs(config, settings.batch_size, None, settings.text_tokens, settings.real_tokens, device,
                          torch.Generator().manual_seed(1))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=settings.dtype == "bf16")

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            out = forward(model, implementation, inputs)
        (out.float() - inputs["target"]).square().mean().backward()
        optimizer.step()

    times = time_steps(step, settings.warmup, settings.steps, device)
    result = {"step_s": times, "median_s": sorted(times)[len(times) // 2]}
    if cuda:
        result.update(peak_bytes=torch.cuda.max_memory_allocated(device),
                      reserved_bytes=torch.cuda.max_memory_reserved(device),
                      memory_measure="torch.cuda.max_memory_allocated over the timed steps",
                      device_name=torch.cuda.get_device_name(device))
    else:
        result.update(peak_bytes=peak_rss(), memory_measure="peak RSS of the process",
                      threads=torch.get_num_threads())
    return result


def peak_rss() -> int:
    """This process's peak resident set size in bytes. On Linux, ``VmHWM`` of ``/proc/self/status``: the
    peak of this process's own memory map. Not ``ru_maxrss``, which Linux carries over ``execve`` from the
    process that started this one (the child of a large pytest or Python process would report its
    parent's peak). Elsewhere ``ru_maxrss`` (macOS reports bytes)."""
    import resource

    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def _child() -> None:
    """The subprocess's entry: a JSON job on stdin, one JSON line on stdout."""
    job = json.loads(sys.stdin.read())
    import torch

    from pixart.model import PixArtConfig

    settings = CostSettings(**job["settings"])
    if job.get("memory_fraction"):
        torch.cuda.set_per_process_memory_fraction(job["memory_fraction"], torch.device(settings.device))
    try:
        result = measure_step(PixArtConfig.from_dict(job["config"]), settings, job["implementation"])
    except torch.cuda.OutOfMemoryError:
        result = {"oom": True}
    print(json.dumps(result))


# glibc keeps freed heap memory resident and raises its mmap threshold as blocks are freed, so the peak RSS
# would follow the allocator's high-water mark rather than the live tensors; a fixed threshold hands every
# block over 128 KiB back to the system when it is freed (other C libraries ignore the variable)
CHILD_ENV = {"PYTHONWARNINGS": "ignore", "MALLOC_MMAP_THRESHOLD_": "131072"}


def run_child(job: dict, timeout: float) -> dict:
    """Run ``_child`` with ``job`` in a fresh Python; {"error": why} when it fails or times out."""
    code = "from bench.ablate.cost import _child; _child()"
    try:
        done = subprocess.run([sys.executable, "-c", code], input=json.dumps(job), capture_output=True, text=True,
                              check=False, timeout=timeout, env={**os.environ, **CHILD_ENV})
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:g} s"}
    if done.returncode != 0:
        if done.returncode < 0:
            return {"error": f"the measuring process was killed (signal {-done.returncode}; out of memory?)"}
        tail = done.stderr.strip().splitlines()[-1:] or ["no message"]
        return {"error": f"the measuring process failed (exit {done.returncode}): {tail[0]}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


_BASELINES: dict = {}  # (implementation, dtype, checkpointing, python) → the baseline process's measurement


def measure_in_subprocess(config, settings: CostSettings, implementation: str = "ours") -> dict:
    """``measure_step`` in a fresh process; on CPU the memory is the peak RSS minus a baseline process's.
    Returns the measurement with "memory_bytes", or {"error": why}."""
    import torch

    job = {"config": config.to_dict(), "settings": asdict(settings), "implementation": implementation}
    cuda = torch.device(settings.device).type == "cuda"
    if cuda and settings.max_memory_gib:
        total = torch.cuda.get_device_properties(torch.device(settings.device)).total_memory
        job["memory_fraction"] = min(1.0, settings.max_memory_gib * 2**30 / total)
    result = run_child(job, settings.timeout_s)
    if "error" in result:
        return result
    if result.get("oom"):
        return {"error": "CUDA out of memory"}
    if cuda:
        result["memory_bytes"] = result["peak_bytes"]
    else:
        key = (implementation, settings.dtype, settings.grad_checkpointing, config.caption_channels, sys.executable)
        if key not in _BASELINES:  # once per process and kind of step
            from pixart.model import PixArtConfig

            tiny = PixArtConfig.preset("tiny", caption_channels=config.caption_channels)
            base = run_child({**job, "config": tiny.to_dict(), "settings": {**job["settings"], "batch_size": 1,
                                                                             "steps": 1, "warmup": 1}},
                             settings.timeout_s)
            if "error" in base:
                return {"error": f"baseline process: {base['error']}"}
            _BASELINES[key] = base
        base = _BASELINES[key]
        result.update(baseline_bytes=base["peak_bytes"], memory_bytes=result["peak_bytes"] - base["peak_bytes"],
                      memory_measure="peak RSS of the measuring process minus a baseline process's (the same "
                                     "step on the tiny preset at batch 1)")
    return result


# ---- the ablation: rows for several configs ------------------------------------------------------------------


def available_bytes(device: str) -> tuple[int | None, str]:
    """What a step may use: the card's memory on CUDA, the memory available now on CPU (Linux MemAvailable)."""
    import torch

    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_properties(torch.device(device)).total_memory, "the card's memory"
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "the memory available"
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "this computer's memory"
    except (AttributeError, ValueError, OSError):
        return None, "unknown"


def describe_device(device: str) -> dict:
    import platform

    import torch

    if torch.device(device).type == "cuda":
        return {"device": device, "name": torch.cuda.get_device_name(torch.device(device)),
                "cuda": torch.version.cuda}
    return {"device": device, "name": f"{os.cpu_count()}-core CPU ({platform.machine()})",
            "torch_threads": torch.get_num_threads()}


def cost_row(spec: str, config, implementation: str, settings: CostSettings, limit: tuple[int | None, str]) -> dict:
    """One row: counted figures always; measured ones, or "not measured" / "not available" and why."""
    from bench.ablate.flops import build, mfu, peak_flops, step_flops, step_precision
    from bench.ablate.memory import MemorySetting, predict_peak
    from bench.ablate.params import pixart_breakdown
    from pixart.checkpoints import CheckpointError

    row = {"config": spec, "implementation": implementation, "config_fields": config.to_dict()}
    if implementation == "diffusers":
        try:
            import torch

            with torch.device("meta"):
                row["parameters"] = sum(p.numel() for p in build(config, "diffusers").parameters())
        except CheckpointError as e:
            return {**row, "status": "not available", "reason": str(e)}
    else:
        row["breakdown"] = pixart_breakdown(config)
        row["parameters"] = sum(row["breakdown"].values())
    flops = step_flops(config, settings.batch_size, text_tokens=settings.text_tokens, implementation=implementation)
    row.update(flops_step=flops["step"], flops_forward=flops["forward"])
    predicted = predict_peak(config, MemorySetting(batch=settings.batch_size, dtype=settings.dtype,
                                                   grad_checkpointing=settings.grad_checkpointing,
                                                   text_tokens=settings.text_tokens))
    row.update(predicted_memory_bytes=predicted["total"], predicted_memory_gib=predicted["gib"])
    cap = settings.max_memory_gib * 2**30 if settings.max_memory_gib else limit[0]
    where = f"--max-memory-gib {settings.max_memory_gib:g}" if settings.max_memory_gib else limit[1]
    if cap is not None and predicted["total"] > cap:
        return {**row, "status": "not measured", "reason": f"the memory model predicts {predicted['gib']:.2f} GiB, "
                f"more than {where} ({cap / 2**30:.2f} GiB); not tried"}
    measured = measure_in_subprocess(config, settings, implementation)
    if "error" in measured:
        return {**row, "status": "not measured", "reason": measured["error"]}
    row.update({k: v for k, v in measured.items() if k != "peak_bytes"}, peak_bytes=measured["peak_bytes"])
    row.update(status="measured", reason="", memory_gib=measured["memory_bytes"] / 2**30,
               images_per_s=settings.batch_size / measured["median_s"],
               achieved_flops_per_s=flops["step"] / measured["median_s"])
    import torch

    device_type = torch.device(settings.device).type
    peak, why = peak_flops(measured.get("device_name") if device_type == "cuda" else None,
                           step_precision(settings.dtype, device_type))
    row.update(mfu=mfu(flops["step"], measured["median_s"], peak), peak_flops=peak, mfu_reason=why)
    return row


def _comparable(settings: dict) -> dict:
    """Settings two runs must share for one's rows to stand in the other's table (the limits may change)."""
    return {k: v for k, v in settings.items() if k not in ("timeout_s", "max_memory_gib")}


def run_cost(specs: list[str], settings: CostSettings, out, *, progress: bool = True, log=None) -> dict:
    """Measure every config of ``specs`` (see ``parse_config``) and write ``out/cost.json`` and ``cost.csv``;
    returns the record. Bad input is a BenchError before anything is measured or written."""
    from tqdm import tqdm

    from pixart.files import package_versions, write_json_atomic

    settings.check()
    out = check_out_folder(out, "--out")
    if not specs:
        raise BenchError("give at least one --config (e.g. --config XL-2-256 --config XL-2-256:adaln=block)")
    if len(set(specs)) < len(specs):
        raise BenchError(f"--config: {sorted(s for s in set(specs) if specs.count(s) > 1)} given more than once")
    configs = [parse_config(spec, settings.resolution) for spec in specs]
    previous = _previous_rows(out / COST_JSON, settings)
    record = {"format": "pixart-bench ablate cost", "settings": asdict(settings),
              "provenance": {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                             "device": describe_device(settings.device), "python": sys.version.split()[0],
                             "versions": package_versions(("torch", "diffusers"))},
              "memory_model": "bench.ablate.memory.predict_peak", "rows": []}
    limit = available_bytes(settings.device)
    jobs = [(spec, config, impl) for spec, config in configs
            for impl in (IMPLEMENTATIONS if settings.diffusers else ("ours",))]
    out.mkdir(parents=True, exist_ok=True)
    for spec, config, impl in tqdm(jobs, desc="ablate cost", unit="config", disable=not progress):
        row = previous.get((spec, impl))
        if row is None:
            row = cost_row(spec, config, impl, settings, limit)
        elif log:
            log(f"{spec} ({impl}): kept from {out / COST_JSON}")
        record["rows"].append(row)
        write_json_atomic(out / COST_JSON, record)
        write_csv(out / COST_CSV, record["rows"])
    return record


def _previous_rows(path: Path, settings: CostSettings) -> dict:
    """The finished rows of an earlier run in the same folder with the same settings; BenchError when the
    folder holds a run with other settings (its figures would be mixed with these)."""
    if not path.exists():
        return {}
    try:
        earlier = json.loads(path.read_text())
        same = _comparable(earlier["settings"]) == _comparable(asdict(settings))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise BenchError(f"--out: {path} exists and is not a cost table written by ablate cost; use another --out "
                         "folder") from None
    if not same:
        changed = sorted(k for k, v in _comparable(asdict(settings)).items() if earlier["settings"].get(k) != v)
        raise BenchError(f"--out: {path} holds a run with other settings ({', '.join(changed)}); use another --out "
                         "folder, or the same settings to resume it")
    return {(r["config"], r["implementation"]): r for r in earlier.get("rows", [])
            if r.get("status") in ("measured", "not available")}


def write_csv(path: Path, rows: list[dict]) -> Path:
    from pixart.files import atomic_write

    def cells(r: dict) -> dict:
        def fmt(v, scale=1.0, digits=4):
            return "" if v is None else f"{v * scale:.{digits}g}"

        return {"config": r["config"], "implementation": r["implementation"], "parameters": r.get("parameters", ""),
                "status": r["status"], "reason": r.get("reason", ""), "memory_gib": fmt(r.get("memory_gib")),
                "predicted_memory_gib": fmt(r.get("predicted_memory_gib")),
                "step_ms": fmt(r.get("median_s"), 1e3), "images_per_s": fmt(r.get("images_per_s")),
                "tflops_per_step": fmt(r.get("flops_step"), 1e-12), "achieved_tflops_per_s":
                fmt(r.get("achieved_flops_per_s"), 1e-12), "mfu": fmt(r.get("mfu"))}

    def write(tmp: Path):
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
            w.writeheader()
            w.writerows(cells(r) for r in rows)

    return atomic_write(path, write)
