"""Depth maps for the 3D spatial metric, made as the official T2I-CompBench++ pipeline makes them.

The official ``UniDet_eval/3D_spatial_eval.py`` runs DPT-Hybrid MiDaS on each image and keeps the
result as an 8-bit PNG, then reads it back for the rules. ``DptDepth`` does the same with
transformers' ``DPTForDepthEstimation`` (official weights: ``Intel/dpt-hybrid-midas``):

1. the image (RGB) resized to 480×480 (``torchvision Resize([480, 480])``, bilinear, aspect not
   kept), to a tensor, normalised with mean = std = 0.5;
2. the model's predicted depth (MiDaS inverse depth: larger = nearer), min-max normalised per image;
3. resized bilinearly (``align_corners=True``) to the original image size, times 255, and turned
   into an 8-bit image by PIL (``Image.fromarray(float).convert("L")``: clipped and truncated);
   this is the PNG the official script writes under ``labels/depth/``.

``DepthFiles`` reads such maps from a folder instead (``<image name>.png``, 8-bit, the image's
size), e.g. those the official script wrote. Either way ``frame_depth`` turns a map into what the
rules read: resized like the image for the detector (``Resize(479, max_size=480)``) and divided by 255.

The official run computes depth under fp16 autocast; ``DptDepth`` runs in float32. transformers
refuses a DPT-Hybrid input larger than its config's 384 px unless told to interpolate the position
embeddings; the official MiDaS code always interpolates them (bilinear, as transformers does), so
the embeddings' expected size is set to the 480 px input.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from bench.compbench.detectors import frame_transform, image_size
from bench.compbench.evaluators import load_pretrained, weights_sha256
from bench.compbench.samples import open_image
from bench.compbench.samples import SampleImage
from bench.errors import BenchError, check_out_folder
from pixart.files import atomic_write, package_versions, sha256_files

DEPTH_HUB = "Intel/dpt-hybrid-midas"
DEPTH_SIZE = 480
HOW_TO_GET = (f"on a machine with internet access run `hf download {DEPTH_HUB} --local-dir dpt-hybrid-midas` "
              "(older huggingface_hub: `huggingface-cli download ...`), copy the folder over and pass its path; "
              "or pass depth maps the official script wrote")


def frame_depth(depth_map) -> np.ndarray:
    """An 8-bit depth map (PIL "L", the image's size) as the rules read it: in the official detector
    frame, float32 in [0, 1], shape (height, width)."""
    return np.asarray(frame_transform()(depth_map), dtype=np.float32) / 255.0


def depth_file_name(image: SampleImage) -> str:
    """The official depth map's name: the image's name with its extension replaced by .png."""
    return image.path.with_suffix(".png").name


class DptDepth:
    """Depth maps from a transformers DPT depth model (``Intel/dpt-hybrid-midas``), following the official
    pipeline's steps (module docstring) in float32, where the official run uses fp16 autocast, and with hub
    weights not verified to be the official ``dpt_hybrid-midas-501f0c75.pt``."""

    name = "DPT"

    def __init__(self, model_path: str | os.PathLike, device: str = "cpu", save_dir: str | os.PathLike | None = None):
        from transformers import DPTForDepthEstimation

        self.model, _, self.folder = load_pretrained(model_path, DPTForDepthEstimation, None, "dpt",
                                                     "DPT depth model", HOW_TO_GET, device)
        embeddings = self.model.dpt.embeddings
        if hasattr(embeddings, "image_size"):  # hybrid: let the 480 px input through, as the official code does
            embeddings.image_size = (DEPTH_SIZE, DEPTH_SIZE)
        self.model_path = str(model_path)
        self.save_dir = check_out_folder(save_dir, "the depth map folder") if save_dir is not None else None

    def check(self, images: list[SampleImage]) -> None:
        if self.save_dir is not None:
            self.save_dir.mkdir(parents=True, exist_ok=True)

    @torch.inference_mode()
    def depth_map(self, image: SampleImage):
        """The 8-bit depth map (PIL "L", the image's size) the official script would write for ``image``."""
        from PIL import Image
        from torchvision import transforms

        rgb = open_image(image.path)
        prepare = transforms.Compose([transforms.Resize([DEPTH_SIZE, DEPTH_SIZE]), transforms.ToTensor(),
                                      transforms.Normalize(mean=0.5, std=0.5)])
        pixels = prepare(rgb)[None].to(self.model.device, self.model.dtype)
        depth = self.model(pixel_values=pixels).predicted_depth[0].float()
        low, high = depth.min(), depth.max()
        # a flat prediction has no range to normalise (the official script divides by zero): all zero
        depth = (depth - low) / (high - low) if high > low else torch.zeros_like(depth)
        depth = torch.nn.functional.interpolate(depth[None, None], size=(rgb.height, rgb.width), mode="bilinear",
                                                align_corners=True)[0, 0]
        depth_map = Image.fromarray(255 * depth.cpu().numpy()).convert("L")
        if self.save_dir is not None:
            atomic_write(self.save_dir / depth_file_name(image), lambda tmp: depth_map.save(tmp, format="PNG"))
        return depth_map

    def provenance(self) -> dict:
        return {"depth": self.name, "model": self.model_path, "folder": str(self.folder),
                "weights_sha256": weights_sha256(self.folder), "input": f"{DEPTH_SIZE}x{DEPTH_SIZE}, mean = std = 0.5",
                "dtype": "float32", "versions": package_versions(("transformers", "torch", "pillow"))}


class DepthFiles:
    """Depth maps read from a folder: ``<image name>.png``, 8-bit, each the size of its image."""

    name = "depth files"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise BenchError(f"depth map folder not found: {self.folder}" if not self.folder.exists()
                             else f"depth map folder {self.folder} is a file, not a folder")

    def check(self, images: list[SampleImage]) -> None:
        """BenchError naming the images whose map is missing, or a map whose size differs from its image's."""
        missing = [depth_file_name(im) for im in images if not (self.folder / depth_file_name(im)).is_file()]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise BenchError(f"depth map folder {self.folder} lacks {len(missing)} of {len(images)} maps: "
                             f"{', '.join(missing[:3])}{more} (one <image name>.png per image in samples/)")
        for im in images:
            path = self.folder / depth_file_name(im)
            if image_size(path) != image_size(im.path):
                raise BenchError(f"depth map {path} is {'×'.join(map(str, image_size(path)))}, its image {im.file} is "
                                 f"{'×'.join(map(str, image_size(im.path)))}; a depth map has its image's size")

    def depth_map(self, image: SampleImage):
        return open_image(self.folder / depth_file_name(image), "L")

    def provenance(self) -> dict:
        maps = sorted(self.folder.glob("*.png"))
        return {"depth": self.name, "folder": str(self.folder), "maps": len(maps),
                "sha256": sha256_files(maps, with_names=True)}  # every map in the folder, names included
