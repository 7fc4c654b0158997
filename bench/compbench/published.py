"""Published T2I-CompBench numbers of PixArt-α, to print beside a run (always marked "published").

Two sets exist, made by two versions of the official code (docs/compbench.md):

- the T2I-CompBench++ table (project page, 2024-04-21; "Pixart-α-ft"), identical to the later
  version of the PixArt-α paper's Table 3: made with the current official scripts (BLIP-VQA asks
  up to 8 noun phrases per prompt; 3-in-1 takes 10 images per prompt). A run of this package with
  its defaults is comparable to this row.
- the first arXiv version of the PixArt-α paper (Table 3): made with the scripts as first released
  (BLIP-VQA asked only the first 2 noun phrases, `np_num=2`), which raised the attribute and complex
  scores. ``--np-num 2 --color-list 2023`` comes closest to that code.

The paper does not state its generation settings for the benchmark (sampler, steps, guidance,
resolution), so a run of the released checkpoint need not land on these numbers.
"""

from __future__ import annotations

PIXART_ALPHA = {
    "current": {
        "label": "PixArt-α, published (T2I-CompBench++ table; current official code)",
        "source": "T2I-CompBench++ project page table (Karine-H/T2I-CompBench-new, assets/8.png, 2024-04-21); "
                  "PixArt-α paper, later arXiv version, Table 3",
        "scores": {"color": 0.6690, "shape": 0.4927, "texture": 0.6477, "spatial": 0.2064, "non_spatial": 0.3197,
                   "complex": 0.3433, "3d_spatial": 0.3901, "numeracy": 0.5058},
    },
    "first-release": {
        "label": "PixArt-α, published (paper, first arXiv version; official code as first released)",
        "source": "PixArt-α paper (arXiv 2310.00426, first version), Table 3",
        "scores": {"color": 0.6886, "shape": 0.5582, "texture": 0.7044, "spatial": 0.2082, "non_spatial": 0.3179,
                   "complex": 0.4117},
    },
}

# the paper's column names, in its order
COLUMN_NAMES = {"color": "Color", "shape": "Shape", "texture": "Texture", "spatial": "Spatial",
                "non_spatial": "Non-Spatial", "complex": "Complex", "3d_spatial": "3D-Spatial",
                "numeracy": "Numeracy"}
