"""Published zero-shot COCO FID-30K numbers, to print beside a measured FID (always marked "published").

The rows are PixArt-α's comparison table (its README at commit ``cac2fd3``, the paper's Table 1):
the method, its parameters, training images, MS-COCO 256×256 zero-shot FID-30K and training cost
in A100 GPU days where given. Each paper computed its own number with its own FID code, caption
sample and reference images, none of which the table states, so a measured FID compares with these
only loosely (docs/fid.md). PixArt-α's 7.32 comes from a checkpoint fine-tuned for the benchmark
(``PixArt-XL-2-256x256-MSCOCO-FID732.pth``); the released 256 px model scores far higher. The paper's
abstract gives PixArt-α's cost as ~675 A100 GPU days (10.8% of SD v1.5's 6,250); the README, 753.
DALL·E 2's GPU days are left out: the README prints "41,66", a truncated number.
"""

from __future__ import annotations

SOURCE = "PixArt-α README (PixArt-alpha/PixArt-alpha @cac2fd3) comparison table, from the paper's Table 1"
PROTOCOL = "MS-COCO 256×256 zero-shot FID-30K (each paper's own FID code and reference images)"

# parameters and training images as the table prints them; gpu_days None where the table gives none
FID_30K = [
    {"model": "DALL·E", "parameters": "12.0B", "images": "250M", "fid": 27.50, "gpu_days": None},
    {"model": "GLIDE", "parameters": "5.0B", "images": "250M", "fid": 12.24, "gpu_days": None},
    {"model": "LDM", "parameters": "1.4B", "images": "400M", "fid": 12.64, "gpu_days": None},
    {"model": "DALL·E 2", "parameters": "6.5B", "images": "650M", "fid": 10.39, "gpu_days": None},
    {"model": "SD v1.5", "parameters": "0.9B", "images": "2000M", "fid": 9.62, "gpu_days": 6_250},
    {"model": "GigaGAN", "parameters": "0.9B", "images": "2700M", "fid": 9.09, "gpu_days": 4_783},
    {"model": "Imagen", "parameters": "3.0B", "images": "860M", "fid": 7.27, "gpu_days": 7_132},
    {"model": "RAPHAEL", "parameters": "3.0B", "images": "5000M+", "fid": 6.61, "gpu_days": 60_000},
    {"model": "PixArt-α (FID732 checkpoint)", "parameters": "0.6B", "images": "25M", "fid": 7.32, "gpu_days": 753},
]
N = 30_000
