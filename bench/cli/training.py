"""Training commands: ``train``, ``extract-features``, and the paper's data tools ``caption`` and ``vocab``.

The work is done by ``pixart.train``, ``pixart.extract``, ``pixart.captions`` and ``pixart.vocab``,
which check their input before any work (``ConfigError``, ``DataError``, ``CheckpointError``: the
command line prints them as one line, see ``bench.cli.app``).
Several processes run a command through accelerate: ``accelerate launch -m bench train ...``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from bench.cli.app import DType, app, console, torch_dtype


TRAIN_EXAMPLES = """[bold]Examples[/bold]

  [dim]# stage 2 of the paper on your data (XL-2, 256 px), from a stage-1 checkpoint[/dim]
  pixart-bench train --config pixart_xl2_stage2_256 --set data.root=data/sam --set init_from=runs/stage1/checkpoints/step-0300000/ema

  [dim]# a tiny run on a CPU in minutes; resume it after an interruption[/dim]
  pixart-bench train --config tiny_stage2 --set data.root=world/ --set t5=tiny/text_encoder --set vae=tiny/vae
  pixart-bench train --config tiny_stage2 --set data.root=world/ --set t5=tiny/text_encoder --set vae=tiny/vae --resume

  [dim]# your own YAML file, e.g. a preset from pixart/configs/ copied and edited[/dim]
  pixart-bench train --config my_stage2.yaml

  [dim]# several processes (GPUs, or CPU processes with gloo)[/dim]
  accelerate launch --multi_gpu --num_processes 8 -m bench train --config pixart_xl2_stage2_256 --set data.root=data/sam
"""

FEATURES_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench extract-features --config pixart_xl2_stage2_256 --set data.root=data/sam --out cache/sam-256
  accelerate launch --num_processes 8 -m bench extract-features --config pixart_xl2_stage2_256 --set data.root=data/sam --out cache/sam-256
"""


@app.command(epilog=TRAIN_EXAMPLES)
def train(
    config: Path = typer.Option(None, "--config", help="Training config: a YAML file, or a preset shipped in pixart/configs/ "
                                "by name (pixart_xl2_stage1_256 ... pixart_xl2_stage3_1024_ms, tiny_stage1 ... tiny_stage3)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value: key.sub=value (YAML scalar). Repeatable."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest complete checkpoint in output_dir."),
    output_dir: str = typer.Option(None, "--output-dir", help="Shortcut for --set output_dir=..."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an output_dir that holds something "
                                   "else: replace only this command's own files there."),
):
    """Train PixArt (any of the paper's three stages) with the hybrid IDDPM loss, EMA, checkpoints and exact resume."""
    from pixart.train import load_config
    from pixart.train import train as run_train

    cfg = load_config(config, [*set_, *([f"output_dir={output_dir}"] if output_dir else [])])
    if Path(cfg.output_dir).is_dir():  # the --out rule; a run of its own is resumed (--resume) or refused there
        from bench.errors import check_out

        check_out(cfg.output_dir, "train", overwrite=overwrite, option="output_dir")
    result = run_train(cfg, resume=resume)
    last = result["history"][-1] if result["history"] else {}
    console.print(f"done: {len(result['history'])} steps, last loss {last.get('loss', float('nan')):.4f}; "
                  f"checkpoint {result['final_checkpoint']}; metrics {result['output_dir']}/metrics.jsonl")


@app.command("extract-features", epilog=FEATURES_EXAMPLES)
def extract_features_cmd(
    out: Path = typer.Option(..., "--out", help="Cache folder (safetensors shards + features.json)."),
    config: Path = typer.Option(None, "--config", help="Training config (a YAML file or preset name, as for train): "
                                "its data, t5, vae, resolution, max_length are used."),
    set_: list[str] = typer.Option([], "--set", help="Override a config value: key.sub=value. Repeatable."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    shard_size: int = typer.Option(256, "--shard-size", min=1, help="Items per safetensors shard."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Write into an --out that holds something "
                                   "else: replace only this command's own files there."),
):
    """Precompute T5 features and VAE posteriors (per aspect bucket) for training; resumable, multi-process."""
    from pixart.extract import run_extract

    if out.is_dir():  # the --out rule; a cache of other settings is refused by the extraction itself
        from bench.errors import check_out

        check_out(out, "extract-features", overwrite=overwrite)
    n = run_extract(out, config, set_, batch_size=batch_size, shard_size=shard_size)
    console.print(f"encoded {n} new items into {out}")


CAPTION_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench caption data/sam/images --out data/sam/captions.jsonl --model llava-hf/llava-1.5-7b-hf --device cuda --dtype bf16
  [dim]# re-running the same command captions only the images not yet in captions.jsonl[/dim]
"""

VOCAB_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench vocab data/sam/captions.jsonl
  pixart-bench vocab data/coco/captions.txt --spacy-model en_core_web_sm --min-count 10 --json vocab.json
"""


@app.command(epilog=CAPTION_EXAMPLES)
def caption(
    images: Path = typer.Argument(..., help="Folder of images (searched recursively)."),
    out: Path = typer.Option(..., "--out", dir_okay=False,
                             help="JSONL output: one {path, caption, model, prompt} per image (appended, resumable)."),
    model: str = typer.Option(..., "--model", help="LLaVA-style model folder or hub id in the HF cache (LlavaForConditionalGeneration)."),
    prompt: str = typer.Option(None, "--prompt", help='Default: the paper\'s "Describe this image and its style in a very detailed manner".'),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", min=1),
    device: str = typer.Option("cpu", "--device"),
    dtype: DType = typer.Option(DType.fp32, "--dtype"),
):
    """Re-caption images with a vision-language model (the paper's dense LLaVA captions); batched and resumable."""
    from pixart.captions import DEFAULT_PROMPT, caption_images

    _check_captions_file(out, model, prompt or DEFAULT_PROMPT)
    n = caption_images(images, out, model, prompt=prompt or DEFAULT_PROMPT, batch_size=batch_size,
                       max_new_tokens=max_new_tokens, device=device, dtype=torch_dtype(dtype))
    console.print(f"captioned {n} new images into {out}")


def _check_captions_file(out: Path, model: str, prompt: str) -> None:
    """The --out rule for a captions file: new, or captions by the same --model and --prompt (resumed);
    one holding other captions (another model or prompt) or no captions at all is refused."""
    from bench.errors import BenchError
    from pixart.captions import read_done

    if not out.is_file():
        return
    read_done(out, repair=False)  # a damaged line is named first
    with open(out, encoding="utf-8", errors="replace") as f:
        first = f.readline()
    try:
        record = json.loads(first)
    except ValueError:  # an empty file, or the first record cut short by a crash (then resumed)
        record = None
    if first.strip() and not first.startswith('{"path"') and not isinstance(record, dict):
        raise BenchError(f"--out {out} holds something other than captions (its first line is not a caption "
                         "record); choose another --out file")
    if isinstance(record, dict) and (not _same_model(record.get("model"), model) or record.get("prompt") != prompt):
        raise BenchError(f"--out {out} holds captions made with another --model or --prompt ({record.get('model')}); "
                         "choose another --out file, or the same --model and --prompt to resume it")


def _same_model(recorded, model: str) -> bool:
    if recorded == str(model):
        return True
    return (recorded is not None and Path(str(recorded)).exists()
            and Path(str(recorded)).resolve() == Path(model).resolve())


@app.command(epilog=VOCAB_EXAMPLES)
def vocab(
    captions: Path = typer.Argument(..., help="Captions: .jsonl (caption/prompt/text field), .txt (one per line), or a folder of .txt files."),
    spacy_model: str = typer.Option("en_core_web_sm", "--spacy-model", help="spaCy pipeline name or folder (needs a POS tagger)."),
    min_count: int = typer.Option(10, "--min-count", min=1,
                                  help="A noun is 'valid' when it appears at least this often."),
    json_out: Path = typer.Option(None, "--json", dir_okay=False, help="Also write the figures to this JSON file."),
):
    """The paper's caption vocabulary table: valid / total distinct nouns, noun occurrences, nouns per image."""
    from pixart.vocab import load_spacy, read_captions, vocab_stats

    texts = read_captions(captions)
    stats = vocab_stats(texts, load_spacy(spacy_model), min_count=min_count, progress=True)
    table = Table(title=f"Caption vocabulary ({captions})")
    for col in ("images", "valid distinct nouns", "total distinct nouns", "noun occurrences", "nouns / image", "VN ratio"):
        table.add_column(col, justify="right")
    table.add_row(f"{stats['images']:,}", f"{stats['valid_distinct_nouns']:,}", f"{stats['total_distinct_nouns']:,}",
                  f"{stats['total_noun_occurrences']:,}", f"{stats['avg_nouns_per_image']:.2f}", f"{stats['vn_ratio']:.1%}")
    console.print(table)
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"source": str(captions), "min_count": min_count, **stats}, indent=2) + "\n")
