"""Bad-input cases for the ``ablate`` group (``ablate cost``, ``ablate fid``, ``ablate train``) and the
``bench.ablate`` functions behind them (see tests/bad_input.py). Case ids start with the command or
function they run; every case fails before anything is measured, generated or trained."""

from __future__ import annotations

import json

from bad_input import ApiCase, CliCase, write
from bad_input_fid import folder, raw_npz
from bad_input_model import no_cuda
from bad_input_world import option_cases

from bench.ablate.cost import CostSettings, parse_config, run_cost
from bench.ablate.fid import model_names, prepare_ablate_fid, read_prompts
from bench.ablate.memory import MemorySetting, predict_peak
from bench.ablate.train import run_train_ablation
from bench.ablate.train_budget import BUDGETS, make_budget, parse_claims
from bench.errors import BenchError
from bench.world.demo import REFERENCE
from pixart.model import PixArtConfig


def cost(f, i, *extra, out=None) -> list:
    """``ablate cost`` on the tiny preset (a run that would measure in seconds), with ``extra``."""
    return ["ablate", "cost", "--config", "tiny", "--out", out or f / "out", "--steps", "1", "--text-tokens", "8",
            "--real-tokens", "4", *extra]


COST_OPTIONS = r"""
--batch-size 0                      | --batch-size must be a whole number from 1 to 65,536, got 0
--dtype fp16                        | Invalid value for '--dtype'
--steps 0                           | --steps must be a whole number from 1 to 10,000, got 0
--warmup -1                         | --warmup must be a whole number from 0 to 1,000, got -1
--real-tokens 9                     | --real-tokens must be a whole number from 1 to 8 \(at least one real token
--text-tokens 0                     | --text-tokens must be a whole number from 1 to 4,096, got 0
--resolution 100                    | --resolution 100 must be a multiple of 8
--resolution 72                     | --config 'tiny' at --resolution 72: input_size 9 is not divisible by patch_size 2
--max-memory-gib 0                  | --max-memory-gib must be a number above 0, got 0.0
--timeout -5                        | --timeout must be a number above 0, got -5.0
--device tpu                        | --device 'tpu' is not a device name
--config XL-3-256                   | --config 'XL-3-256': unknown preset 'XL-3-256'; choose one of
--config tiny:hidden=64             | --config 'tiny:hidden=64': 'hidden=64' is not FIELD=VALUE with a PixArtConfig
--config tiny:depth=two             | --config 'tiny:depth=two': depth='two' is not a int
--config tiny:adaln=blocks          | --config 'tiny:adaln=blocks': adaln must be 'single' or 'block'
--config tiny:micro_conditions=yes  | micro_conditions='yes' is not a bool
"""


def other_run(f, i) -> list:
    """A cost.json of a run at another batch size in ``out``."""
    settings = {**CostSettings(batch_size=2, text_tokens=8, real_tokens=4, steps=1).__dict__}
    write(f / "out" / "cost.json", json.dumps({"settings": settings, "rows": []}))
    return cost(f, None, "--batch-size", "4")


def fid(f, i, *extra, prompts=None, ref=None, ckpt=None, out=None) -> list:
    """``ablate fid`` of the tiny pipeline against a folder of 3 PNGs with the random Inception."""
    if prompts is None:
        prompts = write(f / "prompts.txt", "a red circle\na blue square\n")
    return ["ablate", "fid", "--prompts", prompts, "--ref", ref or folder(f / "ref"), "--ckpt",
            ckpt or f"a={i.pipeline}", "--out", out or f / "out", "--n", "2", "--inception-weights", i.inception,
            "--cache", f / "cache", "--device", "cpu", *extra]


FID_OPTIONS = r"""
--n 1                  | --n must be a whole number from 2 to 10,000,000 \(FID needs at least 2 images\), got 1
--seed -1              | --seed must be a whole number
--batch-size 0         | --batch-size must be a whole number from 1 to 4,096, got 0
--fid-batch-size 0     | --fid-batch-size must be a whole number from 1 to 4,096, got 0
--resize bicubic       | Invalid value for '--resize'
--no-cache             | --cache and --no-cache contradict each other
"""


CLI_CASES = [
    # ---- ablate cost ----------------------------------------------------------------------------------------
    *option_cases("ablate cost", cost, COST_OPTIONS),
    CliCase("ablate cost: --device cuda without CUDA", lambda f, i: no_cuda() or cost(f, i, "--device", "cuda"),
            r"--device cuda: no CUDA device is available"),
    CliCase("ablate cost: --config given twice", lambda f, i: cost(f, i, "--config", "tiny"),
            r"--config: \['tiny'\] given more than once"),
    CliCase("ablate cost: --out is a file", lambda f, i: cost(f, i, out=write(f / "cost.json", "{}")),
            r"--out .*cost.json is a file, not a folder"),
    CliCase("ablate cost: --out holds a run with other settings", other_run,
            r"--out: .*cost.json holds a run with other settings \(batch_size\); use another --out folder"),
    CliCase("ablate cost: --out holds another cost.json",
            lambda f, i: write(f / "out" / "cost.json", "[1, 2]") and cost(f, i),
            r"--out: .*cost.json exists and is not a cost table written by ablate cost"),
    # ---- ablate fid -----------------------------------------------------------------------------------------
    *option_cases("ablate fid", fid, FID_OPTIONS),
    CliCase("ablate fid: --prompts missing", lambda f, i: fid(f, i, prompts=f / "nowhere.txt"),
            r"--prompts file not found: .*nowhere.txt"),
    CliCase("ablate fid: --prompts empty", lambda f, i: fid(f, i, prompts=write(f / "p.txt", "\n  \n")),
            r"--prompts file .*p.txt has no prompts"),
    CliCase("ablate fid: --prompts not UTF-8", lambda f, i: fid(f, i, prompts=write(f / "p.txt", b"\xff\xfe a")),
            r"--prompts file .*p.txt.*not UTF-8"),
    CliCase("ablate fid: --ckpt missing", lambda f, i: fid(f, i, ckpt=f"a={f / 'nowhere'}"),
            r"checkpoint not found: .*nowhere"),
    CliCase("ablate fid: --ckpt names twice",
            lambda f, i: fid(f, i, "--ckpt", f"a={i.pipeline}"), r"--ckpt: the model name\(s\) a are given twice"),
    CliCase("ablate fid: --ckpt with a bad name", lambda f, i: fid(f, i, ckpt=f"my model={i.pipeline}"),
            r"--ckpt 'my model=.*': the model name 'my model' must be a folder name"),
    CliCase("ablate fid: --ckpt a folder of images",
            lambda f, i: fid(f, i, ckpt=f"x={folder(f / 'gen' / 'samples').parent}"),
            r"--ckpt .*gen: a folder of images, not a model; score it with `pixart-bench fid folder`"),
    CliCase("ablate fid: --ref missing", lambda f, i: fid(f, i, ref=f / "no-ref"),
            r"reference image folder not found: .*no-ref"),
    CliCase("ablate fid: --ref .npz of another tool",
            lambda f, i: fid(f, i, ref=raw_npz(f / "ref.npz", mu=[0.0, 0.0], sigma=[[1.0, 0], [0, 1.0]])),
            r"FID statistics .*ref.npz lack n, provenance"),
    CliCase("ablate fid: --inception-weights missing",
            lambda f, i: fid(f, i, "--inception-weights", f / "w.pt"),
            r"--inception-weights .*w.pt: no such file"),
    CliCase("ablate fid: --out is a file", lambda f, i: fid(f, i, out=write(f / "o.json", "{}")),
            r"--out .*o.json is a file, not a folder"),
]

API_CASES = [
    ApiCase("parse_config: an override without a value", lambda f, i: ("tiny:depth",), parse_config, BenchError,
            r"'depth' is not FIELD=VALUE"),
    ApiCase("CostSettings.check: unknown dtype", lambda f, i: (CostSettings(dtype="fp8"),), CostSettings.check,
            BenchError, r"--dtype must be one of fp32, bf16, got 'fp8'"),
    ApiCase("run_cost: no config", lambda f, i: ([], CostSettings(), f / "out"),
            lambda specs, settings, out: run_cost(specs, settings, out, progress=False), BenchError,
            r"give at least one --config"),
    ApiCase("predict_peak: unknown dtype", lambda f, i: (PixArtConfig.preset("tiny"), MemorySetting(batch=1,
                                                                                                   dtype="int8")),
            predict_peak, ValueError, r"dtype must be fp32, bf16 or fp16, got 'int8'"),
    ApiCase("model_names: a name with a space", lambda f, i: (["runs/my model"],), model_names, BenchError,
            r"--ckpt 'runs/my model': the model name 'my model' must be a folder name"),
    ApiCase("read_prompts: a folder", lambda f, i: (folder(f / "p"), 3), read_prompts, BenchError,
            r"--prompts file .*p is a folder, not a file"),
    ApiCase("prepare_ablate_fid: no model", lambda f, i: (f / "out", write(f / "p.txt", "a\n"), folder(f / "r")),
            lambda out, prompts, ref: prepare_ablate_fid(out, prompts=prompts, ref=ref, n=2, models=[]),
            BenchError, r"give at least one --ckpt"),
]


# ---- ablate train (bench.ablate.train) ----------------------------------------------------------------------


def train(f, i, *extra, out=None) -> list:
    """``ablate train`` at the quick budget with ``extra`` (the default components: the bundled reference)."""
    return ["ablate", "train", "--out", out or f / "out", "--budget", "quick", *extra]


TRAIN_OPTIONS = r"""
--budget huge       | --budget must be one of quick, small, gpu, got 'huge'
--claims 4          | --claims must be a comma-separated list of 1, 2, 3 \(e.g. 1,3\), got '4'
--claims 1,two      | --claims must be a comma-separated list .* got '1,two'
--claims ,          | --claims must be a comma-separated list .* got ','
--seeds 0           | --seeds must be a whole number from 1 to 1,000, got 0
--seeds two         | Invalid value for '--seeds'
--steps 3           | --steps 3 must be a multiple of 2, the evaluations per arm of budget quick
--steps 1           | --steps must be a whole number from 2 to 10,000,000 \(each arm is evaluated 2 times
--threads 0         | --threads must be a whole number from 1 to 1,024, got 0
--workers 0         | --workers must be a whole number from 1 to 256, got 0
"""


def other_ablation(f, i) -> list:
    """An ``--out`` holding a quick ablation run with --steps 8 (its settings.json), asked for the default steps."""
    from bench.ablate.train_budget import check_request, make_budget
    from bench.world.demo import REFERENCE

    write(f / "out" / "settings.json", json.dumps(check_request(f / "out", make_budget("quick", steps=8), REFERENCE,
                                                                None)))
    write(f / "out" / "runs" / "base" / "seed-0" / "done.json", "{}")
    return train(f, i)


CLI_CASES += [
    *option_cases("ablate train", train, TRAIN_OPTIONS),
    CliCase("ablate train: --components missing", lambda f, i: train(f, i, "--components", f / "nowhere"),
            r"--components .*nowhere: no such folder"),
    CliCase("ablate train: --components without T5 and VAE",
            lambda f, i: train(f, i, "--components", folder(f / "images")),
            r"--components .*images: no tokenizer/, text_encoder/, vae/ there"),
    CliCase("ablate train: --out is a file", lambda f, i: train(f, i, out=write(f / "a.json", "{}")),
            r"--out .*a.json is a file, not a folder"),
    CliCase("ablate train: --out holds an ablation with other settings", other_ablation,
            r"--out .*out holds a training ablation with other settings \(steps\); resume it with its own"),
    CliCase("ablate train: --out holds a damaged settings.json",
            lambda f, i: write(f / "out" / "settings.json", '{"budget": ') and train(f, i),
            r"ablation settings .*settings.json.*invalid JSON"),
]

API_CASES += [
    ApiCase("make_budget: unknown budget", lambda f, i: ("medium",), make_budget, BenchError,
            r"--budget must be one of quick, small, gpu, got 'medium'"),
    ApiCase("parse_claims: claim 0", lambda f, i: ("0",), parse_claims, BenchError,
            r"--claims must be a comma-separated list of 1, 2, 3"),
    ApiCase("run_train_ablation: no claims", lambda f, i: (f / "out", BUDGETS["quick"], []),
            lambda out, budget, claims: run_train_ablation(out, budget, claims, components=REFERENCE, progress=False),
            BenchError, r"--claims: choose at least one claim"),
]


# ---- the --out rule: a folder holding another command's run is refused, naming it (bench.errors.check_out) ----
from bad_input_world import TAKEN, another_run  # noqa: E402

CLI_CASES += [
    CliCase("ablate cost: --out holds another command's run", lambda f, i: [
        "ablate", "cost", "--config", "tiny", "--out", another_run(f, i)], r"--out .*demo-report " + TAKEN),
    CliCase("ablate fid: --out holds another command's run", lambda f, i: [
        "ablate", "fid", "--prompts", f / "p.txt", "--ref", f / "ref", "--ckpt", f"a={i.pipeline}", "--out",
        another_run(f, i)], r"--out .*demo-report " + TAKEN),
    CliCase("ablate train: --out holds another command's run", lambda f, i: [
        "ablate", "train", "--out", another_run(f, i), "--budget", "quick"], r"--out .*demo-report " + TAKEN),
]
