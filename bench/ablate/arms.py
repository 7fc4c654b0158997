"""The arms of ``ablate train`` and the claims they test; the stage-1 conversions of the paper.

An arm is one way of training the world's 64 px text-to-image stage (stage 2 of the recipe,
``bench.world.reference``) that differs from the control arm ``base`` in one thing:

==================== ========== ====================================== =====================
arm                  adaLN      initialisation                         captions
==================== ========== ====================================== =====================
base                 single     from scratch                           the recipe's
block                per block  from scratch                           the recipe's
stage1               single     stage 1 (class-conditional, adaLN-     the recipe's
                                single): a plain copy of its EMA
stage1-dit-reparam   single     stage 1 trained DiT-style (per-block   the recipe's
                                adaLN), re-parameterised (``reparam``)
stage1-dit-copy      single     the same stage 1, shared weights       the recipe's
                                copied, adaLN-single parts fresh
sparse               single     from scratch                           the sparse caption
==================== ========== ====================================== =====================

"The recipe's" caption is the dataset's training caption (``bench.world.dataset``: the dense
caption, or half of the time its colours, shapes and relations only); "sparse" is the main object's
colour and shape ("a red circle"). The claims compare arms pairwise (``CLAIMS``): each comparison
names a direction (which arm the paper says is better), its kind (``superiority`` or
``non-inferiority`` within a margin) and its decisive metrics; ``bench.ablate.verdicts`` applies the
rule.

The paper turns a class-conditional DiT (per-block adaLN) into PixArt (adaLN-single) by setting
each block's table E(i) so that the two agree at t* = 500 (``pixart.dit_init`` does this for real
DiT checkpoints). The world's stage 1 conditions on the class through the caption path, not the
time path, so its per-block model (``adaln="block"``) converts more simply: ``t_block`` takes
block 0's adaLN MLP, E(i) = adaLN_i(t(t*)) − adaLN_0(t(t*)), and every other weight (the final
layer's table included: it is the same module in both variants) is copied. ``copy_shared`` is
the paper's "w/o re-param" row: the shared weights copied, ``t_block`` and the tables left at
PixArt's seeded initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from pixart.model import PixArt

T_STAR = 500  # the paper's re-parameterisation timestep


@dataclass(frozen=True)
class Arm:
    name: str
    adaln: str = "single"  # "single" | "block"
    init: str = "scratch"  # "scratch" | "stage1" | "dit-reparam" | "dit-copy"
    captions: str = "recipe"  # "recipe" | "sparse"
    help: str = ""

    @property
    def stage1(self) -> str | None:
        """The stage-1 run this arm starts from (None: from scratch)."""
        return {"stage1": "stage1-single", "dit-reparam": "stage1-block", "dit-copy": "stage1-block"}.get(self.init)


ARMS = {a.name: a for a in (
    Arm("base", help="adaLN-single from scratch, the recipe's captions (the control arm)"),
    Arm("block", adaln="block", help="per-block adaLN from scratch"),
    Arm("stage1", init="stage1", help="from a class-conditional adaLN-single stage 1 (a plain copy)"),
    Arm("stage1-dit-reparam", init="dit-reparam", help="from a per-block (DiT-style) stage 1, re-parameterised"),
    Arm("stage1-dit-copy", init="dit-copy", help="from the per-block stage 1: shared weights copied, adaLN-single new"),
    Arm("sparse", captions="sparse", help="adaLN-single from scratch, sparse captions"),
)}
STAGE1 = {"stage1-single": "single", "stage1-block": "block"}  # stage-1 run -> its adaLN


@dataclass(frozen=True)
class Comparison:
    """Arm ``a`` against arm ``b``; the paper says ``a`` is better (superiority) or no worse by more
    than each metric's margin (non-inferiority). ``at``: "final" (the last evaluation) or "mean" (the
    mean over evaluations: the area under the curve, what "faster" means at equal steps)."""

    name: str
    a: str
    b: str
    kind: str  # "superiority" | "non-inferiority"
    decisive: tuple  # metric names, in the order they are reported
    at: str = "final"
    question: str = ""


@dataclass(frozen=True)
class Claim:
    number: int
    title: str
    comparisons: tuple
    report: tuple = field(default=())  # further metrics shown for every comparison (not decisive)


CLAIMS = {
    1: Claim(1, "adaLN-single keeps the quality of per-block adaLN at fewer parameters", (
        Comparison("single vs block", "base", "block", "non-inferiority", ("oracle", "val_mse"),
                   question="Does the cheaper adaLN-single block keep quality?"),),
        report=("world_fid", "colour_recall", "text_gain", "train_loss")),
    2: Claim(2, "the class-conditional stage 1 speeds up text-image alignment; the DiT re-parameterisation helps", (
        Comparison("stage-1 init vs scratch", "stage1", "base", "superiority", ("oracle", "text_gain"), at="mean",
                   question="Does the pixel-dependency stage speed up text-image alignment?"),
        Comparison("re-parameterised vs plain copy", "stage1-dit-reparam", "stage1-dit-copy", "superiority",
                   ("oracle", "val_mse"), at="mean",
                   question="Does the DiT-style re-parameterisation beat copying the shared weights?"),
        Comparison("re-parameterised vs scratch", "stage1-dit-reparam", "base", "superiority", ("oracle", "text_gain"),
                   at="mean", question="Does a DiT-style stage 1, re-parameterised, beat training from scratch?")),
        report=("val_mse", "text_gain", "colour_recall", "world_fid", "train_loss")),
    3: Claim(3, "dense captions align text and image better than sparse ones", (
        Comparison("dense vs sparse", "base", "sparse", "superiority", ("binding_spatial", "text_gain"),
                   question="Do dense captions align better?"),),
        report=("oracle_color", "oracle_texture", "oracle_spatial", "colour_recall", "val_mse", "world_fid")),
}


def arms_for(claims: list[int]) -> list[str]:
    """The arms the claims need, in ``ARMS`` order."""
    wanted = {name for c in claims for comp in CLAIMS[c].comparisons for name in (comp.a, comp.b)}
    return [name for name in ARMS if name in wanted]


def stage1_runs_for(arms: list[str]) -> list[str]:
    return [s for s in STAGE1 if any(ARMS[a].stage1 == s for a in arms)]


# ------------------------------------------------------------------------------------------
# Stage 1 (per-block adaLN) -> adaLN-single
# ------------------------------------------------------------------------------------------


def _single_like(block_model: PixArt, seed: int) -> PixArt:
    torch.manual_seed(seed)  # the adaLN-single parts a copy leaves at their initialisation
    return PixArt(block_model.config.replace(adaln="single")).to(torch.float64)


def _check_block(model: PixArt) -> None:
    if model.config.adaln != "block":
        raise ValueError(f"the conversion starts from a per-block adaLN model, got adaln={model.config.adaln!r}")


def copy_shared(block_model: PixArt, seed: int = 0) -> PixArt:
    """An adaLN-single model with every weight the two variants share copied from ``block_model``;
    ``t_block`` and the per-block tables keep PixArt's initialisation (seeded)."""
    _check_block(block_model)
    single = _single_like(block_model, seed)
    sd = single.state_dict()
    for k, v in block_model.state_dict().items():
        if ".adaLN_modulation." not in k:
            sd[k] = v.to(torch.float64)
    single.load_state_dict(sd, strict=True)
    return single.to(block_model.x_embedder.proj.weight.dtype)


def reparam(block_model: PixArt, t_star: int = T_STAR, seed: int = 0) -> PixArt:
    """The paper's re-parameterisation: an adaLN-single model equal to ``block_model`` at ``t_star``
    (every input), computed in float64."""
    _check_block(block_model)
    single = _single_like(block_model, seed)
    sd = {k: v.to(torch.float64) for k, v in block_model.state_dict().items()}
    w0, b0 = sd["blocks.0.adaLN_modulation.1.weight"], sd["blocks.0.adaLN_modulation.1.bias"]
    new = single.state_dict()
    for k, v in sd.items():
        if ".adaLN_modulation." not in k:
            new[k] = v
    new["t_block.1.weight"], new["t_block.1.bias"] = w0.clone(), b0.clone()
    single.load_state_dict(new, strict=True)
    d = block_model.config.hidden_size
    with torch.no_grad():
        t = single.t_embedder(torch.tensor([float(t_star)], dtype=torch.float64))[0]  # the copied embedder
        global_mod = F.linear(F.silu(t), w0, b0)
        for i in range(block_model.config.depth):
            w, b = sd[f"blocks.{i}.adaLN_modulation.1.weight"], sd[f"blocks.{i}.adaLN_modulation.1.bias"]
            single.blocks[i].scale_shift_table.copy_((F.linear(F.silu(t), w, b) - global_mod).view(6, d))
    return single.to(block_model.x_embedder.proj.weight.dtype)
