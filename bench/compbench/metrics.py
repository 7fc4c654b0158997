"""Which metric scores which T2I-CompBench category, with which evaluator models.

| category | metric | evaluators (CLI options) |
|---|---|---|
| color, shape, texture | B-VQA (``blip_vqa``) | ``--blip`` |
| spatial | UniDet's 2D rules (``spatial``) | ``--detections-2d`` (official: UniDet RS200) or ``--detector`` |
| non_spatial | CLIPScore (``clipscore``) | ``--clip`` |
| complex | 3-in-1 (``three_in_one``) of B-VQA, the 2D rules on the complex parser and the adjective-free CLIPScore | ``--blip``, ``--detections-2d`` or ``--detector``, ``--clip`` |
| 3d_spatial | UniDet's 3D rules with depth (``spatial3d``) | ``--detections-3d`` (official: UniDet R50) or ``--detector``, and ``--depth`` or ``--depth-dir`` |
| numeracy | counting (``numeracy``) | ``--detections-3d`` (official: UniDet R50) or ``--detector`` |

``Evaluators`` holds the options; ``check`` names every missing one before any work, and ``preflight``
resolves and checks the ones a run uses (folders, weights, detections files, spaCy) before it makes
an image (``bench.compbench.preflight``). ``Scorers``
builds each category's scorer and loads each evaluator model once per run (B-VQA for color, shape,
texture and complex is one model).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.compbench.needs import NEEDS, OPTION
from bench.errors import BenchError

@dataclass
class Evaluators:
    """The evaluator models and settings a run uses (CLI options of ``pixart-bench compbench``)."""

    blip: str | None = None
    clip: str | None = None
    clip_backend: str = "auto"
    detector: str | None = None  # "owlv2:PATH" or "grounding-dino:PATH", for every detector rule
    detections_2d: str | None = None  # detections for the 2D rules (spatial, complex); official: UniDet RS200
    detections_3d: str | None = None  # detections for the 3D and numeracy rules; official: UniDet R50
    depth: str | None = None
    depth_dir: str | None = None  # depth maps made elsewhere, instead of a depth model
    threshold: float = 0.5  # detector confidence (UniDet's calibration)
    np_num: int = 8
    spacy_model: str = "en_core_web_sm"
    device: str = "cpu"
    batch_size: int = 32
    resolved = None  # not a field: {option: what it resolved to}, once ``preflight`` has run

    def has(self, need: str) -> bool:
        if need in ("detector_2d", "detector_3d"):
            return bool(self.detector or getattr(self, need.replace("detector", "detections")))
        if need == "depth":
            return bool(self.depth or self.depth_dir)
        return bool(getattr(self, need))

    def check(self, categories: list[str]) -> None:
        """BenchError naming every option the chosen categories need and lack, before any work."""
        for rule in ("2d", "3d"):
            if self.detector and getattr(self, f"detections_{rule}"):
                raise BenchError(f"give one of --detector and --detections-{rule}, not both")
        if self.depth and self.depth_dir:
            raise BenchError("give one of --depth and --depth-dir, not both")
        missing = {need: [c for c in categories if need in NEEDS[c]] for need in OPTION}
        lacking = [f"{OPTION[need]} for {', '.join(cats)}" for need, cats in missing.items() if cats and not self.has(need)]
        if lacking:
            raise BenchError("missing evaluators: " + "; ".join(lacking) + ". Weights come from local folders or the "
                             "Hugging Face cache; choose fewer categories with --categories")

    def preflight(self, needs, prompts=()) -> dict[str, str]:
        """Resolve and check the evaluators in ``needs`` (``NEEDS``' names) and, when one of ``prompts``
        lacks a shipped analysis, the spaCy pipeline, before any work: BenchError names the option and the
        path (``bench.compbench.preflight``). Returns {option: what it resolved to}."""
        from bench.compbench.preflight import preflight

        self.resolved = preflight(self, needs, prompts)
        return self.resolved


class Scorers:
    """``scorers(category)`` → that category's ``Scorer``; each evaluator model is loaded once."""

    def __init__(self, ev: Evaluators):
        from bench.compbench.parse import Parser

        self.ev = ev
        self.parser = Parser(ev.spacy_model)
        if (ev.resolved or {}).get("--spacy-model"):  # the prompts need spaCy: every score's provenance names it
            self.parser.load()
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
            return self._once("3d", lambda: Spatial3DScorer(self.detector("3d"), ev.depth, depth_dir=ev.depth_dir,
                                                            device=ev.device, parser=self.parser,
                                                            threshold=ev.threshold))
        if category == "numeracy":
            from bench.compbench.numeracy import NumeracyScorer

            return self._once("numeracy", lambda: NumeracyScorer(self.detector("3d"), parser=self.parser,
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

        return self._once(("spatial", complex), lambda: Spatial2DScorer(self.detector("2d"), complex=complex,
                                                                        parser=self.parser,
                                                                        threshold=self.ev.threshold))

    def detector(self, rule: str):
        """The detector of the 2D rules ("2d") or of the 3D and numeracy rules ("3d"): one open-vocabulary
        model for both (``--detector``), or each rule's detections file."""
        from bench.compbench.open_vocab import load_detector

        ev = self.ev
        if ev.detector:
            return self._once("detector", lambda: load_detector(ev.detector, device=ev.device))
        return self._once(("detections", rule), lambda: load_detector(None, detections=getattr(ev, f"detections_{rule}"),
                                                                      device=ev.device, rule=rule))
