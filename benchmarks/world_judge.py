"""The world judge: train its network, and measure how well it (or the exact oracle) agrees with people.

    .venv/bin/python benchmarks/world_judge.py train --out bench/world/reference/judge.safetensors \\
        [--vae bench/world/reference] [--sdedit bench/world/reference --sdedit-examples 4000] \\
        [--examples 16000] [--steps 3000] [--seed 0]
    .venv/bin/python benchmarks/world_judge.py agreement [--split heldout|dev|all] [--judge judge|oracle] \\
        [--weights FILE] [--json OUT] [--record]

``agreement`` reads the blind human labels of ``tests/data/world_judge/labels.json`` (model images
at 128 px; the rule is in the file), runs the judge on every image of the split and prints, per
category and over all images, the judge's precision and recall against the person's verdict with
95% bootstrap CIs (2,000 resamples over images, seeded) and exact Clopper–Pearson intervals, then the per-facet agreement over prompt
objects (colour, shape, texture, size, present, relation) and the wall time. Develop on ``--split
dev``; the held-out half is for reporting. ``--record`` writes the held-out figures to
``bench/world/reference/judge_agreement.json``, which the demo and the docs cite.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.world.dataset import load_suite
from bench.world.demo import SUITES
from bench.world.judge.agreement import AGREEMENT, judge_agreement, load_labels, summarise

LABELS = Path(__file__).resolve().parents[1] / "tests" / "data" / "world_judge" / "labels.json"


def _fmt(value, ci) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"


def print_summary(s: dict) -> None:
    print("| category | images | person accepts | judge accepts | both | precision [bootstrap 95% CI] (exact) | "
          "recall [bootstrap 95% CI] (exact) | accuracy [95% CI] |")
    print("|---|---|---|---|---|---|---|---|")

    def exact(ci):
        return "" if ci is None else f" ({ci[0]:.2f}–{ci[1]:.2f})"

    for name, r in [*s["categories"].items(), ("all", s["all"])]:
        print(f"| {name} | {r['images']} | {r['human_accepts']} | {r['judge_accepts']} | {r['both']} | "
              f"{_fmt(r['precision'], r['precision_ci95'])}{exact(r['precision_exact95'])} | "
              f"{_fmt(r['recall'], r['recall_ci95'])}{exact(r['recall_exact95'])} | "
              f"{_fmt(r['accuracy'], r['accuracy_ci95'])} |")
    print()
    print("| facet | units | person: yes | judge: yes | agreement [95% CI] |")
    print("|---|---|---|---|---|")
    for k, r in s["facets"].items():
        print(f"| {k} | {r['units']} | {r['human_yes']} | {r['judge_yes']} | {_fmt(r['agreement'], r['agreement_ci95'])} |")


def agreement(split: str, judge: str, weights: str | None, labels: Path = LABELS) -> tuple[dict, list[dict], float]:
    root, items = load_labels(labels)
    if split != "all":
        items = [it for it in items if it["split"] == split]
    specs = {}
    for c in {it["category"] for it in items}:
        for i, spec in enumerate(load_suite(SUITES, c)):
            specs[(c, i)] = spec
    if judge == "oracle":
        from bench.world.oracle import detect
    else:
        from bench.world.judge import DEFAULT_WEIGHTS, judge_detect

        w = weights or DEFAULT_WEIGHTS

        def detect(image):
            return judge_detect(image, w)
    t0 = time.perf_counter()
    rows = judge_agreement(items, root, detect, specs)
    return summarise(rows), rows, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--vae", type=Path, help="a pipeline folder whose VAE round-trips half the training images")
    t.add_argument("--examples", type=int, default=16000)
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--workers", type=int, default=2, help="processes drawing the training images")
    t.add_argument("--sdedit", type=Path, help="a pipeline folder that redraws rendered objects (SDEdit) for training")
    t.add_argument("--sdedit-examples", type=int, default=0)
    a = sub.add_parser("agreement")
    a.add_argument("--split", choices=("dev", "heldout", "all"), default="dev")
    a.add_argument("--judge", choices=("judge", "oracle"), default="judge")
    a.add_argument("--weights")
    a.add_argument("--labels", type=Path, default=LABELS)
    a.add_argument("--json", type=Path, help="write the summary and per-image rows here")
    a.add_argument("--record", action="store_true", help="write the held-out figures beside the judge's weights")
    args = ap.parse_args()
    if args.cmd == "train":
        from bench.world.judge.train import train

        train(args.out, n=args.examples, steps=args.steps, seed=args.seed, vae=str(args.vae) if args.vae else None,
              workers=args.workers, n_sdedit=args.sdedit_examples, sdedit=str(args.sdedit) if args.sdedit else None)
        return
    if args.record and (args.split != "heldout" or args.judge != "judge"):
        raise SystemExit("--record writes the judge's held-out figures: use --split heldout --judge judge")
    summary, rows, wall = agreement(args.split, args.judge, args.weights, args.labels)
    print(f"{args.judge} on the {args.split} split of {args.labels} ({len(rows)} images, {wall:.1f} s)\n")
    print_summary(summary)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    if args.record:
        from bench.world.judge import JUDGE_NAME
        from bench.world.judge.network import DEFAULT_WEIGHTS
        from pixart.files import sha256_files

        w = Path(args.weights) if args.weights else DEFAULT_WEIGHTS
        record = {"judge": JUDGE_NAME, "weights_sha256": sha256_files([w]), "split": "heldout",
                  "labels": "tests/data/world_judge/labels.json", "images": len(rows),
                  "bootstrap": {"resamples": 2000, "seed": 0, "unit": "image"}, **summary}
        AGREEMENT.write_text(json.dumps(record, indent=1) + "\n")
        print(f"\nrecorded: {AGREEMENT}")


if __name__ == "__main__":
    main()
