"""Bad-input cases for ``fid folder`` and the ``bench.fid`` functions behind it (see tests/bad_input.py).

Case ids start with the command or function they run. The Inception weights are the session's random
Inception of torch-fidelity's architecture (``Inputs.inception``); the image folders are tiny PNGs made
by each case. Every case fails before any statistics are written."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from unittest import mock

import numpy as np
from bad_input import ApiCase, CliCase, truncate, write
from bad_input_model import no_cuda
from bad_input_world import option_cases
from PIL import Image

from bench.errors import BenchError
from bench.fid import compute_fid, image_set, load_statistics, reference_statistics, resolve_weights
from bench.fid.images import file_sha256
from bench.fid.statistics import FORMAT


def folder(path: Path, n: int = 3, size=(32, 32), mode: str = "RGB", extra: dict | None = None) -> Path:
    """``n`` tiny PNGs of one ``mode`` and ``size`` in ``path``; ``extra`` adds {name: PIL image}."""
    path.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        Image.new(mode, size, (40 * k,) * len(mode) if mode not in ("L", "1", "P") else 40 * k).save(
            path / f"{k:03d}.png")
    for name, image in (extra or {}).items():
        image.save(path / name)
    return path


def stats_file(path: Path, inputs, **change) -> Path:
    """A well-formed statistics .npz (4-d) for the random Inception, its provenance changed by ``change``
    (a value None drops the key)."""
    provenance = {"format": FORMAT, "key": "0" * 64, "extractor": "inception-v3-compat", "layer": "2048",
                  "weights_sha256": file_sha256(inputs.inception), "resize": "center-crop-256", **change}
    arrays = {"mu": np.zeros(4, np.float32), "sigma": np.eye(4), "n": np.int64(3),
              "provenance": np.array(json.dumps({k: v for k, v in provenance.items() if v is not None}))}
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def raw_npz(path: Path, **arrays) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def run(f, inputs, *extra, gen=None, ref=None, out=None, cache=None) -> list:
    """``fid folder GEN REF`` with the random Inception and a cache in the case's folder."""
    return ["fid", "folder", gen or folder(f / "gen"), ref or folder(f / "ref"), "--out", out or f / "out",
            "--cache", cache or f / "cache", "--inception-weights", inputs.inception, *extra]


def bare(f, *extra, gen=None, ref=None) -> list:
    """``fid folder`` without weights options (for the weights cases)."""
    return ["fid", "folder", gen or folder(f / "gen"), ref or folder(f / "ref"), "--out", f / "out", "--no-cache",
            *extra]


OPTIONS = r"""
--extractor inception  | Invalid value for '--extractor'
--resize bicubic       | Invalid value for '--resize'
--batch-size 0         | --batch-size must be a whole number at least 1, got 0
--device tpu           | --device 'tpu' is not a device name
--no-cache             | --cache and --no-cache contradict each other
"""

WEIGHT_FILES = {  # what a weights option is given in a case: a file made in the case's folder
    "missing": lambda f, i: f / "weights.pt",
    "a-folder": lambda f, i: folder(f / "w"),
    "truncated": lambda f, i: truncate(i.copy("inception", f), 0.3),
    "another-network": lambda f, i: _other_state(f / "other.pth"),
    "junk": lambda f, i: write(f / "junk.pt", b"PK junk"),
}
WEIGHTS = r"""
inception-v3-compat --inception-weights missing         | --inception-weights .*weights.pt: no such file; give \
                                                          .*download https://github.com/toshas/torch-fidelity/\
                                                          releases/.*6726825d.pth
inception-v3-compat --inception-weights a-folder        | --inception-weights .*w: a folder, not a file
inception-v3-compat --inception-weights truncated       | cannot load Inception-v3 weights .* from \
                                                          .*weights-inception-random.pth: .*give the right file \
                                                          with --inception-weights
inception-v3-compat --inception-weights another-network | cannot load Inception-v3 weights .* from .*other.pth: \
                                                          Error\(s\) in loading state_dict
clip-vit-b-32 --clip-weights missing                    | --clip-weights .*weights.pt: no such file; give the CLIP \
                                                          ViT-B/32 weights .*openaipublic
clip-vit-b-32 --clip-weights junk                       | cannot load CLIP ViT-B/32 weights .* from .*junk.pt
world-cnn --world-weights missing                       | --world-weights .*weights.pt: no such file
world-cnn --world-weights junk                          | cannot read feature-extractor weights .*junk.pt
"""


def weights_cases(table: str) -> list:
    """One case per entry of ``table`` (``EXTRACTOR OPTION FILE | MATCH``, a trailing backslash continues the
    match on the next line): ``fid folder --extractor EXTRACTOR OPTION <WEIGHT_FILES[FILE]>`` fails with MATCH."""
    cases = []
    for entry in filter(str.strip, re.sub(r"\\\n\s*", "", table).splitlines()):
        words, match = (part.strip() for part in entry.split(" | "))
        extractor, option, made = words.split()
        cases.append(CliCase(f"fid folder: {option} {made}", lambda f, i, e=extractor, o=option, m=made: bare(
            f, "--extractor", e, o, WEIGHT_FILES[m](f, i)), match))
    return cases


RGBA = Image.new("RGBA", (32, 32), (1, 2, 3, 128))
LA = Image.new("LA", (32, 32), (9, 200))
P_TRANSPARENT = Image.new("P", (32, 32), 3)
P_TRANSPARENT.info["transparency"] = 3

CLI_CASES = [
    *option_cases("fid folder", run, OPTIONS),
    CliCase("fid folder: --device cuda without CUDA", lambda f, i: no_cuda() or run(f, i, "--device", "cuda"),
            r"--device cuda: no CUDA device is available"),
    # ---- image folders --------------------------------------------------------------------------
    CliCase("fid folder: GEN missing", lambda f, i: run(f, i, gen=f / "nowhere"),
            r"generated image folder not found: .*nowhere"),
    CliCase("fid folder: REF a png, not a folder", lambda f, i: run(f, i, ref=folder(f / "r") / "000.png"),
            r"reference image folder .*000.png is a file, not a folder"),
    CliCase("fid folder: GEN empty", lambda f, i: run(f, i, gen=(f / "empty").mkdir() or f / "empty"),
            r"no .png .jpg .jpeg .webp .bmp images in .*empty \(it is empty\)"),
    CliCase("fid folder: REF without images", lambda f, i: run(f, i, ref=write(f / "r" / "notes.txt", "x").parent),
            r"no .png .jpg .jpeg .webp .bmp images in .*r \(it holds 1 other entries, e.g. notes.txt\)"),
    CliCase("fid folder: GEN has 1 image", lambda f, i: run(f, i, gen=folder(f / "one", n=1)),
            r"the generated set \(.*one\) has 1 image; FID needs at least 2 per set"),
    CliCase("fid folder: an unreadable image",
            lambda f, i: run(f, i, ref=folder(f / "r") and write(f / "r" / "004.png", b"\x89PNG not really").parent),
            r"cannot read image .*004.png: .*remove or replace it"),
    CliCase("fid folder: a truncated image",
            lambda f, i: run(f, i, gen=folder(f / "g", size=(64, 48)) and truncate(f / "g" / "001.png", 0.6).parent),
            r"cannot read image .*001.png: .*truncated"),
    CliCase("fid folder: an RGBA image among RGB",
            lambda f, i: run(f, i, gen=folder(f / "g", extra={"rgba.png": RGBA})),
            r"image .*rgba.png has transparency \(mode RGBA\)"),
    CliCase("fid folder: an LA image", lambda f, i: run(f, i, ref=folder(f / "r", extra={"la.png": LA})),
            r"image .*la.png has transparency \(mode LA\)"),
    CliCase("fid folder: a palette image with transparency",
            lambda f, i: run(f, i, ref=folder(f / "r", extra={"p.png": P_TRANSPARENT})),
            r"image .*p.png has transparency \(mode P\)"),
    CliCase("fid folder: a 16-bit image", lambda f, i: run(f, i, gen=folder(f / "g", extra={"deep.png": Image.new(
        "I;16", (32, 32), 300)})), r"image .*deep.png has mode I(;16)? \(16-bit or float pixels\)"),
    CliCase("fid folder: mixed sizes with --resize none",
            lambda f, i: run(f, i, "--resize", "none",
                             gen=folder(f / "g", extra={"big.png": Image.new("RGB", (64, 48))})),
            r"share a size with --resize none: .*000.png is 32x32, .*big.png is 64x48"),
    *weights_cases(WEIGHTS),
    # ---- REF statistics --------------------------------------------------------------------------
    CliCase("fid folder: REF .npz missing", lambda f, i: run(f, i, ref=f / "ref.npz"), r"REF .*ref.npz: no such file"),
    CliCase("fid folder: REF .npz truncated", lambda f, i: run(f, i, ref=truncate(stats_file(f / "ref.npz", i))),
            r"cannot read FID statistics .*ref.npz: .*\(not an .npz, or truncated\)"),
    CliCase("fid folder: REF .npz of another tool",
            lambda f, i: run(f, i, ref=raw_npz(f / "ref.npz", mu=np.zeros(4), sigma=np.eye(4))),
            r"FID statistics .*ref.npz lack n, provenance: not written by pixart-bench fid"),
    CliCase("fid folder: REF .npz with sigma of the wrong shape",
            lambda f, i: run(f, i, ref=raw_npz(f / "ref.npz", mu=np.zeros(4), sigma=np.eye(3), n=np.int64(5),
                                              provenance=np.array("{}"))),
            r"ref.npz: mu must be a float vector \[D\] and sigma a float matrix \[D, D\]"),
    CliCase("fid folder: REF .npz with n = 1",
            lambda f, i: run(f, i, ref=raw_npz(f / "ref.npz", mu=np.zeros(4), sigma=np.eye(4), n=np.int64(1),
                                              provenance=np.array("{}"))),
            r"ref.npz: n must be a whole number of at least 2 images"),
    CliCase("fid folder: REF .npz without provenance",
            lambda f, i: run(f, i, ref=stats_file(f / "ref.npz", i, extractor=None, weights_sha256=None)),
            r"ref.npz: its provenance lacks extractor, weights_sha256"),
    CliCase("fid folder: REF .npz of CLIP features",
            lambda f, i: run(f, i, ref=stats_file(f / "ref.npz", i, extractor="clip-vit-b-32", layer="clip")),
            r"REF .*ref.npz holds clip-vit-b-32 features \(layer clip\).*cannot be compared; use --extractor "
            r"clip-vit-b-32"),
    CliCase("fid folder: REF .npz of other weights",
            lambda f, i: run(f, i, ref=stats_file(f / "ref.npz", i, weights_sha256="ab" * 32)),
            r"REF .*ref.npz was made with other inception-v3-compat weights \(SHA-256 ababababab"),
    CliCase("fid folder: REF .npz of another resize",
            lambda f, i: run(f, i, "--resize", "none", ref=stats_file(f / "ref.npz", i)),
            r"REF .*ref.npz was made with --resize center-crop-256.*--resize none"),
    CliCase("fid folder: --kid with a REF .npz without features",
            lambda f, i: run(f, i, "--kid", ref=stats_file(f / "ref.npz", i)),
            r"--kid needs the reference's features, and REF .*ref.npz holds only its mean and covariance; give the "
            r"reference images, .* or leave out --kid"),
    CliCase("fid folder: GEN an .npz", lambda f, i: run(f, i, gen=stats_file(f / "gen.npz", i)),
            r"GEN .*gen.npz: the generated side must be images"),
    # ---- outputs ------------------------------------------------------------------------------------
    CliCase("fid folder: --out is a file", lambda f, i: run(f, i, out=write(f / "o.json", "{}")),
            r"--out .*o.json is a file, not a folder"),
    CliCase("fid folder: --save-stats not .npz", lambda f, i: run(f, i, "--save-stats", f / "ref.stats"),
            r"--save-stats .*ref.stats: the file name must end in .npz"),
    CliCase("fid folder: --save-stats a folder",
            lambda f, i: run(f, i, "--save-stats", write(f / "s.npz" / "keep.txt", "x").parent),
            r"--save-stats .*s.npz is a folder"),
    CliCase("fid folder: --cache is a file", lambda f, i: run(f, i, cache=write(f / "cache", "mine")),
            r"--cache .*cache is a file, not a folder"),
]


def _other_state(path: Path) -> Path:
    """A torch state dict of another network, where Inception weights are expected."""
    import torch

    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    return path


def _no_cached(call):
    """``call`` with ``TORCH_HOME`` set to the case's (empty) folder: torch-fidelity's cache has nothing."""
    def run_it(home, *args):
        with mock.patch.dict(os.environ, {"TORCH_HOME": str(home)}):
            return call(*args)
    return run_it


API_CASES = [
    ApiCase("resolve_weights: Inception not in torch-fidelity's cache",
            lambda f, i: (f / "torch-home", "inception-v3-compat"), _no_cached(resolve_weights), BenchError,
            r"Inception-v3 weights .* not found: --inception-weights was not given and torch-fidelity's cache has no "
            r".*torch-home.hub.checkpoints.weights-inception-2015-12-05-6726825d.pth; on a connected machine download "
            r"https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d"),
    ApiCase("resolve_weights: CLIP not in torch-fidelity's cache", lambda f, i: (f / "torch-home", "clip-vit-b-32"),
            _no_cached(resolve_weights), BenchError,
            r"CLIP ViT-B/32 weights .* not found: .*checkpoints.clip-vit-b-32-40d365715913c9da98579312b702a82c"),
    ApiCase("compute_fid: unknown extractor", lambda f, i: (folder(f / "g"), folder(f / "r")),
            lambda g, r: compute_fid(g, r, extractor="dinov2-vit-s-14"), BenchError,
            r"--extractor must be one of inception-v3-compat, clip-vit-b-32, world-cnn, got 'dinov2-vit-s-14'"),
    ApiCase("compute_fid: unknown resize", lambda f, i: (folder(f / "g"), folder(f / "r"), i.inception),
            lambda g, r, w: compute_fid(g, r, weights=w, resize="squash-299"), BenchError,
            r"--resize must be one of center-crop-256, none, got 'squash-299'"),
    ApiCase("compute_fid: an in-memory RGBA image", lambda f, i: ([RGBA, RGBA], folder(f / "r"), i.inception),
            lambda g, r, w: compute_fid(g, r, weights=w), BenchError, r"image #0 has transparency \(mode RGBA\)"),
    ApiCase("compute_fid: in-memory sets of mixed sizes with resize none",
            lambda f, i: ([Image.new("RGB", (8, 8)), Image.new("RGB", (9, 8))], folder(f / "r"), i.inception),
            lambda g, r, w: compute_fid(g, r, weights=w, resize="none"), BenchError,
            r"all images of one set must share a size with --resize none; the generated images have 2"),
    ApiCase("image_set: a listed file missing", lambda f, i: ([folder(f / "g") / "000.png", f / "g" / "gone.png"],
                                                               "reference"),
            image_set, BenchError, r"reference image .*gone.png: no such file"),
    ApiCase("image_set: not images", lambda f, i: ([1, 2], "generated"), image_set, BenchError,
            r"image #0: expected a PIL image, an H×W×3 uint8 array or a uint8 \[3, H, W\] tensor, got int"),
    ApiCase("load_statistics: a text file", lambda f, i: (write(f / "s.npz", "mu,sigma"),), load_statistics, BenchError,
            r"cannot read FID statistics .*s.npz"),
    ApiCase("load_statistics: features of the wrong shape",
            lambda f, i: (raw_npz(f / "s.npz", mu=np.zeros(4, np.float32), sigma=np.eye(4), n=np.int64(3),
                                  features=np.zeros((2, 4), np.float32), provenance=np.array(json.dumps(
                                      {k: "x" for k in ("format", "key", "extractor", "layer", "weights_sha256",
                                                        "resize")}))),),
            load_statistics, BenchError, r"s.npz: features \(2, 4\) do not match n 3 × D 4"),
    ApiCase("reference_statistics: .npz of world-cnn features for Inception",
            lambda f, i: (stats_file(f / "w.npz", i, extractor="world-cnn", layer="feat"), i.inception),
            lambda ref, w: reference_statistics(ref, weights=w), BenchError,
            r"REF .*w.npz holds world-cnn features \(layer feat\), and the generated images are scored with "
            r"inception-v3-compat \(layer 2048\)"),
]


# ---- the --out rule: a folder holding another command's run is refused, naming it (bench.errors.check_out) ----
from bad_input_world import TAKEN, another_run  # noqa: E402

CLI_CASES += [
    CliCase("fid folder: --out holds another command's run", lambda f, i: [
        "fid", "folder", f / "gen", f / "ref", "--out", another_run(f, i)], r"--out .*demo-report " + TAKEN),
    CliCase("fid world: --out holds another command's run", lambda f, i: [
        "fid", "world", "--out", another_run(f, i), "--prompts", "1"], r"--out .*demo-report " + TAKEN),
]
