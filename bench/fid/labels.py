"""What a FID number may be called, from what was checked: the ``protocol`` record of ``fid.json``, the
small-N warning, and whether the extractor was the standard Inception.

Each command that writes ``fid.json`` records which protocol made the number::

    "protocol": {"name": "coco-30k zero-shot" | "coco zero-shot" | "folder" | "world" | "ablate",
                 "command": "pixart-bench fid coco" | ... | None,   # None: a library call (the demo's world-FID)
                 "description": "...", "n_gen": 30000, "n_ref": 30000,
                 "extractor": "inception-v3-compat", "extractor_weights_sha256": "6726825d...",
                 "standard_inception": true,
                 "checks": {...}}                                    # fid coco: why it is, or is not, COCO-30K

``coco-30k zero-shot`` is written only by ``fid coco`` when the FID it computed used 30,000 generated
images (``--n 30000`` with one caption per drawn image) and the standard Inception: torch-fidelity's
``inception-v3-compat``, pool3 (2048-d), with the weights file torch-fidelity downloads
(``weights-inception-2015-12-05-6726825d.pth``, SHA-256 ``STANDARD_INCEPTION_SHA256``). Any other
``fid coco`` run is ``coco zero-shot``. A ``fid.json`` without this record (written before it existed,
or by ``bench.fid.compute_fid`` alone) is ``unknown``: the report treats it as a folder FID.
"""

from __future__ import annotations

COCO_30K = "coco-30k zero-shot"
COCO = "coco zero-shot"
FOLDER = "folder"
WORLD = "world"
ABLATE = "ablate"
UNKNOWN = "unknown"
NAMES = (COCO_30K, COCO, FOLDER, WORLD, ABLATE)
COMMANDS = {COCO_30K: "pixart-bench fid coco", COCO: "pixart-bench fid coco", FOLDER: "pixart-bench fid folder",
            WORLD: "pixart-bench fid world", ABLATE: "pixart-bench ablate fid"}
DESCRIPTIONS = {
    COCO_30K: "MS-COCO zero-shot FID-30K: 30,000 captions drawn from a COCO captions file, an image generated "
              "for each, compared with COCO images, with the standard Inception",
    COCO: "COCO zero-shot FID-N: captions drawn from a COCO captions file, an image generated for each, compared "
          "with COCO images",
    FOLDER: "FID between two image sets (or a set and saved reference statistics)",
    WORLD: "world-FID: the world's suites generated, compared with renderings of scenes that satisfy the same "
           "prompts",
    ABLATE: "ablate fid: FID-N of each model on one prompt set against one reference",
}

STANDARD_INCEPTION = "inception-v3-compat"
STANDARD_LAYER = "2048"
# SHA-256 of torch-fidelity's weights-inception-2015-12-05-6726825d.pth (the file name carries its first 8 digits,
# as torch.hub names its files)
STANDARD_INCEPTION_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
COCO_30K_N = 30_000
SMALL_N = 10_000  # below this many images, FID's upward bias is large enough to change rankings


def standard_inception(extractor: dict) -> bool:
    """Whether an ``extractor`` record (``fid.json``'s) is torch-fidelity's Inception with its standard weights."""
    return (extractor.get("name") == STANDARD_INCEPTION and str(extractor.get("layer")) == STANDARD_LAYER
            and extractor.get("weights_sha256") == STANDARD_INCEPTION_SHA256)


def small_n_warning(n_gen: int, n_ref: int, dim: int) -> str | None:
    """The warning for FID of fewer than ``SMALL_N`` images (None at or above it); stronger when N is at most
    the feature dimension ``dim``, where the covariance of N features is singular."""
    n = min(n_gen, n_ref)
    if n >= SMALL_N:
        return None
    text = (f"FID of {n_gen:,} generated and {n_ref:,} reference images: below {SMALL_N:,} images FID is biased "
            "upward, more the smaller N, so FIDs of different N do not compare (KID is unbiased)")
    if n <= dim:
        text += (f"; with N = {n:,} at most the {dim:,} feature dimensions the covariance is singular (rank at most "
                 "N - 1), and this FID says more about N than about the images")
    return text


def protocol_record(name: str, result: dict, *, command: str | None = "default", **details) -> dict:
    """The ``protocol`` record of ``fid.json`` for a result of ``bench.fid.compute_fid`` made by protocol
    ``name``; ``command``: the command that ran it ("default": the protocol's own, None: a library call)."""
    if name not in NAMES:
        raise ValueError(f"unknown FID protocol {name!r}; one of {', '.join(NAMES)}")
    extractor = result["extractor"]
    return {"name": name, "command": COMMANDS[name] if command == "default" else command,
            "description": DESCRIPTIONS[name], "n_gen": result["n_gen"], "n_ref": result["n_ref"],
            "extractor": extractor.get("name"), "extractor_weights_sha256": extractor.get("weights_sha256"),
            "standard_inception": standard_inception(extractor), **details}


def coco_protocol(result: dict, n: int, caption_policy: str) -> dict:
    """The protocol record of a ``fid coco`` run: COCO-30K zero-shot only when the FID it computed used
    30,000 generated images and the standard Inception (checked on ``result``, not on the options)."""
    checks = {"n_gen_is_30000": result["n_gen"] == COCO_30K_N and n == COCO_30K_N,
              "standard_inception": standard_inception(result["extractor"])}
    why = []
    if not checks["n_gen_is_30000"]:
        why.append(f"{result['n_gen']:,} generated images (--n {n:,}, --caption-policy {caption_policy}), "
                   f"not {COCO_30K_N:,}")
    if not checks["standard_inception"]:
        e = result["extractor"]
        why.append(f"extractor {e.get('name')} with weights SHA-256 {str(e.get('weights_sha256'))[:12]}…, not "
                   f"{STANDARD_INCEPTION} with torch-fidelity's weights ({STANDARD_INCEPTION_SHA256[:12]}…)")
    name = COCO_30K if all(checks.values()) else COCO
    return protocol_record(name, result, n=n, caption_policy=caption_policy, checks=checks,
                           **({"not_coco_30k": "; ".join(why)} if why else {}))


def protocol_of(data: dict) -> str:
    """The protocol a ``fid.json`` record may be labelled with: its recorded name, as long as the figures it
    records bear it out (COCO-30K needs ``n_gen`` 30,000 and the standard Inception; else ``coco zero-shot``);
    ``unknown`` without a protocol record."""
    record = data.get("protocol")
    name = record.get("name") if isinstance(record, dict) else None
    if name not in NAMES:
        return UNKNOWN
    if name == COCO_30K and not (data.get("n_gen") == COCO_30K_N and standard_inception(data.get("extractor") or {})):
        return COCO
    return name
