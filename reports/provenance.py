"""Where a table's numbers come from, and whether its rows may stand side by side.

Every table carries footnote lines made here: the result files read (name, folder, short SHA-256),
the models (checkpoint and weights hashes, as the files record them), the settings its rows share
(prompt-list versions, metric, detector, BLIP resolution, noun phrases, FID reference / resize /
extractor, ...), and the package versions. ``check_settings`` compares the settings of rows made in
separate runs: a difference (another prompt list, detector, FID reference, resize) is a warning for
the footnote, or, with ``strict``, a ``BenchError`` naming both files and the setting.
"""

from __future__ import annotations

from pathlib import Path

from bench.errors import BenchError

SHORT = 12  # hex digits of a hash in a footnote


def short(digest) -> str:
    return str(digest)[:SHORT] if digest else "-"


def where(path: Path) -> str:
    """A result file as a footnote names it: its folder's name and its own."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def files_note(entries) -> str:
    return "Files: " + "; ".join(f"{where(e.path)} sha256 {short(e.sha256)}" for e in entries) + "."


def model_id(entry) -> str:
    """A model's checkpoint and weights hash as its result file records them."""
    model = entry.data.get("model") if isinstance(entry.data.get("model"), dict) else {}
    parts = [str(model[k]) for k in ("ckpt", "images") if model.get(k)]
    for key in ("transformer_sha256", "weights_sha256", "images_sha256"):
        if model.get(key):
            parts.append(f"{key.removesuffix('_sha256')} sha256 {short(model[key])}")
    if entry.kind == "fid" and not parts:
        parts.append(f"generated images sha256 {short(entry.data['generated'].get('content_sha256'))}")
    if entry.kind == "demo":
        parts.append(str(entry.data.get("reference", "")))
    return f"{entry.model}: " + (", ".join(p for p in parts if p) or "not recorded")


def models_note(entries) -> str:
    return "Models: " + "; ".join(model_id(e) for e in entries) + "."


def versions_note(entries) -> str | None:
    """Package versions the files record; a package recorded at several versions lists them all."""
    seen: dict[str, list[str]] = {}
    for e in entries:
        for package, version in (e.data.get("versions") or e.data.get("provenance", {}).get("versions") or {}).items():
            if version and str(version) not in seen.setdefault(package, []):
                seen[package].append(str(version))
    if not seen:
        return None
    return "Package versions: " + ", ".join(f"{p} {' / '.join(v)}" for p, v in seen.items()) + "."


# ---- the settings rows of one table must share ------------------------------------------------------------------

def _detector(summary: dict) -> str | None:
    """The detector and checkpoint that made a category's boxes, as its provenance records them."""
    provenance = summary.get("provenance") or {}
    detector = (provenance.get("spatial") or {}).get("detector") or provenance.get("detector")
    if not isinstance(detector, dict):
        return None
    name = detector.get("detector") or "detector unknown"
    checkpoint = detector.get("checkpoint") if detector.get("source") == "detections file" else detector.get("model")
    return f"{name} ({checkpoint})" if checkpoint else name


def _blip_size(categories: dict):
    for summary in categories.values():
        provenance = summary.get("provenance") or {}
        for part in (provenance, provenance.get("attribute") or {}):
            if isinstance(part, dict) and part.get("image_size"):
                return part["image_size"]
    return None


def compbench_settings(entry) -> dict:
    """{setting: value} of a compbench run that decides whether its scores compare with another's."""
    d = entry.data
    settings = {}
    for category, summary in d["categories"].items():
        listed = summary.get("prompt_list") or {}
        if listed:
            settings[f"prompt list ({category})"] = f"{listed.get('file')} ({short(listed.get('sha256'))})"
        settings[f"metric ({category})"] = summary["metric"]
    ev = d.get("evaluators") or {}
    bvqa = any(str(s["metric"]).startswith("B-VQA") or c == "complex" for c, s in d["categories"].items())
    if bvqa:
        settings["noun phrases (np_num)"] = ev.get("np_num")
        settings["BLIP resolution"] = _blip_size(d["categories"])
    for rules, cats in (("2D rules", ("spatial", "complex")), ("3D rules", ("3d_spatial", "numeracy"))):
        found = [_detector(d["categories"][c]) for c in cats if c in d["categories"]]
        if any(found):
            settings[f"detector ({rules})"] = " / ".join(dict.fromkeys(f for f in found if f))
    if any(c in d["categories"] for c in ("spatial", "complex", "3d_spatial", "numeracy")):
        settings["detector threshold"] = ev.get("threshold")
    settings["images per prompt"] = d["protocol"].get("images_per_prompt")
    return {k: v for k, v in settings.items() if v is not None}


def fid_settings(entry) -> dict:
    d = entry.data
    return {"N": d["n_gen"], "reference id": short(d["reference"].get("id")), "resize": d["settings"].get("resize"),
            "extractor": d["extractor"].get("name"), "extractor weights": short(d["extractor"].get("weights_sha256"))}


def ablate_cost_settings(entry) -> dict:
    s, device = entry.data["settings"], entry.data.get("provenance", {}).get("device", {})
    return {"batch size": s.get("batch_size"), "dtype": s.get("dtype"), "grad. checkpointing":
            s.get("grad_checkpointing"), "resolution": s.get("resolution") or "each config's own",
            "device": device.get("name") or s.get("device"), "text tokens": s.get("text_tokens")}


def ablate_fid_settings(entry) -> dict:
    d = entry.data
    return {"N": d["n"], "reference id": short(d["reference"].get("id")), "resize": d["fid_settings"].get("resize"),
            "extractor": d["fid_settings"].get("extractor"), "prompts": short(d.get("prompts", {}).get(
                "file_prompts_sha256")), "seed": d.get("seed")}


def check_settings(entries, settings_of, strict: bool, table: str) -> tuple[dict, list[str]]:
    """The settings every entry shares (for the footnote), and a warning per setting that differs
    between two files (``strict``: BenchError naming both files and the setting instead)."""
    shared: dict = {}
    warnings: list[str] = []
    first: dict = {}  # setting -> (value, entry) of the first file that records it
    differ: set = set()
    for entry in entries:
        for key, value in settings_of(entry).items():
            if key not in first:
                first[key] = (value, entry)
                continue
            value0, entry0 = first[key]
            if value != value0 and key not in differ:
                differ.add(key)
                message = (f"{table}: {entry0.path} and {entry.path} differ in {key} ({value0} vs {value}); "
                           "their rows do not compare")
                if strict:
                    raise BenchError(f"--strict: {message}")
                warnings.append(f"Warning: {message}.")
    for key, (value, _) in first.items():
        if key not in differ:
            shared[key] = value
    return shared, warnings


def settings_note(shared: dict) -> str | None:
    if not shared:
        return None
    return "Settings: " + "; ".join(f"{k} {v}" for k, v in shared.items()) + "."


def provenance_notes(entries, settings_of, strict: bool, table: str, models: bool = True) -> tuple[list[str], list[str]]:
    """Footnote lines of a table made from ``entries`` (files, models, shared settings, versions) and
    its warnings (also in the notes)."""
    shared, warnings = check_settings(entries, settings_of, strict, table) if settings_of else ({}, [])
    notes = [files_note(entries)]
    if models:
        notes.append(models_note(entries))
    notes += [n for n in (settings_note(shared), versions_note(entries)) if n]
    return notes + warnings, warnings
