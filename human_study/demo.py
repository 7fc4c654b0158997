"""``pixart-bench study demo``: a small study to click through locally, offline, in about a minute.

Two "models" answer the world's prompts (``bench/world/suites``): the bundled world model (sampled
with the world demo's settings) and the world's own renderer (a rendering of a scene that satisfies
the prompt: what a perfect model would draw). A study of them is created in ``OUT/study`` (one rater
sees every prompt, with attention checks), with one invite link and an admin token. Running it again
reuses the images and the study and prints a fresh invite.
"""

from __future__ import annotations

import random
from pathlib import Path

from bench.world.dataset import CATEGORIES, load_suite, scene_from_spec
from human_study.design import STUDY_FILE, Settings, create_study, load_study
from human_study.errors import StudyError
from human_study.invites import invite_link
from human_study.storage import StudyStore, new_token

MODELS = ("world-model", "renderer")


def demo_prompts(per_category: int) -> list[dict]:
    """The first ``per_category`` prompts of each world suite (a prompt two suites share, once); StudyError
    when ``per_category`` is below 1 or above what the smallest suite holds."""
    from bench.world.demo import SUITES

    if isinstance(per_category, bool) or not isinstance(per_category, int) or per_category < 1:
        raise StudyError(f"--prompts must be a whole number at least 1, got {per_category!r}")
    suites = {c: load_suite(SUITES, c) for c in CATEGORIES}
    fewest = min(suites, key=lambda c: len(suites[c]))
    if per_category > len(suites[fewest]):
        raise StudyError(f"--prompts {per_category}: the {fewest} suite has {len(suites[fewest])} prompts; ask for "
                         "at most that many")
    specs = [s for c in CATEGORIES for s in suites[c][:per_category]]
    seen, unique = set(), []
    for s in specs:
        if s["prompt"] not in seen:
            seen.add(s["prompt"])
            unique.append(s)
    return unique


def make_images(specs: list[dict], out: Path) -> dict[str, Path]:
    """The two models' images of ``specs``: ``out/world-model`` (generation store) and ``out/renderer``
    (official layout)."""
    import dataclasses

    from bench.compbench.samples import SAMPLES, sample_name
    from bench.world.demo import DEMO_CFG, DEMO_SAMPLER, DEMO_STEPS, REFERENCE
    from bench.world.render import render
    from pixart.files import atomic_write
    from pixart.pipeline import PixArtPipeline, SampleSettings
    from pixart.sample_run import run_sampling

    prompts = [s["prompt"] for s in specs]
    pipe = PixArtPipeline.from_pretrained(REFERENCE)
    side = pipe.transformer.config.input_size * pipe.vae.downsample
    settings = dataclasses.replace(SampleSettings(sampler=DEMO_SAMPLER, steps=DEMO_STEPS, guidance_scale=DEMO_CFG),
                                   height=side, width=side).resolved(pipe)
    model_dir = out / MODELS[0]
    run_sampling(pipe, prompts, model_dir, settings, seed=0, images_per_prompt=1, batch_size=8,
                 checkpoint=str(REFERENCE))
    render_dir = out / MODELS[1] / SAMPLES
    render_dir.mkdir(parents=True, exist_ok=True)
    for i, spec in enumerate(specs):
        target = render_dir / sample_name(spec["prompt"], i)
        if not target.exists():
            image = render(scene_from_spec(spec, random.Random(i)), (side, side), seed=i)
            atomic_write(target, lambda tmp, im=image: im.save(tmp, format="PNG"))
    return {MODELS[0]: model_dir, MODELS[1]: out / MODELS[1]}


def make_demo_study(out: str | Path, *, prompts_per_category: int = 2, port: int = 7860, host: str = "127.0.0.1"):
    """(study, rater link, admin link, admin token) of the demo study in ``out``."""
    out = Path(out)
    blocker = next((p for p in (out, *out.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise StudyError(f"--out {out} is a file, not a folder" if blocker == out else
                         f"--out {out}: {blocker} is a file, so no folder can be made there")
    specs = demo_prompts(prompts_per_category)  # checks --prompts, also when the study is reused
    folder = out / "study"
    if (folder / STUDY_FILE).is_file():
        study = load_study(folder)
    else:
        models = make_images(specs, out / "images")
        settings = Settings(items_per_rater=len(specs), raters_per_prompt=1, attention_rate=0.1,
                            title="pixart-bench demo study: world model vs renderer")
        study = create_study([s["prompt"] for s in specs], models, folder, settings=settings,
                             prompt_source={"world_suites": list(CATEGORIES), "per_category": prompts_per_category})
    store = StudyStore(study.database_url(), study.study_id)
    token = store.add_invites(1)[0]
    store.close()
    admin = new_token()
    base = f"http://{host}:{port}/"
    return study, invite_link(base, token), f"{base}?admin={admin}", admin
