"""Images scored per second by each T2I-CompBench metric: our batched scoring against our own scorer run
one image at a time or in the official script's per-slot order.

Every mode runs this package's code: the scores' agreement between modes checks our batching and
padding, not parity with the official scripts (``pixart-bench compbench audit`` compares with the
official outputs on real weights).

Each metric scores N images in the official layout (``samples/<prompt>_<NNNNNN>.png``): by default
seeded synthetic 512×512 images of the first N prompts of the metric's category, or the images of
``--folder``. Timed, after one warm-up image per model:

- B-VQA (color prompts): ``batched`` (vision once per image, questions batched), ``one_image``
  (batch size 1) and ``per_slot_loop`` (our vision model and question scoring once per question slot,
  the order in which the official script runs its model), via
  ``bench.compbench.blip_vqa.measure_throughput``;
- CLIPScore (non_spatial prompts): ``batched`` vs ``one_image`` (our scorer with batch size 1, the
  official script's batching);
- 2D spatial (spatial prompts) and numeracy (numeracy prompts) on a detections file: the rules' own
  cost (the boxes are random, made once for the names each rule asks for);
- 2D spatial with an open-vocabulary detector (``--detector``), which runs one image at a time.

The modes of one metric must give the same scores: the table's last column is the largest difference
between our own modes (a check of batching, not of the official code).
3-in-1 is not timed apart: it runs B-VQA, the 2D rules and CLIPScore on every image.

Evaluators come from local folders or the Hugging Face cache (``--blip``, ``--clip``,
``--detector owlv2:PATH``), or ``--random`` builds full-size random models of the real architectures
(BLIP ViT-B VQA, CLIP ViT-B/32; speed does not depend on the weights' values; the CLIP tokenizer
needs the ``clip`` package's BPE vocabulary) for the metrics not given weights.

    .venv/bin/python benchmarks/compbench_throughput.py --random --images 4
    .venv/bin/python benchmarks/compbench_throughput.py --blip Salesforce/blip-vqa-capfilt-large \\
        --clip openai/clip-vit-base-patch32 --detector owlv2:google/owlv2-base-patch16-ensemble \\
        --device cuda --images 64 --json throughput.json
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.compbench.blip_vqa import BlipVqaScorer, measure_throughput  # noqa: E402
from bench.compbench.clipscore import ClipScorer  # noqa: E402
from bench.compbench.detectors import Detection, DetectionsFile, frame_size, image_size  # noqa: E402
from bench.compbench.numeracy import NumeracyScorer  # noqa: E402
from bench.compbench.open_vocab import load_detector  # noqa: E402
from bench.compbench.prompts import load_prompts  # noqa: E402
from bench.compbench.samples import SAMPLES, list_samples, sample_name  # noqa: E402
from bench.compbench.spatial import Spatial2DScorer  # noqa: E402
from bench.errors import BenchError  # noqa: E402


def synthetic_images(folder: Path, category: str, n: int, seed: int = 0) -> list:
    """``n`` seeded 512×512 RGB images, image k of prompt i named with index 10·i + k, as the official runs."""
    from PIL import Image

    prompts, rng = load_prompts(category), np.random.default_rng(seed)
    (folder / SAMPLES).mkdir(parents=True)
    for i in range(n):
        colour = rng.uniform(0.2, 1.0, 3) * np.linspace(0, 255, 512)[:, None, None]  # a vertical ramp, plus noise
        pixels = np.clip(colour + rng.normal(0, 30, (512, 512, 3)), 0, 255).astype(np.uint8)
        p, k = i % len(prompts), i // len(prompts)  # prompt p's image k
        Image.fromarray(pixels).save(folder / SAMPLES / sample_name(prompts[p], 10 * p + k))
    return list_samples(folder)


def random_blip(folder: Path, prompts: list[str]) -> Path:
    """A full-size random BLIP VQA (ViT-B/16 at 384 px, BERT-base text encoder and decoder) with a BERT
    tokenizer holding the prompts' words, yes and no; [DEC] / [ENC] take BLIP's ids (30522, 30523)."""
    from transformers import BertTokenizer, BlipConfig, BlipForQuestionAnswering

    folder.mkdir(parents=True)
    words = sorted({w for p in prompts for w in re.findall(r"\w+|[^\w\s]", p.lower())} | {"yes", "no", "?"})
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    config = BlipConfig(vision_config=dict(image_size=384, patch_size=16), text_config=dict(vocab_size=30524))
    BlipForQuestionAnswering(config).save_pretrained(folder)
    return folder


def random_clip(folder: Path) -> Path:
    """A full-size random CLIP ViT-B/32 (transformers' default ``CLIPConfig``) with CLIP's own BPE
    tokenizer (the ``clip`` package's vocabulary) and image processor."""
    from clip.simple_tokenizer import SimpleTokenizer
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor, CLIPTokenizer

    folder.mkdir(parents=True)
    bpe = SimpleTokenizer()
    (folder / "vocab.json").write_text(json.dumps(bpe.encoder))
    ranked = sorted(bpe.bpe_ranks, key=bpe.bpe_ranks.get)
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in ranked))
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    CLIPProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer).save_pretrained(folder)
    torch.manual_seed(0)
    CLIPModel(CLIPConfig()).save_pretrained(folder)
    return folder


class RandomBoxes:
    """A stand-in detector: 1-3 confident random boxes in the official frame for each name a rule asks
    for, kept in ``table`` to be written as a detections file."""

    name = "random boxes"

    def __init__(self, seed: int = 0):
        self.rng, self.table = np.random.default_rng(seed), {}

    def check(self, images) -> None:
        pass

    def detect(self, image, queries, threshold: float) -> list[Detection]:
        width, height = frame_size(*image_size(image.path))
        found = []
        for name in queries:
            for _ in range(self.rng.integers(1, 4)):
                (x0, x1), (y0, y1) = np.sort(self.rng.uniform(0, width, 2)), np.sort(self.rng.uniform(0, height, 2))
                box = (float(x0), float(y0), float(x1), float(y1))
                found.append(Detection(name, float(self.rng.uniform(0.55, 1.0)), box))
        self.table[image.file] = [d.to_dict() for d in found]
        return found

    def provenance(self) -> dict:
        return {"detector": self.name}


def detections_for(make_scorer, images, path: Path) -> DetectionsFile:
    """A detections file of random boxes for the names ``make_scorer(detector)``'s rule asks about."""
    boxes = RandomBoxes()
    make_scorer(boxes).score(images, progress=False)
    path.write_text(json.dumps({"detector": boxes.name, **boxes.table}))
    return DetectionsFile(path)


def timed_modes(metric: str, runs: dict, images, device: str, warm_up: bool) -> list[dict]:
    """One row per mode (``runs``: mode → (score function, batch size)), scores compared with the first mode's."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    rows, first = [], None
    for mode, (score, batch_size) in runs.items():
        if warm_up:
            score(images[:1], progress=False)
        sync()
        start = time.perf_counter()
        values = np.array([s.score for s in score(images, progress=False)])
        sync()
        seconds = time.perf_counter() - start
        first = values if first is None else first
        rows.append({"metric": metric, "mode": mode, "images": len(images), "seconds": seconds,
                     "images_per_s": len(images) / seconds, "batch_size": batch_size,
                     "max_abs_diff": float(np.abs(values - first).max()) if len(runs) > 1 else None})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=8, help="images per metric (default 8)")
    ap.add_argument("--batch-size", type=int, default=32, help="batched modes' batch size (default 32)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--folder", type=Path, help="score DIR/samples/ (official layout) instead of synthetic images")
    ap.add_argument("--blip", help="BLIP VQA folder or cached hub id (Salesforce/blip-vqa-capfilt-large)")
    ap.add_argument("--clip", help="CLIP ViT-B/32 folder, hub id or OpenAI .pt (openai/clip-vit-base-patch32)")
    ap.add_argument("--detector", help="owlv2:PATH or grounding-dino:PATH, timed on the 2D spatial rules")
    ap.add_argument("--random", action="store_true", help="full-size random BLIP / CLIP where not given")
    ap.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    if args.images < 1 or args.batch_size < 1:
        ap.error("--images and --batch-size must be at least 1")
    try:
        rows, evaluators = run(args)
    except BenchError as e:  # a missing or wrong evaluator folder, a bad samples folder: the library's message
        print(f"error: {e}", file=sys.stderr)
        return 2
    report(args, argv, rows, evaluators)
    return 0


def run(args) -> tuple[list[dict], dict]:
    """The rows of every metric timed, and the evaluators used (a path, "random", or None: not timed)."""
    rows, evaluators = [], {"blip": None, "clip": None, "detector": args.detector}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        made: dict[str, list] = {}

        def images_of(category: str) -> list:
            if args.folder:
                return list_samples(args.folder)[:args.images]
            if category not in made:
                made[category] = synthetic_images(tmp / category, category, args.images)
            return made[category]

        vqa_images = images_of("color")
        blip = args.blip or (args.random and random_blip(tmp / "blip", sorted({im.prompt for im in vqa_images})))
        if blip:
            evaluators["blip"] = args.blip or "random"
            scorer = BlipVqaScorer(blip, device=args.device, batch_size=args.batch_size)
            scorer.score(vqa_images[:1], progress=False)  # warm-up
            rows += [{"metric": scorer.metric, "mode": mode, **r}
                     for mode, r in measure_throughput(scorer, vqa_images).items()]
        else:
            print("B-VQA not timed: pass --blip PATH or --random")
        clip = args.clip or (args.random and random_clip(tmp / "clip"))
        if clip:
            evaluators["clip"] = args.clip or "random"
            scorer = ClipScorer(str(clip), device=args.device, batch_size=args.batch_size)
            single = copy.copy(scorer)
            single.batch_size = 1
            rows += timed_modes(scorer.metric, {"batched": (scorer.score, scorer.batch_size),
                                                "one_image": (single.score, 1)},
                                images_of("non_spatial"), args.device, warm_up=True)
        else:
            print("CLIPScore not timed: pass --clip PATH or --random")
        rules = {"spatial": Spatial2DScorer, "numeracy": NumeracyScorer}
        for category, make in rules.items():
            images = images_of(category)
            scorer = make(detections_for(make, images, tmp / f"{category}-detections.json"))
            rows += timed_modes(scorer.metric, {"rules": (scorer.score, 1)}, images, args.device, warm_up=False)
        if args.detector:
            scorer = Spatial2DScorer(load_detector(args.detector, device=args.device))
            rows += timed_modes(scorer.metric, {"one_image": (scorer.score, 1)}, images_of("spatial"), args.device,
                                warm_up=True)
    return rows, evaluators


def report(args, argv, rows: list[dict], evaluators: dict) -> None:
    """The Markdown table on stdout and, with ``--json``, the figures with the device and versions."""
    import transformers

    device = torch.cuda.get_device_name(args.device) if torch.device(args.device).type == "cuda" else \
        f"CPU, {torch.get_num_threads()} torch threads"
    print(f"{device}; torch {torch.__version__}, transformers {transformers.__version__}")
    print("| metric | mode | images | batch | seconds | images/s | largest score difference from our first mode |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        diff = "—" if r["max_abs_diff"] is None else f"{r['max_abs_diff']:.1e}"
        print(f"| {r['metric']} | {r['mode']} | {r['images']} | {r['batch_size']} | {r['seconds']:.2f} | "
              f"{r['images_per_s']:.3g} | {diff} |")
    if args.json:
        record = {"device": device, "torch": torch.__version__, "transformers": transformers.__version__,
                  "date": datetime.date.today().isoformat(), "argv": sys.argv[1:] if argv is None else argv,
                  "evaluators": evaluators, "rows": rows,
                  "max_abs_diff": "largest score difference from the metric's first mode; every mode runs this "
                                  "package's code, so it checks batching and padding, not parity with the official "
                                  "scripts"}
        args.json.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
