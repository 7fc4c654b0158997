"""Which metric scores which T2I-CompBench category, with which evaluator models.

| category | metric | evaluators (CLI options) |
|---|---|---|
| color, shape, texture | B-VQA (``blip_vqa``) | ``--blip`` |
| spatial | UniDet's 2D rules (``spatial``) | ``--detections`` or ``--detector`` |
| non_spatial | CLIPScore (``clipscore``) | ``--clip`` |
| complex | 3-in-1 (``three_in_one``) of B-VQA, the 2D rules on the complex parser and the adjective-free CLIPScore | all three |
| 3d_spatial | UniDet's 3D rules with depth (``spatial3d``) | a detector, and ``--depth`` or ``--depth-dir`` |
| numeracy | counting (``numeracy``) | a detector |

``Evaluators`` holds the options; ``check`` names every missing one before any work. ``Scorers``
builds each category's scorer and loads each evaluator model once per run (B-VQA for color, shape,
texture and complex is one model).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.errors import BenchError

# what each category needs, as the CLI options that provide it
NEEDS = {"color": ("blip",), "shape": ("blip",), "texture": ("blip",), "spatial": ("detector",),
         "non_spatial": ("clip",), "complex": ("blip", "detector", "clip"), "3d_spatial": ("detector", "depth"),
         "numeracy": ("detector",)}
OPTION = {"blip": "--blip PATH (BLIP VQA: Salesforce/blip-vqa-capfilt-large)",
          "clip": "--clip PATH (CLIP ViT-B/32: openai/clip-vit-base-patch32, or OpenAI's ViT-B-32.pt)",
          "detector": "--detections FILE or --detector owlv2:PATH | grounding-dino:PATH",
          "depth": "--depth PATH (DPT-Hybrid MiDaS: Intel/dpt-hybrid-midas) or --depth-dir DIR"}


@dataclass
class Evaluators:
    """The evaluator models and settings a run uses (CLI options of ``pixart-bench compbench``)."""

    blip: str | None = None
    clip: str | None = None
    clip_backend: str = "auto"
    detector: str | None = None  # "owlv2:PATH" or "grounding-dino:PATH"
    detections: str | None = None  # a JSON file of detections made by any detector (e.g. UniDet)
    depth: str | None = None
    depth_dir: str | None = None  # depth maps made elsewhere, instead of a depth model
    threshold: float = 0.5  # detector confidence (UniDet's calibration)
    np_num: int = 8
    spacy_model: str = "en_core_web_sm"
    device: str = "cpu"
    batch_size: int = 32

    def has(self, need: str) -> bool:
        if need == "detector":
            return bool(self.detector or self.detections)
        if need == "depth":
            return bool(self.depth or self.depth_dir)
        return bool(getattr(self, need))

    def check(self, categories: list[str]) -> None:
        """BenchError naming every option the chosen categories need and lack, before any work."""
        if self.detector and self.detections:
            raise BenchError("give one of --detector and --detections, not both")
        if self.depth and self.depth_dir:
            raise BenchError("give one of --depth and --depth-dir, not both")
        missing = {need: [c for c in categories if need in NEEDS[c]] for need in OPTION}
        lacking = [f"{OPTION[need]} for {', '.join(cats)}" for need, cats in missing.items() if cats and not self.has(need)]
        if lacking:
            raise BenchError("missing evaluators: " + "; ".join(lacking) + ". Weights come from local folders or the "
                             "Hugging Face cache; choose fewer categories with --categories")


class Scorers:
    """``scorers(category)`` → that category's ``Scorer``; each evaluator model is loaded once."""

    def __init__(self, ev: Evaluators):
        from bench.compbench.parse import Parser

        self.ev = ev
        self.parser = Parser(ev.spacy_model)
        self._built: dict = {}

    def _once(self, key, build):
        if key not in self._built:
            self._built[key] = build()
        return self._built[key]

    def __call__(self, category: str):
        if category in ("color", "shape", "texture"):
            return self.blip()
        if category == "non_spatial":
            return self.clip(complex=False)
        if category == "spatial":
            return self.spatial(complex=False)
        if category == "complex":
            from bench.compbench.three_in_one import ThreeInOne

            return self._once("complex", lambda: ThreeInOne(self.blip(), self.spatial(complex=True),
                                                            self.clip(complex=True)))
        if category == "3d_spatial":
            from bench.compbench.spatial3d import Spatial3DScorer

            ev = self.ev
            return self._once("3d", lambda: Spatial3DScorer(self.detector(), ev.depth, depth_dir=ev.depth_dir,
                                                            device=ev.device, parser=self.parser,
                                                            threshold=ev.threshold))
        if category == "numeracy":
            from bench.compbench.numeracy import NumeracyScorer

            return self._once("numeracy", lambda: NumeracyScorer(self.detector(), parser=self.parser,
                                                                 threshold=self.ev.threshold))
        raise BenchError(f"unknown category {category!r}")

    def blip(self):
        from bench.compbench.blip_vqa import BlipVqaScorer

        ev = self.ev
        return self._once("blip", lambda: BlipVqaScorer(ev.blip, device=ev.device, batch_size=ev.batch_size,
                                                        np_num=ev.np_num, parser=self.parser))

    def clip(self, complex: bool):
        from bench.compbench.clipscore import ClipScorer

        ev = self.ev
        return self._once(("clip", complex), lambda: ClipScorer(ev.clip, backend=ev.clip_backend, complex=complex,
                                                                device=ev.device, batch_size=ev.batch_size,
                                                                parser=self.parser))

    def spatial(self, complex: bool):
        from bench.compbench.spatial import Spatial2DScorer

        return self._once(("spatial", complex), lambda: Spatial2DScorer(self.detector(), complex=complex,
                                                                        parser=self.parser,
                                                                        threshold=self.ev.threshold))

    def detector(self):
        from bench.compbench.open_vocab import load_detector

        ev = self.ev
        return self._once("detector", lambda: load_detector(ev.detector, detections=ev.detections, device=ev.device))
