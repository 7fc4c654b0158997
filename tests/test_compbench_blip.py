"""bench.compbench.blip_vqa: disentangled BLIP-VQA on a tiny random BlipForQuestionAnswering (the rules
without a model: tests/test_compbench_blip_rules.py).

The tiny model keeps the official token ids ([DEC] 30522, [ENC] 30523, "yes" 2748, "no" 2053) and
the hub model's 384 px vision config, so the scorer's real code paths (loading, 480 px with
interpolated positions, [ENC], one decoder step) run as on the real weights. Each P(yes) is checked
against a direct computation with the same model, module by module, and each image's score against
the official product of its factors.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bad_input import truncate, write
from test_compbench_blip_rules import official_product

from bench.compbench.blip_vqa import DROPPED_CHUNKS, BlipVqaScorer, measure_throughput, pre_question, round4
from bench.compbench.parse import Parser, shipped
from bench.compbench.prompts import load_prompts
from bench.compbench.samples import list_samples, sample_name, write_vqa_result
from bench.errors import BenchError
from pixart.files import sha256_files

OFFICIAL_IDS = {"dec": 30522, "enc": 30523, "yes": 2748, "no": 2053}
MEAN, STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


# --------------------------------------------------------------------------- tiny model and images


def write_vocab(path, prompts) -> list[str]:
    """A 30,522-entry BERT vocab.txt: BERT's special tokens at their ids, "yes" / "no" at 2748 / 2053,
    the prompts' words from id 3000 on, fillers elsewhere."""
    vocab = ["[PAD]"] + [f"[unused{i}]" for i in range(99)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab += [f"filler{i}" for i in range(30522 - len(vocab))]
    words = sorted({w for p in prompts for w in pre_question(p).replace(",", " ").split()} - {"yes", "no"})
    for i, w in enumerate(words + ["?", ","]):
        vocab[3000 + i] = w
    vocab[2748], vocab[2053] = "yes", "no"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return vocab


def build_tiny_blip(folder, *, enc_in_tokenizer: bool = True, captioning: bool = False, seed: int = 0):
    """A tiny random BLIP VQA (or captioning) model and its BERT tokenizer, saved as the hub's are."""
    from transformers import (BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipForQuestionAnswering)

    from conftest import randomize_

    folder.mkdir(parents=True, exist_ok=True)
    prompts = [p for c in ("color", "shape", "texture", "complex") for p in load_prompts(c)]
    write_vocab(folder / "vocab.txt", prompts)
    tokenizer = BertTokenizer(vocab=str(folder / "vocab.txt"))
    if enc_in_tokenizer:  # BLIP's own tokenizer: [DEC] then [ENC] appended (30522, 30523)
        tokenizer.add_special_tokens({"bos_token": "[DEC]"})
        tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    config = BlipConfig(
        text_config=dict(vocab_size=30524, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=37, max_position_embeddings=64, encoder_hidden_size=32),
        vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=2,
                           image_size=384, patch_size=16),
        projection_dim=32)
    torch.manual_seed(seed)
    model = (BlipForConditionalGeneration if captioning else BlipForQuestionAnswering)(config)
    randomize_(model, seed, scale=0.2).eval()  # enough spread that images and questions move P(yes)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


PROMPTS = [load_prompts("color")[0], load_prompts("shape")[-1], load_prompts("texture")[5], load_prompts("complex")[0]]


@pytest.fixture(scope="module")
def blip_dir(tmp_path_factory):
    return build_tiny_blip(tmp_path_factory.mktemp("blip") / "tiny-blip-vqa")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """samples/ with 2 images of each of PROMPTS (shipped prompts: no spaCy needed), one not square."""
    out = tmp_path_factory.mktemp("run")
    (out / "samples").mkdir()
    rng = np.random.default_rng(0)
    for i, prompt in enumerate(PROMPTS):
        for k in range(2):
            shape = (48, 80, 3) if (i, k) == (1, 1) else (64, 64, 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(out / "samples" /
                                                                               sample_name(prompt, 2 * i + k))
    return out


@pytest.fixture(scope="module")
def images(run_dir):
    return list_samples(run_dir)


@pytest.fixture(scope="module")
def scorer(blip_dir):
    return BlipVqaScorer(blip_dir)


@pytest.fixture(scope="module")
def scores(scorer, images):
    return scorer.score(images, progress=False)


def direct_p_yes(model, tokenizer, image_path, question: str) -> float:
    """P(yes) / (P(yes) + P(no)) computed directly: PIL bicubic 480×480, numpy to [0, 1], CLIP
    normalisation; one unpadded question with [ENC] first; vision → text encoder → one decoder step."""
    image = Image.open(image_path).convert("RGB").resize((480, 480), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / np.float32(255)).permute(2, 0, 1)
    x = (x - torch.tensor(MEAN)[:, None, None]) / torch.tensor(STD)[:, None, None]
    ids = torch.tensor([tokenizer(question)["input_ids"]])
    ids[0, 0] = tokenizer.convert_tokens_to_ids("[ENC]")
    with torch.no_grad():
        img = model.vision_model(pixel_values=x[None], interpolate_pos_encoding=True).last_hidden_state
        q = model.text_encoder(input_ids=ids, attention_mask=torch.ones_like(ids), encoder_hidden_states=img,
                               encoder_attention_mask=torch.ones(img.shape[:2], dtype=torch.long)).last_hidden_state
        logits = model.text_decoder(input_ids=torch.tensor([[30522]]), encoder_hidden_states=q,
                                    encoder_attention_mask=torch.ones_like(ids)).logits[0, 0].double()
    log_p = torch.log_softmax(logits, dim=-1)
    return float(1 / (1 + torch.exp(log_p[2053] - log_p[2748])))


# --------------------------------------------------------------------------- parity with a direct computation


def test_p_yes_equals_a_direct_computation_with_the_same_model(blip_dir, images, scores):
    from transformers import AutoTokenizer, BlipForQuestionAnswering

    model = BlipForQuestionAnswering.from_pretrained(blip_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(blip_dir)
    assert tokenizer.convert_tokens_to_ids("[ENC]") == 30523
    checked = 0
    for im, s in zip(images, scores, strict=True):
        chunks = [c for c in shipped()["prompts"][im.prompt]["noun_chunks"] if c not in DROPPED_CHUNKS]
        assert s.details["questions"] == [f"{c}?" for c in chunks][:8]
        raw = [direct_p_yes(model, tokenizer, im.path, pre_question(q)) for q in s.details["questions"]]
        assert s.details["raw_probabilities"] == pytest.approx(raw, abs=2e-6)
        assert s.details["probabilities"] == [round4(p) for p in s.details["raw_probabilities"]]
        assert f"{s.score:.4f}" == official_product(s.details["raw_probabilities"] + [None] * (8 - len(raw)))
        checked += len(raw)
    assert checked >= 10 and len({round(s.score, 4) for s in scores}) > 4  # the images and prompts matter


def test_encoder_gets_enc_first_and_decoder_one_dec_step(scorer, images):
    """Hooks on the real modules: [ENC] replaces [CLS], the decoder runs one step on [DEC] over
    unpadded questions (so no mask is needed), the vision model sees 480 px images."""
    seen = {"encoder": [], "decoder": [], "vision": []}

    def hook(name):
        def record(module, args, kwargs):
            seen[name].append({k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)})
        return record

    handles = [scorer.model.text_encoder.register_forward_pre_hook(hook("encoder"), with_kwargs=True),
               scorer.model.text_decoder.register_forward_pre_hook(hook("decoder"), with_kwargs=True),
               scorer.model.vision_model.register_forward_pre_hook(hook("vision"), with_kwargs=True)]
    try:
        scorer.score(images[:4], progress=False)
    finally:
        for h in handles:
            h.remove()
    assert {tuple(c["pixel_values"].shape[1:]) for c in seen["vision"]} == {(3, 480, 480)}
    assert len({c["input_ids"].shape[1] for c in seen["encoder"]}) > 1  # several question lengths, each apart
    for enc, dec in zip(seen["encoder"], seen["decoder"], strict=True):
        assert (enc["input_ids"][:, 0] == OFFICIAL_IDS["enc"]).all() and (enc["input_ids"][:, -1] == 102).all()
        assert enc["attention_mask"].all()
        assert dec["input_ids"].tolist() == [[OFFICIAL_IDS["dec"]]] * len(enc["input_ids"])
        assert dec["encoder_attention_mask"].shape == enc["input_ids"].shape
        assert dec["encoder_hidden_states"].shape[:2] == enc["input_ids"].shape


def test_a_question_scores_the_same_whatever_it_is_batched_with(scorer, images):
    states = scorer.image_states(scorer.pixels([images[0].path] * 3))
    alone = scorer.p_yes(states[:1], ["a green bench?"])
    mixed = scorer.p_yes(states, ["a", "a green bench?", "a green bench and a blue bowl and a red car?"])
    # row 1 of a batched vision pass against row 0: equal to float rounding, not bit for bit
    assert mixed[1] == pytest.approx(alone[0], abs=1e-6) and abs(mixed[0] - alone[0]) > 1e-4


def test_transformers_blip_decoder_ignores_its_cross_attention_mask(scorer, images):
    """Why p_yes never pads: with a padded question and its mask, transformers' decoder still attends
    to the padding (its BLIP text layers drop the cross-attention mask). If this starts failing,
    transformers masks again and padded batches would be safe."""
    model, tok = scorer.model, scorer.tokenizer
    states = scorer.image_states(scorer.pixels([images[0].path]))
    short, padded = (tok(["a green bench?"], padding="max_length", max_length=n, return_tensors="pt") for n in (6, 12))
    outs = []
    with torch.no_grad():
        for t in (short, padded):
            ids, mask = t["input_ids"].clone(), t["attention_mask"]
            ids[:, 0] = OFFICIAL_IDS["enc"]
            q = model.text_encoder(input_ids=ids, attention_mask=mask, encoder_hidden_states=states).last_hidden_state
            outs.append(model.text_decoder(input_ids=torch.tensor([[30522]]), encoder_hidden_states=q,
                                           encoder_attention_mask=mask).logits[0, 0])
    assert short["attention_mask"].all() and not padded["attention_mask"].all()
    assert (outs[0] - outs[1]).abs().max() > 1e-3


# --------------------------------------------------------------------------- batching, resolution


def test_batch_size_and_our_per_slot_loop_give_the_same_scores(blip_dir, images, scores, scorer):
    """Our batching (one vision pass per image, questions grouped by length) against our own code run in
    the official script's per-slot order: a check of batching and padding, not of official parity."""
    reference = [s.details["raw_probabilities"] for s in scores]
    for other in (BlipVqaScorer(blip_dir, batch_size=1).score(images, progress=False),
                  BlipVqaScorer(blip_dir, batch_size=3).score(images, progress=False),
                  scorer.score_per_slot_loop(images, progress=False)):
        for ref, s, o in zip(reference, scores, other, strict=True):
            assert o.details["raw_probabilities"] == pytest.approx(ref, abs=1e-6)
            assert o.score == pytest.approx(s.score, abs=1e-4)  # equal unless a 4th decimal sits on a tie


def test_bfloat16_runs_the_model_in_bfloat16_and_stays_close(blip_dir, images, scores):
    s = BlipVqaScorer(blip_dir, dtype=torch.bfloat16)
    assert {p.dtype for p in s.model.parameters()} == {torch.bfloat16} and s.provenance()["dtype"] == "bfloat16"
    for low, ref in zip(s.score(images[:2], progress=False), scores[:2]):
        assert low.details["raw_probabilities"] == pytest.approx(ref.details["raw_probabilities"], abs=0.03)
        assert low.details["raw_probabilities"] != ref.details["raw_probabilities"]


def test_vision_runs_at_480_with_interpolated_position_embeddings(blip_dir, scorer, images, scores):
    assert scorer.model.config.vision_config.image_size == 384  # as the hub model's config
    tokens = []
    handle = scorer.model.vision_model.embeddings.register_forward_hook(lambda m, a, out: tokens.append(out.shape[1]))
    try:
        scorer.score(images[:2], progress=False)
        at_384 = BlipVqaScorer(blip_dir, image_size=384)
        handle.remove()
        handle = at_384.model.vision_model.embeddings.register_forward_hook(
            lambda m, a, out: tokens.append(out.shape[1]))
        low = at_384.score(images[:2], progress=False)
    finally:
        handle.remove()
    assert tokens == [(480 // 16) ** 2 + 1, (384 // 16) ** 2 + 1]
    assert low[0].details["raw_probabilities"] != pytest.approx(scores[0].details["raw_probabilities"], abs=1e-4)
    assert "from the model's 384 px to 480 px" in scorer.provenance()["position_embeddings"]


def test_long_questions_are_cut_at_35_tokens(scorer, images):
    lengths = []
    handle = scorer.model.text_encoder.register_forward_pre_hook(
        lambda m, a, kw: lengths.append(kw["input_ids"].shape[1]), with_kwargs=True)
    try:
        states = scorer.image_states(scorer.pixels([images[0].path]))
        scorer.p_yes(states, [pre_question(" ".join(["red"] * 45) + " car?")])
    finally:
        handle.remove()
    assert lengths == [35]


def test_unrounded_scores(blip_dir, images, scores):
    raw = BlipVqaScorer(blip_dir, rounded=False).score(images[:3], progress=False)
    for r, s in zip(raw, scores[:3], strict=True):
        assert r.score == pytest.approx(np.prod(r.details["raw_probabilities"]), rel=1e-12)  # float64, no rounding
        assert r.details["probabilities"] == r.details["raw_probabilities"]
        assert r.score == pytest.approx(s.score, abs=1e-3) and r.score != s.score


def test_vqa_result_json_holds_the_official_answers(tmp_path, images, scores):
    write_vqa_result(tmp_path / "vqa_result.json", images, scores, as_text=True)  # the BLIP script writes text
    rows = json.loads((tmp_path / "vqa_result.json").read_text())
    assert [r["answer"] for r in rows] == [f"{s.score:.4f}" for s in scores]


# --------------------------------------------------------------------------- model folders, provenance


def test_provenance(scorer, scores, blip_dir):
    p = scorer.provenance()
    assert p["metric"] == "B-VQA" and p["weights_sha256"] == sha256_files([blip_dir / "model.safetensors"])
    assert p["token_ids"] == {**OFFICIAL_IDS, "enc_source": "tokenizer"}
    assert (p["np_num"], p["image_size"], p["dtype"], p["batch_size"]) == (8, 480, "float32", 32)
    assert p["rounding"].startswith("official") and p["dropped_chunks"] == list(DROPPED_CHUNKS)
    assert p["parser"]["shipped_analyses"]["prompts"] > 0 and p["packages"]["transformers"]


def test_a_tokenizer_without_enc_uses_blips_layout(tmp_path, blip_dir, images, scores):
    """The hub tokenizer has no [DEC] / [ENC]: the ids come from the config (bos 30522, next 30523)."""
    folder = build_tiny_blip(tmp_path / "hub-like", enc_in_tokenizer=False)
    for f in ("model.safetensors", "config.json"):  # the same weights as blip_dir
        shutil.copy(blip_dir / f, folder / f)
    s = BlipVqaScorer(folder)
    assert s.ids["enc"] == 30523 and s.ids["dec"] == 30522 and s.ids["enc_source"].startswith("BLIP's layout")
    assert [x.score for x in s.score(images[:4], progress=False)] == [x.score for x in scores[:4]]


def test_a_cached_hub_id_loads_without_network(tmp_path, blip_dir, monkeypatch, images, scores):
    import huggingface_hub.constants

    repo = tmp_path / "hub" / "models--Salesforce--blip-vqa-capfilt-large"
    snapshot = repo / "snapshots" / ("0" * 40)
    shutil.copytree(blip_dir, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    s = BlipVqaScorer("Salesforce/blip-vqa-capfilt-large")
    assert s.folder == snapshot and s.score(images[:1], progress=False)[0].score == scores[0].score


def test_measure_throughput_times_every_way(scorer, images):
    out = measure_throughput(scorer, images[:3])
    assert set(out) == {"batched", "one_image", "per_slot_loop"} and out["one_image"]["batch_size"] == 1
    assert all(r["images"] == 3 and r["images_per_s"] > 0 and r["max_abs_diff"] <= 1e-4 for r in out.values())
    with pytest.raises(BenchError, match="unknown throughput modes"):
        measure_throughput(scorer, images[:1], ("fast",))


def test_nothing_that_runs_our_code_is_named_official(scorer, images):
    """The per-slot loop reuses our own p_yes, so neither the method nor the throughput mode may claim to
    be the official code; their descriptions say what the comparison checks."""
    import bench.compbench.blip_vqa as blip_vqa

    assert not any("official" in name for name in dir(scorer))
    with pytest.raises(BenchError, match="unknown throughput modes.*per_slot_loop"):
        measure_throughput(scorer, images[:1], ("official_loop",))
    for doc in (BlipVqaScorer.score_per_slot_loop.__doc__, measure_throughput.__doc__, blip_vqa.__doc__):
        assert "official way" not in doc and "not" in doc and "parity" in doc


# --------------------------------------------------------------------------- bad input


def _unlink(folder, *names):
    for name in names:
        (folder / name).unlink()
    return folder


def _without_enc(folder):
    """A plain BERT tokenizer (vocab.txt only) and a config whose [DEC] is not followed by one last id."""
    config = json.loads((folder / "config.json").read_text())
    config["text_config"]["bos_token_id"] = 30521
    write(folder / "config.json", json.dumps(config))
    return _unlink(folder, "tokenizer.json", "tokenizer_config.json")


def _without_yes(folder):
    from transformers import BertTokenizer

    write(folder / "vocab.txt", (folder / "vocab.txt").read_text().replace("\nyes\n", "\nyeah\n"))
    tokenizer = BertTokenizer(vocab=str(folder / "vocab.txt"))
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    tokenizer.save_pretrained(folder)
    return folder


NOT_FOUND = "is neither a folder nor a model in the Hugging Face cache"
BAD_MODELS = [  # (case, damage done to a copy of the tiny model: returns the path to pass, text of the error)
    ("missing", lambda f: f.parent / "nowhere", NOT_FOUND),
    ("uncached id", lambda f: "someone/no-such-blip", NOT_FOUND),
    ("captioning", lambda f: build_tiny_blip(shutil.rmtree(f) or f, captioning=True), "tensors unset"),
    ("a file", lambda f: f / "config.json", "is a file"),
    ("no config", lambda f: _unlink(f, "config.json"), "config.json does not exist"),
    ("bad config", lambda f: write(f / "config.json", "{ not json").parent, "invalid JSON"),
    ("not blip", lambda f: write(f / "config.json", '{"model_type": "clip"}').parent, "'clip' model, not BLIP-VQA"),
    ("no weights", lambda f: _unlink(f, "model.safetensors"), "no file named model.safetensors"),
    ("truncated weights", lambda f: truncate(f / "model.safetensors").parent, "cannot load BLIP-VQA model folder"),
    ("no tokenizer", lambda f: _unlink(f, "tokenizer.json", "tokenizer_config.json", "vocab.txt"), "no tokenizer"),
    ("no enc", _without_enc, "no [ENC] token id"),
    ("no yes", _without_yes, "has no token for 'yes'"),
]


@pytest.mark.parametrize("case, damage, text", BAD_MODELS, ids=[c[0] for c in BAD_MODELS])
def test_a_bad_model_path_is_named_with_how_to_get_the_model(case, damage, text, tmp_path, blip_dir):
    path = damage(Path(shutil.copytree(blip_dir, tmp_path / "model")))
    with pytest.raises(BenchError) as e:
        BlipVqaScorer(path)
    message = str(e.value)
    assert text in message and str(path).split("/")[-1] in message, message
    if case not in ("a file", "bad config", "no weights", "truncated weights"):
        assert "hf download Salesforce/blip-vqa-capfilt-large" in message


@pytest.mark.parametrize("options, text", [
    ({"np_num": 0}, "np_num must be a whole number at least 1"),
    ({"batch_size": 0}, "batch_size must be"),
    ({"image_size": 500}, "not a multiple of the model's patch size 16"),
    ({"device": "gpu"}, "is not a device name"),
    ({"dtype": torch.int64}, "floating torch dtype"),
])
def test_bad_options(blip_dir, options, text):
    with pytest.raises(BenchError, match=text):
        BlipVqaScorer(blip_dir, **options)


def test_a_damaged_image_or_a_missing_spacy_pipeline_is_named(tmp_path, scorer, blip_dir):
    (tmp_path / "samples").mkdir()
    bad = tmp_path / "samples" / sample_name(PROMPTS[0], 0)
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with pytest.raises(BenchError, match=f"cannot read image {bad}"):
        scorer.score(list_samples(tmp_path), progress=False)
    no_spacy = BlipVqaScorer(blip_dir, parser=Parser("no_such_spacy_pipeline"))
    with pytest.raises(BenchError, match="spaCy pipeline 'no_such_spacy_pipeline' not found"):
        no_spacy.questions("a prompt outside the shipped lists")
