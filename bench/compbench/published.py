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

The current-code row carries the name its source gives it, "Pixart-α-ft" (``CURRENT_NAME``). The
T2I-CompBench++ table does not say what "-ft" denotes (which checkpoint, or what was fine-tuned), so
we do not rename it to a released checkpoint.
"""

from __future__ import annotations

# the T2I-CompBench++ table's own name for the row; what "-ft" denotes is not stated in that source
CURRENT_NAME = "Pixart-α-ft"
CURRENT_NAME_NOTE = 'the row\'s name in the T2I-CompBench++ table; what "-ft" denotes is not stated there'

PIXART_ALPHA = {
    "current": {
        "label": f"{CURRENT_NAME}, published (T2I-CompBench++ table; current official code)",
        "name_note": CURRENT_NAME_NOTE,
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

# Other models' published rows, to print beside measured ones in ``pixart-bench report`` (always marked
# published, never measured here). Two sets, made by the two versions of the official code as above:
# "current" (the T2I-CompBench++ table) and "first-release" (the PixArt-α paper's first arXiv version,
# Table 3, whose baseline rows it takes from the T2I-CompBench paper). The rows that were never re-scored
# (SD v1.4 to GORS) are identical in both, except SD v2's non-spatial CLIPScore (0.3127 vs 0.3096).
_PP_SOURCE = ("T2I-CompBench++ project page table (Karine-H/T2I-CompBench-new, assets/8.png, 2024-04-21): "
              "B-VQA, UniDet and CLIPScore / 3-in-1 columns")
_FIRST_SOURCE = "PixArt-α paper (arXiv 2310.00426, first version), Table 3, baselines from T2I-CompBench (NeurIPS 2023)"
_LATER_SOURCE = "PixArt-α paper, later arXiv version, Table 3"


def _row(model: str, values: tuple, source: str, categories=("color", "shape", "texture", "spatial", "3d_spatial",
                                                             "numeracy", "non_spatial", "complex")) -> dict:
    return {"model": model, "source": source, "scores": dict(zip(categories, values, strict=True))}


_SIX = ("color", "shape", "texture", "spatial", "non_spatial", "complex")
PEERS = {
    "current": [
        _row("Stable v1.4", (0.3765, 0.3576, 0.4156, 0.1246, 0.3030, 0.4461, 0.3079, 0.3080), _PP_SOURCE),
        _row("Stable v2", (0.5065, 0.4221, 0.4922, 0.1342, 0.3230, 0.4579, 0.3127, 0.3386), _PP_SOURCE),
        _row("Composable + SD v2", (0.4063, 0.3299, 0.3645, 0.0800, 0.2847, 0.4261, 0.2980, 0.2898), _PP_SOURCE),
        _row("Structured + SD v2", (0.4990, 0.4218, 0.4900, 0.1386, 0.3224, 0.4550, 0.3111, 0.3355), _PP_SOURCE),
        _row("Attn-Exct + SD v2", (0.6400, 0.4517, 0.5963, 0.1455, 0.3222, 0.4767, 0.3109, 0.3401), _PP_SOURCE),
        _row("GORS-unbiased + SD v2", (0.6414, 0.4546, 0.6025, 0.1725, 0.3300, 0.4843, 0.3158, 0.3470), _PP_SOURCE),
        _row("GORS + SD v2", (0.6603, 0.4785, 0.6287, 0.1815, 0.3572, 0.4841, 0.3193, 0.3328), _PP_SOURCE),
        _row("DALL-E 2", (0.5267, 0.4747, 0.5804, 0.1283, 0.3078, 0.2967), _LATER_SOURCE, _SIX),
        _row("Stable XL", (0.5879, 0.4687, 0.5299, 0.2133, 0.3566, 0.4988, 0.3119, 0.3237), _PP_SOURCE),
        {"model": CURRENT_NAME, "source": PIXART_ALPHA["current"]["source"],
         "scores": PIXART_ALPHA["current"]["scores"]},
        _row("DALL-E 3", (0.7785, 0.6205, 0.7036, 0.2865, 0.3744, 0.5880, 0.3003, 0.3773), _PP_SOURCE),
    ],
    "first-release": [
        _row("Stable v1.4", (0.3765, 0.3576, 0.4156, 0.1246, 0.3079, 0.3080), _FIRST_SOURCE, _SIX),
        _row("Stable v2", (0.5065, 0.4221, 0.4922, 0.1342, 0.3096, 0.3386), _FIRST_SOURCE, _SIX),
        _row("Composable v2", (0.4063, 0.3299, 0.3645, 0.0800, 0.2980, 0.2898), _FIRST_SOURCE, _SIX),
        _row("Structured v2", (0.4990, 0.4218, 0.4900, 0.1386, 0.3111, 0.3355), _FIRST_SOURCE, _SIX),
        _row("Attn-Exct v2", (0.6400, 0.4517, 0.5963, 0.1455, 0.3109, 0.3401), _FIRST_SOURCE, _SIX),
        _row("GORS", (0.6603, 0.4785, 0.6287, 0.1815, 0.3193, 0.3328), _FIRST_SOURCE, _SIX),
        _row("DALL-E 2", (0.5750, 0.5464, 0.6374, 0.1283, 0.3043, 0.3696), _FIRST_SOURCE, _SIX),
        _row("SDXL", (0.6369, 0.5408, 0.5637, 0.2032, 0.3110, 0.4091), _FIRST_SOURCE, _SIX),
        {"model": "PixArt-α", "source": PIXART_ALPHA["first-release"]["source"],
         "scores": PIXART_ALPHA["first-release"]["scores"]},
    ],
}
# how a set is named beside its rows
PEER_SETS = {"current": "current official code", "first-release": "official code as first released"}
