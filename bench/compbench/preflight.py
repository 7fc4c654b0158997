"""Check first, then work: everything a compbench run will use, resolved and checked before an image is made.

``preflight(ev, needs, prompts)`` (what ``Evaluators.preflight`` runs) resolves each evaluator in
``needs`` and checks it without loading the model: a model folder or the Hugging Face cache's
snapshot of a hub id (``evaluators.check_pretrained``: ``config.json`` and its ``model_type``, the
weight files and their headers, the processor files), an OpenAI CLIP ``.pt`` (its archive reads), a
detections file (parsed whole), a depth-map folder (it exists); and, when one of ``prompts`` has no
shipped analysis, the spaCy pipeline (resolved and loaded: ``bench.compbench.parse.resolve_spacy``).
It returns {option: what it resolved to}; a BenchError names the option and the path. None of it
imports torch, so a bad evaluator fails within seconds of the start.

``compbench_preflight`` and ``world_preflight`` say what a T2I-CompBench or a shapes-world run
needs. ``pixart-bench compbench`` calls them before it loads the model; ``run_compbench`` and
``run_world`` call them before they generate (``run_compbench`` with ``--images``: once the folders
are listed, before any image is read).
"""

from __future__ import annotations

from pathlib import Path

from bench.compbench.evaluators import check_pretrained, how_to_get, weights_header_problem
from bench.errors import BenchError, check_in_folder, check_out_folder

TOKENIZER_BERT = ("tokenizer.json", "vocab.txt")
TOKENIZER_CLIP = ("tokenizer.json", "vocab.json")
PROCESSOR = ("preprocessor_config.json", "processor_config.json")  # the latter: newer transformers' own saves
# evaluator → (model_type, the model in words, its hub id, processor files: one of each group)
MODELS = {
    "blip": ("blip", "BLIP-VQA model", "Salesforce/blip-vqa-capfilt-large", (TOKENIZER_BERT,)),
    "clip": ("clip", "CLIP model", "openai/clip-vit-base-patch32", (PROCESSOR, TOKENIZER_CLIP)),
    "owlv2": ("owlv2", "OWLv2", "google/owlv2-base-patch16-ensemble", (PROCESSOR, TOKENIZER_CLIP)),
    "grounding-dino": ("grounding-dino", "Grounding DINO", "IDEA-Research/grounding-dino-base",
                       (PROCESSOR, TOKENIZER_BERT)),
    "depth": ("dpt", "DPT depth model", "Intel/dpt-hybrid-midas", ()),
}


def check_model(kind: str, model_path: str, option: str) -> str:
    model_type, what, hub_id, files = MODELS[kind]
    return str(check_pretrained(model_path, model_type, what, option, how_to_get(hub_id), files))


def check_clip(model_path: str, backend: str) -> str:
    """The CLIP weights ``--clip`` names: a transformers folder or cached hub id, or an OpenAI ``.pt``
    (a file, or an official name such as ViT-B/32 in ~/.cache/clip) for the clip backend."""
    openai = backend == "clip" or (backend == "auto" and (Path(model_path).expanduser().is_file()
                                                          or model_path.startswith("ViT-")))
    if not openai:
        return check_model("clip", model_path, "--clip")
    from bench.compbench.clipscore import _OpenAI  # this backend runs on torch anyway

    try:
        file = _OpenAI.resolve(model_path)
    except BenchError as e:
        raise BenchError(f"--clip: {e}") from None
    problem = weights_header_problem(file)
    if problem:
        raise BenchError(f"--clip {model_path}: {file} is damaged: {problem}")
    return str(file)


def check_detector(spec: str) -> str:
    """``--detector KIND:PATH``: the model folder checked (a bad spec gets ``load_detector``'s message)."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in ("owlv2", "grounding-dino") or not path:
        from bench.compbench.open_vocab import load_detector

        load_detector(spec)  # raises, naming what a spec looks like
    return f"{kind}:{check_model(kind, path, '--detector')}"


def check_detections(path: str, rule: str) -> str:
    """A detections file, parsed whole now (its entries for each image are checked once the images exist)."""
    from bench.compbench.detectors import DetectionsFile

    try:
        DetectionsFile(path)
    except BenchError as e:
        raise BenchError(f"--detections-{rule}: {e}") from None
    return str(path)


def preflight(ev, needs, prompts=()) -> dict[str, str]:
    """{option: what it resolved to} for the evaluators in ``needs`` (``needs.NEEDS``' names, or
    "detector") and, when a prompt lacks a shipped analysis, the spaCy pipeline; BenchError otherwise."""
    from bench.compbench.parse import load_spacy, needs_spacy, resolve_spacy

    needs, out = set(needs), {}
    if "blip" in needs:
        out["--blip"] = check_model("blip", ev.blip, "--blip")
    if "clip" in needs:
        out["--clip"] = check_clip(ev.clip, ev.clip_backend)
    for rule in ("2d", "3d"):
        if f"detector_{rule}" in needs or (rule == "2d" and "detector" in needs):
            if ev.detector:
                out["--detector"] = out.get("--detector") or check_detector(ev.detector)
            elif getattr(ev, f"detections_{rule}"):
                out[f"--detections-{rule}"] = check_detections(getattr(ev, f"detections_{rule}"), rule)
    if "depth" in needs:
        if ev.depth:
            out["--depth"] = check_model("depth", ev.depth, "--depth")
        elif ev.depth_dir:
            out["--depth-dir"] = str(check_in_folder(ev.depth_dir, "--depth-dir"))
    if needs and needs_spacy(prompts):
        out["--spacy-model"] = resolve_spacy(ev.spacy_model)
        load_spacy(ev.spacy_model)  # loads once per process: the scorers reuse it
    return out


def compbench_preflight(ev, categories: list[str], *, color_list: str = "2025", limit: int | None = None,
                        prompts: dict[str, list[str]] | None = None, out=None) -> dict[str, str]:
    """``ev.check`` and ``ev.preflight`` for T2I-CompBench ``categories``: their evaluators, and spaCy
    when a prompt the rules parse lacks a shipped analysis (``prompts``: {category: the images'
    prompts}, by default each list's first ``limit``); ``out``, when given, must be a folder to write."""
    from bench.compbench.needs import NEEDS
    from bench.compbench.prompts import load_prompts

    ev.check(categories)
    if out is not None:
        check_out_folder(out, "--out")
    if prompts is None:
        prompts = {c: load_prompts(c, color_list)[:limit] for c in categories}
    parsed = [p for c in categories if c != "non_spatial" for p in prompts[c]]  # plain CLIPScore reads no parse
    return ev.preflight(sorted({need for c in categories for need in NEEDS[c]}), parsed)


def world_preflight(ev, suites: list[str] | None, limit: int | None = None) -> dict[str, str]:
    """``ev.preflight`` for the shapes world's ``suites``: the learned metric of each suite whose
    evaluator is given, and spaCy for their prompts."""
    from bench.compbench.needs import LEARNED
    from bench.world.dataset import load_suite
    from bench.world.demo import SUITES, select_categories

    learned = [s for s in select_categories(suites) if ev.has(LEARNED[s])]
    return ev.preflight({LEARNED[s] for s in learned}, [spec["prompt"] for s in learned
                                                        for spec in load_suite(SUITES, s)[:limit]])
