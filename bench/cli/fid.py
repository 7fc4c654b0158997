"""The ``fid`` command group (torch-fidelity FID): ``fid folder GEN REF`` between two image folders, or a
folder and reference statistics. The work is done by ``bench.fid`` (``compute_fid``); commands parse,
write ``DIR/fid.json`` and print.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from bench.cli.app import app, console

fid_app = typer.Typer(help="FID with torch-fidelity: two image folders, or a folder against reference statistics.",
                      no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(fid_app, name="fid")

FidExtractor = Enum("FidExtractor", {n: n for n in ("inception-v3-compat", "clip-vit-b-32", "world-cnn")}, type=str)
Resize = Enum("Resize", {n: n for n in ("center-crop-256", "none")}, type=str)


# options the fid commands share (typer reads each option's metadata; the objects can serve several commands)
EXTRACTOR_OPTION = typer.Option(FidExtractor["inception-v3-compat"], "--extractor",
                                help="Feature extractor: Inception-v3 (FID), CLIP ViT-B/32 (CLIP-FID) or the world's.")
INCEPTION_WEIGHTS_OPTION = typer.Option(None, "--inception-weights", help="torch-fidelity's Inception weights "
                                        "(weights-inception-2015-12-05-6726825d.pth; default: torch-fidelity's cache).")
CLIP_WEIGHTS_OPTION = typer.Option(None, "--clip-weights", help="OpenAI's CLIP ViT-B/32 TorchScript file "
                                   "(default: torch-fidelity's cache).")
WORLD_WEIGHTS_OPTION = typer.Option(None, "--world-weights", help="Another world-cnn (default: the bundled one).")
RESIZE_OPTION = typer.Option(Resize["center-crop-256"], "--resize", help="center-crop-256: centred square, PIL "
                             "bicubic to 256x256 (both sides); none: as they are (one size per set).")
KID_OPTION = typer.Option(False, "--kid", help="Also KID (needs the reference's features).")
CACHE_OPTION = typer.Option(None, "--cache", help="Statistics cache, keyed by content "
                            "(default: $TORCH_HOME/pixart_bench_fid).")
NO_CACHE_OPTION = typer.Option(False, "--no-cache", help="Compute both sides, read and write no cache.")
DEVICE_OPTION = typer.Option(None, "--device", help="cpu or cuda[:N] (default: cuda when there is one).")
BATCH_OPTION = typer.Option(64, "--batch-size")


def weights_for(extractor: FidExtractor, inception: Path | None, clip: Path | None, world: Path | None) -> Path | None:
    return {"inception-v3-compat": inception, "clip-vit-b-32": clip, "world-cnn": world}[extractor.value]


def pick_device(device: str | None) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


def write_result(out: Path, result: dict) -> Path:
    """``out/fid.json``, written atomically, and the figures printed."""
    from pixart.files import write_json_atomic

    out.mkdir(parents=True, exist_ok=True)
    path = write_json_atomic(out / "fid.json", result)
    kid = f", KID {result['kid_mean']:.6g} ± {result['kid_std']:.3g}" if "kid_mean" in result else ""
    where = "cached" if result["reference"]["cached"] else "computed"
    console.print(f"FID {result['fid']:.4f}{kid} ({result['n_gen']} generated vs {result['n_ref']} reference images; "
                  f"{result['extractor']['name']}, --resize {result['settings']['resize']}; reference statistics "
                  f"{where})")
    console.print(f"wrote {path}", soft_wrap=True)
    return path


FOLDER_EXAMPLES = """[bold]Examples[/bold]

  pixart-bench fid folder out/gen data/ref --out runs/fid   [dim]# FID-N, both folders centre-cropped to 256 px[/dim]
  pixart-bench fid folder out/gen data/ref --out runs/fid --inception-weights weights-inception-2015-12-05-6726825d.pth
  pixart-bench fid folder out/gen data/ref --out runs/fid --save-stats ref.npz   [dim]# keep the reference statistics[/dim]
  pixart-bench fid folder out/gen2 ref.npz --out runs/fid2   [dim]# a second model: only its own images are read[/dim]
  pixart-bench fid folder out/gen data/ref --out runs/fid --resize none --kid   [dim]# images as they are; KID too[/dim]
  pixart-bench fid folder out/gen data/ref --out runs/clip --extractor clip-vit-b-32 --clip-weights ViT-B-32.pt
  pixart-bench fid folder world-gen world-real --out runs/w --extractor world-cnn --resize none   [dim]# world-FID[/dim]
"""


@fid_app.command("folder", epilog=FOLDER_EXAMPLES)
def fid_folder(
    gen: Path = typer.Argument(..., help="Folder of generated images (.png .jpg .jpeg .webp .bmp, not subfolders)."),
    ref: Path = typer.Argument(..., help="Folder of reference images, or an .npz of statistics written by this command."),
    out: Path = typer.Option(..., "--out", help="Folder for fid.json."),
    extractor: FidExtractor = EXTRACTOR_OPTION,
    inception_weights: Path = INCEPTION_WEIGHTS_OPTION,
    clip_weights: Path = CLIP_WEIGHTS_OPTION,
    world_weights: Path = WORLD_WEIGHTS_OPTION,
    resize: Resize = RESIZE_OPTION,
    kid: bool = KID_OPTION,
    cache: Path = CACHE_OPTION,
    no_cache: bool = NO_CACHE_OPTION,
    device: str = DEVICE_OPTION,
    batch_size: int = BATCH_OPTION,
    save_stats: Path = typer.Option(None, "--save-stats", help="Also write the reference statistics here (.npz), "
                                    "to pass as REF later."),
):
    """FID-N between two image folders (or a folder and reference statistics), computed with torch-fidelity."""
    from bench.errors import BenchError, check_out_folder
    from bench.fid import compute_fid
    from bench.fid.statistics import default_cache_dir

    check_out_folder(out, "--out")
    if no_cache and cache is not None:
        raise BenchError("--cache and --no-cache contradict each other; give one")
    result = compute_fid(gen, ref, extractor=extractor.value,
                         weights=weights_for(extractor, inception_weights, clip_weights, world_weights),
                         resize=resize.value, cache_dir=None if no_cache else (cache or default_cache_dir()), kid=kid,
                         device=pick_device(device), batch_size=batch_size, save_stats=save_stats)
    write_result(out, result)
