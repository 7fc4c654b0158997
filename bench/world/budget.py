"""``ReferenceBudget``: the sizes, steps and settings of a ``world train-reference`` run.

Its own module because both halves of the recipe read it: ``bench.world.components`` (tokenizer, T5,
VAE) and ``bench.world.reference`` (the three training stages), which imports the components.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReferenceBudget:
    """Defaults are the bundled model's recipe (docs/world.md has its wall times)."""

    n_images_64: int = 8000
    n_images_128: int = 1500
    and_fraction: float = 0.0  # make_dataset's: short two-object captions without the relation (docs/world.md)
    vae_steps: int = 4500
    stage1_steps: int = 500
    stage2_steps: int = 100000
    stage2_low_lr_steps: int = 6000  # then "stage 2b": from stage 2's EMA at low_lr (a step-down LR schedule)
    stage3_steps: int = 3000
    stage3_low_lr_steps: int = 3000  # then "stage 3b", likewise
    lr: float = 3e-4
    low_lr: float = 1e-4
    stage3_lr: float | None = None  # stage 3's learning rate (None: lr); its "b" continuation uses low_lr
    batch_size: int = 32
    batch_size_128: int = 16
    vae_batch_size: int = 32
    vae_images_128: int = 1500  # the VAE trains on the first N 128 px images, however many data128 holds
    hidden: int = 192
    depth: int = 4
    heads: int = 3
    patch_size: int = 2  # 1: four times the tokens per image
    t5_dim: int = 64
    max_length: int = 32
    seed: int = 0
    mixed_precision: str = "no"  # the trainer's: "bf16" on a GPU
    # stages whose training forward goes through torch.compile (fewer kernel launches per step on a
    # GPU; each such stage pays a compile, so the long fixed-shape ones gain: e.g. ("stage2", "stage2b"))
    compile_stages: tuple = ()
    # torch.compile's mode for those stages: "reduce-overhead" replays each step as CUDA graphs, which
    # a small model's launch-bound GPU step needs (pixart.train_config.COMPILE_MODES)
    compile_mode: str = "default"
    # wall-clock caps per stage ("stage1", "stage2", "stage2b", "stage3", "stage3b" -> minutes; the
    # trainer's max_seconds): a stage stops early with a checkpoint, the next starts from it. A later
    # call with the same caps resumes the stopped stage for another capped stretch.
    stage_minutes: dict = field(default_factory=dict)
    # stages 3 and 3b learn latents × this (1: as stage 2). 0.5 shifts every noise level's log-SNR by
    # 2·log 0.5 at twice the side, the usual rule for a higher resolution (pixart.train, latent_scale)
    latent_scale_128: float = 1.0

