"""Writes the small result files under tests/data/report/ the way the commands write them.

The compbench runs go through ``bench.compbench.results`` (summarise, per_image_rows,
write_per_image_csv) on made-up per-image scores; the study through ``human_study.aggregate`` on
simulated rankings; the others are the commands' records with their exact keys and small numbers.
Run once: ``.venv/bin/python tests/data/report/make_fixtures.py`` (the files are committed, and the
golden tables in golden/ were checked by eye against them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.compbench.published import PIXART_ALPHA
from bench.compbench.results import per_image_rows, summarise, write_per_image_csv
from bench.compbench.samples import ImageScore, SampleImage

HERE = Path(__file__).parent
PROMPTS = {"color": ["a red apple and a green leaf", "a blue car and a yellow door", "a pink rose and a white vase"],
           "shape": ["a round clock and a square table", "an oval mirror and a triangular sign",
                     "a round plate and a rectangular tray"],
           "spatial": ["a dog on the left of a cat", "a cup on top of a book", "a lamp on the right of a chair"]}
LISTS = {"color": ("color_val.txt", "1634259756dbc77d13093d907d414480080ec9790a8c97ad09efaea7b2534f2d"),
         "color-2023": ("color_val_2023.txt", "1e37a12c1861bf6b11623eaffb0bf6d6eeea9702caf45b95d040f1721bba7f4f"),
         "shape": ("shape_val.txt", "37e1a276906c7ea9516cbd7ac8501be896006c0c17ca7344f260562834455bae"),
         "spatial": ("spatial_val.txt", "8707a1d7e42ce3002d95363cf55f74bd043c843ae27108f5125aaaa7840ca988")}
METRIC = {"color": "B-VQA", "shape": "B-VQA", "spatial": "UniDet 2D (UniDet rules, owlv2 detections)"}
VERSIONS = {"pixart-bench": "0.1.0", "torch": "2.14.1", "transformers": "5.24.0", "diffusers": "0.42.1"}


def write(path: Path, record: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")


def compbench(folder: str, ckpt: str, base: dict, seed: int, color_list: str = "2025", np_num: int = 8) -> None:
    rng = np.random.default_rng(seed)
    out = HERE / folder
    results, rows = {}, []
    for category, prompts in PROMPTS.items():
        images = [SampleImage(out / category / "samples" / f"{p}_{2 * i + k:06d}.png", p, 2 * i + k)
                  for i, p in enumerate(prompts) for k in range(2)]
        scores = [ImageScore(round(float(np.clip(base[category] + rng.normal(0, 0.1), 0, 1)), 4)) for _ in images]
        summary = summarise(category, METRIC[category], images, scores)
        rows += per_image_rows(category, METRIC[category], images, scores)
        key = "color-2023" if category == "color" and color_list == "2023" else category
        provenance = ({"metric": "B-VQA", "model": "Salesforce/blip-vqa-capfilt-large", "image_size": 480,
                       "np_num": np_num} if METRIC[category] == "B-VQA" else
                      {"metric": METRIC[category], "confidence_threshold": 0.5, "detector": {"detector": "owlv2"}})
        summary.update(provenance=provenance, folder=f"{folder}/{category}",
                       prompt_list={"file": LISTS[key][0], "sha256": LISTS[key][1]}, complete=False)
        results[category] = summary
    record = {"format": "pixart-bench compbench", "version": 1, "created": "2026-11-28T10:00:00+00:00",
              "model": {"ckpt": ckpt, "kind": "pixart", "class": "PixArtPipeline",
                        "transformer_sha256": f"{seed:02d}" * 32},
              "protocol": {"images_per_prompt": 2, "seed": 42, "color_list": color_list, "limit": 3,
                           "official": False},
              "evaluators": {"blip": "Salesforce/blip-vqa-capfilt-large", "clip": None, "clip_backend": "auto",
                             "detector": "owlv2:google/owlv2-base-patch16-ensemble", "detections": None,
                             "depth": None, "depth_dir": None, "threshold": 0.5, "np_num": np_num,
                             "spacy_model": "en_core_web_sm", "device": "cuda", "batch_size": 32},
              "categories": results, "published": PIXART_ALPHA, "versions": VERSIONS}
    write(out / "results.json", record)
    write_per_image_csv(out / "per_image.csv", rows)


def fid(folder: str, name: str, value: float, reference: str = "ab" * 32, resize: str = "center-crop-256") -> None:
    write(HERE / folder / "fid.json", {
        "fid": value, "n_gen": 1000, "n_ref": 5000,
        "reference": {"id": reference, "source": "a folder", "n": 5000, "content_sha256": "cd" * 32,
                      "statistics": None, "cached": True, "created": "2026-11-28T10:00:00+00:00"},
        "generated": {"id": "ef" * 32, "source": "a folder", "n": 1000, "content_sha256": "12" * 32,
                      "statistics": None, "cached": False},
        "settings": {"resize": resize, "resize_call": "PIL", "distance": "torch_fidelity", "kid": False,
                     "device": "cuda", "batch_size": 64, "cache_dir": None, "saved_statistics": None},
        "extractor": {"name": "inception-v3-compat", "layer": "2048", "weights": "weights-inception.pth",
                      "weights_sha256": "6726825d" + "0" * 56, "feature_dim": 2048},
        "model": {"name": name, "ckpt": f"runs/{name}", "kind": "pixart", "class": "PixArtPipeline",
                  "transformer_sha256": "34" * 32},
        "versions": {"pixart-bench": "0.1.0", "torch-fidelity": "0.4.0", "torch": "2.14.1"},
        "seconds": {"generated": 10.0, "reference": 0.1, "distance": 0.5}})


def cost_row(config: str, parameters: int, memory: float | None, median: float | None, status="measured",
             reason=""):
    return {"config": config, "implementation": "ours", "parameters": parameters, "flops_step": 3.2e12,
            "predicted_memory_gib": (memory or 40.0) * 1.02, "median_s": median,
            "memory_gib": memory, "images_per_s": 64 / median if median else None, "status": status,
            "reason": reason, "mfu": 0.41 if median else None}


def main():
    compbench("cb-pixart", "PixArt-alpha/PixArt-XL-2-512x512", {"color": 0.65, "shape": 0.5, "spatial": 0.2}, 1)
    compbench("cb-sdxl", "stabilityai/sdxl", {"color": 0.55, "shape": 0.45, "spatial": 0.22}, 2)
    compbench("cb-old", "runs/old", {"color": 0.6, "shape": 0.55, "spatial": 0.2}, 3, color_list="2023", np_num=2)
    fid("fid-pixart", "pixart", 31.25)
    fid("fid-sdxl", "sdxl", 28.5)
    fid("fid-other-ref", "other", 40.0, reference="99" * 32, resize="none")
    settings = {"batch_size": 64, "dtype": "bf16", "grad_checkpointing": False, "resolution": None,
                "device": "cuda", "steps": 5, "warmup": 1, "text_tokens": 120, "real_tokens": 24,
                "diffusers": False, "max_memory_gib": None, "timeout_s": 1800.0}
    write(HERE / "ablate-cost" / "cost.json", {
        "format": "pixart-bench ablate cost", "settings": settings,
        "provenance": {"date": "2026-11-28T10:00:00+00:00", "device": {"device": "cuda", "name": "NVIDIA H100"},
                       "python": "3.11.7", "versions": {"torch": "2.14.1", "diffusers": "0.42.1"}},
        "memory_model": "bench.ablate.memory.predict_peak",
        "rows": [cost_row("XL-2-256", 610_856_096, 23.41, 0.412), cost_row("XL-2-256:adaln=block", 833_809_568,
                                                                           29.02, 0.451),
                 cost_row("XL-2-256:depth=56", 1_200_000_000, None, None, "not measured", "predicted 90 GiB > 79 GiB")]})
    write(HERE / "ablate-fid" / "ablate_fid.json", {
        "format": "pixart-bench ablate fid", "n": 5000, "seed": 0,
        "prompts": {"file": "sam-5k.txt", "prompts_in_file": 5000, "cycled": False, "file_prompts_sha256": "56" * 32,
                    "n": 5000, "seed": 0, "rule": "image i: prompt i mod (prompts in file), seed + i"},
        "reference": {"id": "ab" * 32, "source": "sam-5k-images", "n": 5000, "statistics": None},
        "fid_settings": {"extractor": "inception-v3-compat", "resize": "center-crop-256", "kid": False},
        "versions": VERSIONS,
        "models": [{"model": "single", "ckpt": "runs/single/pipeline", "fid": 24.7, "n": 5000,
                    "reference_id": "ab" * 32, "fid_json": "runs/ablate-fid/single/fid.json"},
                   {"model": "block", "ckpt": "runs/block/pipeline", "fid": 23.9, "n": 5000,
                    "reference_id": "ab" * 32, "fid_json": "runs/ablate-fid/block/fid.json"}]})
    study()
    demo()


def study():
    from human_study.aggregate import aggregate
    from human_study.simulate import simulate_judgements

    judgements, raters = simulate_judgements({"pixart": 1.0, "sdxl": 0.3, "dalle2": 0.0}, n_raters=12, n_prompts=10,
                                             prompts_per_rater=5, seed=3)
    result = aggregate(judgements, raters, ["pixart", "sdxl", "dalle2"], n_boot=200, seed=0)
    result["study"] = {"study_id": "0f" * 16, "folder": "out/study", "prompts": 10,
                       "models": ["pixart", "sdxl", "dalle2"], "prompt_source": {"file": "prompts.txt"}}
    write(HERE / "study" / "results.json", result)


def demo():
    scores = {c: {"score": s, "ci95": [s - 0.1, s + 0.08], "images": 16, "prompts": 4, "vae_ceiling": 0.95,
                  "objects_per_image": 1.2, "images_with_extra_objects": 1}
              for c, s in (("single", 0.81), ("color", 0.62), ("spatial", 0.31))}
    write(HERE / "demo" / "results.json", {
        "quick": False, "prompts_per_category": 4, "seeds": 4, "first_seed": 0, "size": 128,
        "sampler": "sde-dpm-solver", "steps": 20, "cfg": 2.0, "scores": scores, "world_fid": 41.7,
        "reference_parameters": 707456, "reference": "bench/world/reference", "seconds": 95.0,
        "parameter_table": [{"model": "PixArt-α XL/2 (adaLN-single)", "total": 610856096}],
        "reference_training": {}})


if __name__ == "__main__":
    main()
