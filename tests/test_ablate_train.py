"""The training ablation on the world (``pixart-bench ablate train``, bench.ablate.train and its parts).

- the stage-1 conversions: the re-parameterised adaLN-single model equals the per-block model at
  t* = 500 for any input and differs elsewhere; the plain copy keeps every shared weight;
- the verdict rule on synthetic per-seed numbers (superiority, non-inferiority within a margin,
  no spread, too few seeds, the combination of decisive metrics);
- ``ablate train --budget quick`` end to end, claims 1 and 3 (2 seeds): JSON, CSV, plots, the
  table; run again it trains nothing (every file of the runs unchanged, no trainer call); an
  interrupted arm resumes only its own missing part, and one whose files do not fit the plan is set
  aside and retrained to the same numbers. All three claims (stage-1 runs, conversions) is slow.
"""

from __future__ import annotations

import csv
import hashlib
import json

import pytest
import torch

from bench.ablate.arms import ARMS, CLAIMS, arms_for, copy_shared, reparam, stage1_runs_for
from bench.ablate.train_budget import BUDGETS, make_budget, parse_claims
from bench.ablate.verdicts import HELD, INCONCLUSIVE, NOT_HELD, combine, compare, metric_verdict, per_seed
from pixart.model import PixArt, PixArtConfig

# ---- the conversions ---------------------------------------------------------------------------------------


def _block_model(seed=0) -> PixArt:
    torch.manual_seed(seed)
    config = PixArtConfig(input_size=8, hidden_size=48, depth=3, num_heads=4, caption_channels=16,
                          model_max_length=8, adaln="block")
    model = PixArt(config).double()
    with torch.no_grad():  # trained-looking weights: adaLN-Zero and the zero-initialised layers made non-zero
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def _outputs(model, t):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 8, 8, generator=g, dtype=torch.float64)
    y = torch.randn(2, 5, 16, generator=g, dtype=torch.float64)
    return model(x, torch.tensor([t, t]), y, torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]))


def test_reparam_equals_the_per_block_model_at_t_star_only():
    block = _block_model()
    single = reparam(block).double()
    assert single.config.adaln == "single" and not hasattr(single.blocks[0], "adaLN_modulation")
    assert torch.allclose(_outputs(single, 500), _outputs(block, 500), atol=1e-12)
    assert (_outputs(single, 100) - _outputs(block, 100)).abs().max() > 1e-3  # only the time path differs
    assert torch.equal(single.blocks[0].scale_shift_table, torch.zeros(6, 48, dtype=torch.float64))  # E(0) = 0


def test_copy_shared_keeps_the_shared_weights_and_leaves_adaln_single_fresh():
    block = _block_model()
    copy = copy_shared(block, seed=3).double()
    shared = {k: v for k, v in block.state_dict().items() if ".adaLN_modulation." not in k}
    assert all(torch.equal(copy.state_dict()[k], v) for k, v in shared.items())
    torch.manual_seed(3)  # the initialisation copy_shared leaves in place
    fresh = PixArt(block.config.replace(adaln="single")).double()
    assert torch.equal(copy.t_block[1].weight, fresh.t_block[1].weight)
    assert not torch.allclose(_outputs(copy, 500), _outputs(block, 500))
    with pytest.raises(ValueError, match="per-block adaLN"):
        reparam(fresh)


def test_claims_name_their_arms_and_stage1_runs():
    assert arms_for([1]) == ["base", "block"]
    assert arms_for([3]) == ["base", "sparse"]
    assert set(arms_for([2])) == {"base", "stage1", "stage1-dit-reparam", "stage1-dit-copy"}
    assert stage1_runs_for(arms_for([2])) == ["stage1-single", "stage1-block"] and stage1_runs_for(["block"]) == []
    assert all(c.a in ARMS and c.b in ARMS for claim in CLAIMS.values() for c in claim.comparisons)
    assert parse_claims(" 3, 1,1") == [1, 3]
    assert make_budget("small", steps=900, seeds=5).steps == 900 and BUDGETS["small"].steps == 600
    assert BUDGETS["small"].eval_steps() == [200, 400, 600]


# ---- the verdict rule --------------------------------------------------------------------------------------


def test_superiority_needs_the_ci_on_one_side_of_zero():
    better = metric_verdict("superiority", "oracle", [0.30, 0.32, 0.35, 0.31], [0.20, 0.21, 0.25, 0.22])
    assert better["verdict"] == HELD and better["difference"] == pytest.approx(0.1) and better["ci95"][0] > 0
    worse = metric_verdict("superiority", "oracle", [0.20, 0.21, 0.25, 0.22], [0.30, 0.32, 0.35, 0.31])
    assert worse["verdict"] == NOT_HELD
    mixed = metric_verdict("superiority", "oracle", [0.30, 0.20, 0.35], [0.25, 0.26, 0.30])
    assert mixed["verdict"] == INCONCLUSIVE
    # a loss: lower is better, so a's smaller loss is the advantage
    assert metric_verdict("superiority", "val_mse", [0.50, 0.51, 0.49], [0.55, 0.56, 0.57])["verdict"] == HELD


def test_few_seeds_need_the_t_interval_too():
    # three differences of one sign but very different sizes: the bootstrap CI is [min, max], above 0;
    # the t-interval (t = 4.30 at 2 degrees of freedom) reaches below 0, so nothing is decided
    spread = metric_verdict("superiority", "oracle", [0.101, 0.15, 0.102], [0.1, 0.1, 0.1])
    assert spread["ci95"][0] > 0 and spread["t_ci95"][0] < 0 and spread["verdict"] == INCONCLUSIVE
    assert spread["decision_ci95"] == [spread["t_ci95"][0], spread["t_ci95"][1]]
    tight = metric_verdict("superiority", "oracle", [0.110, 0.112, 0.111], [0.1, 0.1, 0.1])
    assert tight["t_ci95"][0] > 0 and tight["verdict"] == HELD
    # two seeds: t at 1 degree of freedom is 12.7, so only a difference far beyond its spread decides
    assert metric_verdict("superiority", "oracle", [0.2, 0.3], [0.1, 0.1])["verdict"] == INCONCLUSIVE
    assert metric_verdict("superiority", "oracle", [0.30, 0.31], [0.1, 0.1])["verdict"] == HELD


def test_non_inferiority_is_judged_against_the_margin():
    # val_mse: margin 2% of b's mean (0.01 here); a worse by ~0.004 everywhere is still within it
    within = metric_verdict("non-inferiority", "val_mse", [0.504, 0.505, 0.503], [0.500, 0.501, 0.499])
    assert within["verdict"] == HELD and within["margin"] == pytest.approx(0.01)
    beyond = metric_verdict("non-inferiority", "val_mse", [0.53, 0.54, 0.535], [0.50, 0.501, 0.499])
    assert beyond["verdict"] == NOT_HELD
    straddles = metric_verdict("non-inferiority", "val_mse", [0.50, 0.52, 0.505], [0.50, 0.50, 0.50])
    assert straddles["verdict"] == INCONCLUSIVE
    # oracle: an absolute margin of 0.05
    assert metric_verdict("non-inferiority", "oracle", [0.28, 0.29], [0.30, 0.31])["verdict"] == HELD


def test_no_spread_or_one_seed_is_inconclusive_and_the_decisive_metrics_combine():
    floor = metric_verdict("superiority", "oracle", [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
    assert floor["verdict"] == INCONCLUSIVE and "no spread" in floor["why"]
    assert metric_verdict("superiority", "oracle", [0.5], [0.1])["verdict"] == INCONCLUSIVE
    assert combine([INCONCLUSIVE, HELD]) == HELD
    assert combine([NOT_HELD, INCONCLUSIVE]) == NOT_HELD
    assert combine([HELD, NOT_HELD]) == INCONCLUSIVE and combine([INCONCLUSIVE]) == INCONCLUSIVE


def _curve(values, metric="val_mse"):
    return [{"step": 100 * (k + 1), metric: v} for k, v in enumerate(values)]


def test_a_comparison_pairs_seeds_and_reads_the_final_value_or_the_mean():
    curves = {"stage1": {0: _curve([0.9, 0.5]), 1: _curve([0.8, 0.5]), 2: _curve([0.85, 0.5])},
              "base": {0: _curve([1.0, 0.5]), 1: _curve([1.0, 0.5]), 2: _curve([1.0, 0.5]), 3: _curve([0.1, 0.1])}}
    assert per_seed(curves, "stage1", "val_mse", "mean") == {0: pytest.approx(0.7), 1: 0.65, 2: 0.675}
    comp = CLAIMS[2].comparisons[0]  # stage1 vs base, at the mean over evaluations
    mean = compare(curves, type(comp)(**{**comp.__dict__, "decisive": ("val_mse",)}))
    assert mean["metrics"]["val_mse"]["n_seeds"] == 3  # seed 3 has no partner
    assert mean["verdict"] == HELD  # lower loss along the way: faster
    final = compare(curves, type(comp)(**{**comp.__dict__, "decisive": ("val_mse",), "at": "final"}))
    assert final["verdict"] == INCONCLUSIVE  # they end equal


# ---- end to end --------------------------------------------------------------------------------------------


def invoke(args):
    from typer.testing import CliRunner

    from bench.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, f"{result.output}\n{result.exception!r}"
    return result.output


def _snapshot(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Claims 1 and 3 at the quick budget (arms base, block, sparse; 2 seeds): the fast end-to-end run."""
    out = tmp_path_factory.mktemp("ablate") / "quick"
    output = invoke(["ablate", "train", "--out", out, "--budget", "quick", "--claims", "1,3", "--threads", "1"])
    return out, output


def _check_results(out, claims, arms):
    result = json.loads((out / "ablate_train.json").read_text())
    assert set(result["claims"]) == {str(c) for c in claims} and result["settings"]["seeds"] == [0, 1]
    assert set(result["curves"]) == set(arms) and all(len(c) == 2 for c in result["curves"].values())
    for claim in result["claims"].values():
        assert claim["verdict"] in (HELD, NOT_HELD, INCONCLUSIVE)
        for comp in claim["comparisons"]:
            assert all(m["n_seeds"] == 2 for m in comp["metrics"].values())
    rows = list(csv.DictReader((out / "ablate_train.csv").open()))
    assert len(rows) == len(arms) * 2 * BUDGETS["quick"].evals
    assert {r["step"] for r in rows} == {"2", "4"} and all(float(r["val_mse"]) > 0 for r in rows)
    for n in claims:
        assert (out / "plots" / f"claim{n}.png").stat().st_size > 10_000 and (out / "plots" / f"claim{n}.svg").is_file()
    # every arm trained the same number of steps (equal budgets), each evaluation its fixed image set
    for arm in arms:
        steps = [json.loads(line)["step"] for line in (out / "runs" / arm / "seed-1" / "metrics.jsonl").open()]
        assert steps == [1, 2, 3, 4]
        assert len(list((out / "runs" / arm / "seed-1" / "eval" / "step-0000004" / "images").glob("*.png"))) == 4
    return result


@pytest.mark.slow  # the quick budget end to end, ~20 s with its fixture: in the slow suite
def test_quick_writes_the_claims_with_curves_csv_and_plots(quick):
    out, output = quick
    result = _check_results(out, [1, 3], ["base", "block", "sparse"])
    assert result["stage1"] == []
    cost = result["claims"]["1"]["cost"]
    assert cost["base"]["parameters"] != cost["block"]["parameters"] and cost["base"]["sec_per_step"] > 0
    assert "verdict" in output and "ablate_train.json" in output


@pytest.mark.slow  # the quick budget end to end, ~20 s with its fixture: in the slow suite
def test_running_again_trains_nothing(quick, monkeypatch):
    out, _ = quick
    before = _snapshot(out / "runs")
    calls = []
    monkeypatch.setattr("pixart.train.train", lambda *a, **k: calls.append(a) or pytest.fail("trained again"))
    invoke(["ablate", "train", "--out", out, "--budget", "quick", "--claims", "1,3", "--threads", "1"])
    assert calls == [] and _snapshot(out / "runs") == before


@pytest.mark.slow  # the quick budget end to end, ~20 s with its fixture: in the slow suite
def test_an_interrupted_or_inconsistent_arm_is_resumed_or_redone(quick):
    """Changes the module's run in place (the feature cache names its components by path): the last test of it."""
    out, _ = quick
    result = json.loads((out / "ablate_train.json").read_text())
    # "block" seed 1 lost its last evaluation and its finished mark: only its evaluation is redone
    run = out / "runs" / "block" / "seed-1"
    (run / "done.json").unlink()
    (run / "eval" / "step-0000004.json").unlink()
    metrics = (run / "metrics.jsonl").read_text()
    # "sparse" seed 0 lost its first evaluation but has a later checkpoint: set aside and trained again
    odd = out / "runs" / "sparse" / "seed-0"
    (odd / "done.json").unlink()
    (odd / "eval" / "step-0000002.json").unlink()
    others = {k: v for k, v in _snapshot(out / "runs").items() if not k.startswith(("block/seed-1", "sparse/seed-0"))}
    invoke(["ablate", "train", "--out", out, "--budget", "quick", "--claims", "1,3", "--threads", "1"])
    assert (run / "metrics.jsonl").read_text() == metrics  # no step trained again
    assert (out / "runs" / "sparse" / "seed-0.set-aside-1").is_dir() and (odd / "done.json").is_file()
    after = json.loads((out / "ablate_train.json").read_text())
    for arm, seed in (("block", "1"), ("sparse", "0")):
        for old, new in zip(result["curves"][arm][seed], after["curves"][arm][seed]):
            assert new["val_mse"] == pytest.approx(old["val_mse"], rel=1e-5)  # the same training, deterministically
    now = _snapshot(out / "runs")
    assert all(now.get(k) == v for k, v in others.items())


@pytest.mark.slow
def test_quick_runs_all_three_claims_end_to_end(tmp_path):
    out = tmp_path / "quick"
    invoke(["ablate", "train", "--out", out, "--budget", "quick", "--threads", "1"])
    result = _check_results(out, [1, 2, 3], list(ARMS))
    assert {r["run"] for r in result["stage1"]} == {"stage1-single", "stage1-block"}
    for arm in ("stage1-dit-reparam", "stage1-dit-copy"):
        assert (out / "runs" / arm / "seed-0" / "init" / "config.json").is_file()
    names = [c["name"] for c in result["claims"]["2"]["comparisons"]]
    assert names == ["stage-1 init vs scratch", "re-parameterised vs plain copy", "re-parameterised vs scratch"]
