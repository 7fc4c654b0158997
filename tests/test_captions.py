"""Re-captioning with a tiny random LLaVA built from the real transformers classes (no hub)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from pixart.captions import DEFAULT_PROMPT, build_prompt, caption_images, find_images, load_captioner, read_done
from pixart.data import DataError

CORPUS = [
    "USER: ASSISTANT: describe this image and its style in a very detailed manner",
    "a photo of a red cat sitting on a blue sofa in a bright room",
    "a watercolor painting of a dog running in the green park at sunset",
    "an oil painting style portrait of a woman with a hat",
]
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>", "<image>"]

# A LLaVA-1.5-like chat template written for the test (one user turn: image + text).
CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}USER: "
    "{% for item in message['content'] %}{% if item['type'] == 'image' %}<image>\n"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}{% endfor %}"
    "{% else %} ASSISTANT: {{ message['content'][0]['text'] }}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %} ASSISTANT:{% endif %}"
)


def build_tiny_llava(folder: Path, *, chat_template: str | None = None, seed: int = 0) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=SPECIALS))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    image_token_id = tokenizer.convert_tokens_to_ids("<image>")
    # 16x16 crops, 8x8 patches → 4 patch tokens (+1 CLS dropped by the "default" strategy)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 16}, crop_size={"height": 16, "width": 16})
    processor = LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
        vision_feature_select_strategy="default", num_additional_image_tokens=1, chat_template=chat_template,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
            image_size=16, patch_size=8,
        ),
        text_config=LlamaConfig(
            vocab_size=raw.get_vocab_size(), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
            num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=128,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        image_token_index=image_token_id, image_seq_length=4, vision_feature_select_strategy="default",
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config).eval()
    with torch.no_grad():  # larger random weights so different images give different captions
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def make_images(folder: Path, n: int) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(123)
    paths = []
    for i in range(n):
        sub = folder / ("sub" if i % 2 else "") / f"img{i}.png"
        sub.parent.mkdir(parents=True, exist_ok=True)
        arr = (torch.rand(12 + i, 20, 3, generator=g) * 255).to(torch.uint8).numpy()
        Image.fromarray(arr).save(sub)
        paths.append(sub)
    (folder / "notes.txt").write_text("not an image")
    return sorted(paths)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def llava_dir(tmp_path_factory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("llava") / "tiny-llava")


@pytest.fixture
def images(tmp_path) -> list[Path]:
    return make_images(tmp_path / "images", 5)


def test_plain_template_when_no_chat_template(llava_dir):
    _, processor = load_captioner(llava_dir)
    assert not processor.chat_template
    assert build_prompt(processor, "hello") == "USER: <image>\nhello ASSISTANT:"


def test_caption_folder_then_resume(llava_dir, images, tmp_path):
    out = tmp_path / "out" / "captions.jsonl"
    n = caption_images(images[0].parent, out, llava_dir, batch_size=2, max_new_tokens=4, progress=False)
    assert n == 5
    recs = read_jsonl(out)
    assert [r["path"] for r in recs] == [str(p) for p in images]  # sorted, recursive, .txt ignored
    for r in recs:
        assert set(r) == {"path", "caption", "model", "prompt"}
        assert isinstance(r["caption"], str) and r["caption"] == r["caption"].strip() and r["caption"]
        assert r["model"] == str(llava_dir) and r["prompt"] == DEFAULT_PROMPT
        assert "USER" not in r["caption"]  # only the new tokens are decoded

    before = out.read_bytes()
    assert caption_images(images[0].parent, out, llava_dir, batch_size=2, max_new_tokens=4, progress=False) == 0
    assert out.read_bytes() == before

    # drop one record → only that image is captioned again, with the same (greedy) caption
    dropped = recs.pop(2)
    out.write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert caption_images(images[0].parent, out, llava_dir, batch_size=2, max_new_tokens=4, progress=False) == 1
    again = read_jsonl(out)
    assert len(again) == 5 and again[-1] == dropped


def test_partial_last_line_is_repaired(llava_dir, images, tmp_path):
    out = tmp_path / "captions.jsonl"
    caption_images(images, out, llava_dir, batch_size=8, max_new_tokens=4, progress=False)
    full = out.read_text()
    lines = full.splitlines(keepends=True)
    out.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # crash mid-write of record 4
    assert read_done(out, repair=False) == {str(p) for p in images[:3]}
    assert caption_images(images, out, llava_dir, batch_size=8, max_new_tokens=4, progress=False) == 2
    assert out.read_text() == full


def test_complete_last_record_without_newline_is_kept(tmp_path):
    out = tmp_path / "captions.jsonl"
    out.write_text('{"path": "a.png", "caption": "x"}\n{"path": "b.png", "caption": "y"}')
    assert read_done(out) == {"a.png", "b.png"}
    assert out.read_text().endswith('"y"}\n')


def test_malformed_middle_line_is_an_error(tmp_path):
    out = tmp_path / "captions.jsonl"
    out.write_text('{"path": "a.png", "caption": "x"}\nnot json\n{"path": "b.png", "caption": "y"}\n')
    with pytest.raises(ValueError, match="line 2"):
        read_done(out)


def test_list_input_and_batching_deterministic(llava_dir, images, tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert caption_images(images[:3] + images[:1], a, llava_dir, batch_size=3, max_new_tokens=4, progress=False) == 3
    assert caption_images(images[:3], b, llava_dir, batch_size=3, max_new_tokens=4, progress=False) == 3
    assert a.read_bytes() == b.read_bytes()  # greedy → identical output
    caps = [r["caption"] for r in read_jsonl(a)]
    assert len(set(caps)) > 1  # the captions do depend on the image


def test_chat_template_is_used(llava_dir, images, tmp_path):
    chat_dir = build_tiny_llava(tmp_path / "chat-llava", chat_template=CHAT_TEMPLATE)
    _, processor = load_captioner(chat_dir)
    assert build_prompt(processor, "describe it") == "USER: <image>\ndescribe it ASSISTANT:"
    plain, chat = tmp_path / "plain.jsonl", tmp_path / "chat.jsonl"
    caption_images(images[:2], plain, llava_dir, prompt="describe it", max_new_tokens=4, progress=False)
    caption_images(images[:2], chat, chat_dir, prompt="describe it", max_new_tokens=4, progress=False)
    # same weights (same seed) and the template renders the same text → same captions
    assert [r["caption"] for r in read_jsonl(plain)] == [r["caption"] for r in read_jsonl(chat)]


def test_corrupt_image_names_the_file(llava_dir, images, tmp_path):
    bad = images[0].parent / "zz_bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    out = tmp_path / "captions.jsonl"
    with pytest.raises(ValueError, match=r"cannot read image .*zz_bad\.png"):
        caption_images(images[0].parent, out, llava_dir, batch_size=2, max_new_tokens=4, progress=False)
    assert not out.exists()  # found before the model is loaded: nothing is written
    # an image damaged past its header is found when it is read: the batches before it were written
    # and are kept (resumable)
    data = images[0].read_bytes()
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cannot read image .*zz_bad\.png"):
        caption_images(images[0].parent, out, llava_dir, batch_size=2, max_new_tokens=4, progress=False)
    assert len(read_jsonl(out)) == 4


def test_missing_model_names_where_it_looked(images, tmp_path):
    missing = tmp_path / "no-such-llava"
    with pytest.raises(DataError, match="no-such-llava"):
        caption_images(images, tmp_path / "c.jsonl", missing, progress=False)
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    with pytest.raises(DataError, match=r"empty-dir.*config\.json"):
        caption_images(images, tmp_path / "c.jsonl", empty, progress=False)


def test_find_images_missing_folder(tmp_path):
    with pytest.raises(DataError, match="image folder .*nope does not exist"):
        find_images(tmp_path / "nope")
    assert find_images([tmp_path / "x.png", tmp_path / "x.png"]) == [tmp_path / "x.png"]


def test_copy_of_model_folder_loads(llava_dir, tmp_path):
    # the saved folder is self-contained (tokenizer, processor, weights)
    copy = shutil.copytree(llava_dir, tmp_path / "copy")
    model, processor = load_captioner(copy)
    assert processor.image_token == "<image>"
    assert model.config.image_token_index == processor.image_token_id
