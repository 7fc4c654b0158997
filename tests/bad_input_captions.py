"""Bad-input cases for the paper's data tools: ``caption`` (re-captioning with a LLaVA model) and
``vocab`` (the caption vocabulary table), and their library calls (see tests/bad_input.py). The
training commands' table (tests/bad_input_training.py) takes these in."""

import json
from functools import partial
from pathlib import Path

from bad_input import ApiCase, CliCase, truncate, write

from pixart.captions import caption_images, find_images, read_done
from pixart.data import DataError
from pixart.vocab import load_spacy, read_captions

LONG = "a red square " * 770  # 10,010 characters


def images(f, inputs, damage=None) -> Path:
    """A copy of the tiny image dataset (images, captions, train.jsonl), damaged by ``damage(folder)``."""
    return inputs.copy("train_images", f, damage)


def bad_png(folder: Path, name: str = "img005.png"):
    write(folder / name, b"not a png at all")


def caption(f, inputs, *extra, folder=None, model=None) -> list:
    if folder is None:
        folder = images(f, inputs)
    return ["caption", folder, "--out", f / "captions.jsonl", "--model", model or inputs.copy("llava", f),
            "--max-new-tokens", "2", *extra]


def vocab(path, *extra) -> list:
    return ["vocab", path, *extra]


def a_cat(f) -> Path:
    return write(f / "caps.txt", "a cat\n")


def blank_spacy(folder: Path, config: str | None = None) -> Path:
    """A spaCy pipeline with no tagger; ``config`` replaces its config.cfg."""
    import spacy

    spacy.blank("en").to_disk(folder)
    return folder if config is None else write(folder / "config.cfg", config).parent


def captions_out(f, lines: list) -> Path:
    """A captions.jsonl from an earlier run (lines as given: str or bytes)."""
    return write(f / "captions.jsonl", b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))


def caption_after(f, inputs, lines: list) -> list:
    """``caption`` into a captions.jsonl an earlier run left with ``lines``."""
    captions_out(f, lines)
    return caption(f, inputs)


def good_record(name: str) -> str:
    return json.dumps({"path": name, "caption": "a red square", "model": "m", "prompt": "p"})



CLI_CASES = [
    # --- caption
    CliCase("caption: missing image folder", lambda f, i: caption(f, i, folder=f / "nope"),
            r"image folder .*nope does not exist"),
    CliCase("caption: image folder is a file", lambda f, i: caption(f, i, folder=write(f / "x.png", "x")),
            r".*x\.png is a file, not an image folder"),
    CliCase("caption: folder with only non-image files",
            lambda f, i: caption(f, i, folder=write(f / "d" / "a.txt", "x").parent),
            r"no images \(\.png, .*\) in .*d"),
    CliCase("caption: a non-image file named .png", lambda f, i: caption(f, i, folder=images(f, i, bad_png)),
            r"cannot read image .*img005\.png"),
    CliCase("caption: missing model folder", lambda f, i: caption(f, i, model=f / "no-llava"),
            r"LLaVA model '.*no-llava' not found: .*nothing is downloaded"),
    CliCase("caption: model folder without config.json",
            lambda f, i: caption(f, i, model=write(f / "m" / "x", "x").parent),
            r"no LLaVA model at .*m: .*config\.json does not exist"),
    CliCase("caption: corrupt model config.json",
            lambda f, i: caption(f, i, model=write(i.copy("llava", f) / "config.json", "{").parent),
            r"cannot load LLaVA model folder .*llava"),
    CliCase("caption: truncated model weights",
            lambda f, i: caption(f, i, model=truncate(i.copy("llava", f) / "model.safetensors").parent),
            r"cannot load LLaVA model folder .*llava: .*header"),
    CliCase("caption: corrupt tokenizer.json",
            lambda f, i: caption(f, i, model=write(i.copy("llava", f) / "tokenizer.json", "[").parent),
            r"cannot load LLaVA model folder .*llava"),
    CliCase("caption: output JSONL with a corrupt line",
            lambda f, i: caption_after(f, i, [good_record("a.png"), "{garbage", good_record("b.png")]),
            r"captions\.jsonl: line 2 is not a caption record .*"
            r"fix or delete that line \(the other captions are kept\)"),
    CliCase("caption: output JSONL with a non-UTF-8 line",
            lambda f, i: caption_after(f, i, [good_record("a.png"), b"\xff\xfe", good_record("b.png")]),
            r"captions\.jsonl: line 2 is not a caption record"),
    CliCase("caption: --out is a folder", lambda f, i: ["caption", f, "--out", f, "--model", "m"],
            r"Invalid value for '--out'"),
    CliCase("caption: --batch-size 0",
            lambda f, i: ["caption", f, "--out", f / "c.jsonl", "--model", "m", "--batch-size", "0"],
            r"Invalid value for '--batch-size'"),
    CliCase("caption: --max-new-tokens -1",
            lambda f, i: ["caption", f, "--out", f / "c.jsonl", "--model", "m", "--max-new-tokens", "-1"],
            r"Invalid value for '--max-new-tokens'"),
    CliCase("caption: unknown device", lambda f, i: caption(f, i, "--device", "gpu9"),
            r"device 'gpu9' is not a torch device"),
    CliCase("caption: whitespace-only prompt", lambda f, i: caption(f, i, "--prompt", "   "),
            r"the prompt is empty"),
    # --- vocab
    CliCase("vocab: missing captions file",
            lambda f, i: vocab(f / "nope.txt"), r"caption file .*nope\.txt does not exist"),
    CliCase("vocab: empty file",
            lambda f, i: vocab(write(f / "caps.txt", "")), r"no captions in .*caps\.txt \(empty or blank\)"),
    CliCase("vocab: whitespace-only file", lambda f, i: vocab(write(f / "caps.jsonl", "\n  \n\t\n")),
            r"no captions in .*caps\.jsonl"),
    CliCase("vocab: non-UTF-8 file", lambda f, i: vocab(write(f / "caps.txt", b"a cat\n\xff a dog\n")),
            r"cannot read caption file .*caps\.txt: not UTF-8 text \(byte 6"),
    CliCase("vocab: corrupt JSONL line",
            lambda f, i: vocab(write(f / "caps.jsonl", '{"caption": "a cat"}\n{"caption": \n')),
            r"caps\.jsonl:2: not valid JSON"),
    CliCase("vocab: JSONL record without a caption", lambda f, i: vocab(write(f / "caps.jsonl", '{"caption": 3}\n')),
            r"caps\.jsonl:1: no caption field \(expected one of caption, prompt, text\)"),
    CliCase("vocab: folder without .txt files", lambda f, i: vocab(write(f / "d" / "a.json", "{}").parent),
            r"no \.txt caption files in .*d"),
    CliCase("vocab: folder with a non-UTF-8 caption file", lambda f, i: vocab(write(f / "d" / "a.txt", b"\x80").parent),
            r"cannot read caption file .*a\.txt: not UTF-8"),
    CliCase("vocab: unsupported file type", lambda f, i: vocab(write(f / "caps.csv", "a cat\n")),
            r"unsupported caption file .*caps\.csv: expected \.jsonl, \.txt or a folder"),
    CliCase("vocab: unknown spaCy model",
            lambda f, i: vocab(write(f / "caps.txt", f"a cat\n{LONG}\n"), "--spacy-model", "no_such_spacy_model"),
            r"spaCy model 'no_such_spacy_model' is missing .*--spacy-model"),
    CliCase("vocab: spaCy pipeline without a tagger",
            lambda f, i: vocab(a_cat(f), "--spacy-model", blank_spacy(f / "nlp")),
            r"spaCy pipeline '.*nlp' has no part-of-speech tagger"),
    CliCase("vocab: corrupt spaCy pipeline folder",
            lambda f, i: vocab(a_cat(f), "--spacy-model", blank_spacy(f / "nlp", "[nlp\nlang = ")),
            r"cannot load spaCy pipeline folder .*nlp"),
    CliCase("vocab: --min-count 0", lambda f, i: vocab(a_cat(f), "--min-count", "0"),
            r"Invalid value for '--min-count'"),
    CliCase("vocab: --json is a folder", lambda f, i: vocab(a_cat(f), "--json", f),
            r"Invalid value for '--json'"),
]


API_CASES = [
    ApiCase("find_images: missing folder", lambda f, i: (f / "nope",), find_images, DataError,
            r"image folder .*nope does not exist"),
    ApiCase("read_done: a corrupt line is an error, the file is kept",
            lambda f, i: (captions_out(f, [good_record("a.png"), "not json", good_record("b.png")]),), read_done,
            DataError, r"captions\.jsonl: line 2 is not a caption record"),
    ApiCase("caption_images: corrupt model weights",
            lambda f, i: (images(f, i), f / "c.jsonl", write(i.copy("llava", f) / "model.safetensors", b"").parent),
            partial(caption_images, progress=False), DataError, r"cannot load LLaVA model folder .*llava"),
    ApiCase("read_captions: empty file", lambda f, i: (write(f / "caps.txt", ""),), read_captions, DataError,
            r"no captions in .*caps\.txt"),
    ApiCase("load_spacy: unknown model", lambda f, i: ("no_such_spacy_model",), load_spacy, DataError,
            r"spaCy model 'no_such_spacy_model' is missing"),
]


# ---- the --out rule: a folder holding another command's run is refused, naming it (bench.errors.check_out) ----
from bad_input_world import TAKEN, another_run  # noqa: E402

CLI_CASES += [
    CliCase("caption: --out holds another model's captions", lambda f, i: [
        "caption", images(f, i), "--out", captions_out(f, [good_record("a.png")]), "--model", "llava-b", "--prompt",
        "p"], r"--out .*captions\.jsonl holds captions made with another --model or --prompt \(m\); choose another"),
    CliCase("caption: --out holds no captions", lambda f, i: [
        "caption", images(f, i), "--out", write(f / "notes.jsonl", "my notes\n"), "--model", "llava"],
        r"--out .*notes\.jsonl holds something other than captions"),
]
