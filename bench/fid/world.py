"""World-FID against renderings: the reference side of ``pixart-bench fid world`` and of the demo.

``score_world(generated, specs, seeds, out)``: image i of ``generated`` was made for the prompt spec
``specs[i]`` with seed ``seeds[i]``; its reference is a scene that satisfies the same spec, drawn and
rendered with that seed at image i's size (``render(scene_from_spec(spec, random.Random(seed)),
size, seed=seed)``, as the demo has always made its references), saved as
``out/reference/<NNNNNN>.png``. FID is the core's (``bench.fid.compute_fid``) with the ``world-cnn``
extractor on images as they are (resize ``none``); the record goes to ``out/fid.json``. The world's
extractor is registered with torch-fidelity here, where it is used.
"""

from __future__ import annotations

import random
from pathlib import Path

from bench.errors import BenchError, check_out_folder
from bench.world.fid import register_world_extractor
from pixart.files import atomic_write, package_versions, write_json_atomic

FID_JSON = "fid.json"
REFERENCE_FOLDER = "reference"  # the rendered references, beside samples/
VERSIONS = ("pixart-bench", "torch-fidelity", "torch", "diffusers", "transformers", "pillow", "numpy")
REFERENCE_RULE = ("image i: render(scene_from_spec(spec_i, random.Random(seed_i)), the size of generated image i, "
                  "seed=seed_i)")


def render_references(generated: list[Path], specs: list[dict], seeds: list[int], folder: Path) -> list[Path]:
    """Render image i's reference into ``folder/<i:06d>.png`` (written atomically); returns the files."""
    from PIL import Image

    from bench.world.dataset import scene_from_spec
    from bench.world.render import render

    if not (len(generated) == len(specs) == len(seeds)):
        raise BenchError(f"{len(generated)} images, {len(specs)} specs and {len(seeds)} seeds: one of each per image")
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, (path, spec, seed) in enumerate(zip(generated, specs, seeds)):
        with Image.open(path) as im:
            size = (im.height, im.width)
        truth = render(scene_from_spec(spec, random.Random(seed)), size, seed=seed)
        target = folder / f"{i:06d}.png"
        atomic_write(target, lambda tmp: truth.save(tmp, format="PNG"))
        files.append(target)
    return files


def score_world(generated: list[Path], specs: list[dict], seeds: list[int], out, *, weights=None,
                kid: bool | None = False, cache_dir=None, device: str = "cpu", batch_size: int = 64,
                extra: dict | None = None, command: str | None = None) -> dict:
    """World-FID of ``generated`` against its renderings (see the module's docstring); writes and returns
    ``out/fid.json``'s record: the core's result, ``extra``, the protocol record (``world``, made by
    ``command``: None for a library call such as the demo's), where the references are and their rule."""
    from bench.fid import compute_fid
    from bench.fid.labels import WORLD, protocol_record

    out = check_out_folder(out, "--out")
    register_world_extractor()
    references = render_references(list(generated), specs, seeds, out / REFERENCE_FOLDER)
    result = compute_fid(list(generated), references, extractor="world-cnn", weights=weights, resize="none",
                         cache_dir=cache_dir, kid=kid, device=device, batch_size=batch_size)
    record = {**result, "protocol": protocol_record(WORLD, result, command=command), **(extra or {}),
              "reference_folder": REFERENCE_FOLDER, "reference_rule": REFERENCE_RULE,
              "versions": {**result.get("versions", {}), **package_versions(VERSIONS)}}
    write_json_atomic(out / FID_JSON, record)
    return record
