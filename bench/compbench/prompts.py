"""T2I-CompBench's prompt lists, shipped as package data (``bench/compbench/data/``, MIT, see its README).

``load_prompts(category)`` reads a category's validation list the way the official generation script
does (one prompt per line, ``\\r`` stripped, the text before a tab), after checking the file
against its SHA-256 below. ``color_list="2023"`` gives the color list as first released, which every
published number of 2023-2024 used (the 2025 edit replaced 5 duplicate prompts).
``complex_subsets()`` gives the 3-in-1 scorer's routing: which complex prompts are spatial, action,
or both, normalised as the official script normalises them.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from bench.errors import BenchError
from pixart.files import sha256_files

# the paper's six categories, then the two T2I-CompBench++ adds
PAPER_CATEGORIES = ("color", "shape", "texture", "spatial", "non_spatial", "complex")
CATEGORIES = (*PAPER_CATEGORIES, "3d_spatial", "numeracy")
COLOR_LISTS = ("2025", "2023")

# SHA-256 of each shipped file (identical to the source repository's files)
LISTS = {
    "color_val.txt": "1634259756dbc77d13093d907d414480080ec9790a8c97ad09efaea7b2534f2d",
    "color_val_2023.txt": "1e37a12c1861bf6b11623eaffb0bf6d6eeea9702caf45b95d040f1721bba7f4f",
    "shape_val.txt": "37e1a276906c7ea9516cbd7ac8501be896006c0c17ca7344f260562834455bae",
    "texture_val.txt": "fbb5363515b4a28009e360afaaaf389d2dd2289e50dbb0c6ef4ea0c7fe4f3d4f",
    "spatial_val.txt": "8707a1d7e42ce3002d95363cf55f74bd043c843ae27108f5125aaaa7840ca988",
    "non_spatial_val.txt": "04c56cc9ac441dc9ea6c5157652058bd1635b5308526dd31bb29a1caab9a758d",
    "complex_val.txt": "1b808018b8d9916db3d47d5aa2ef18377a3549a56901a474156f799824cdf3b4",
    "complex_val_action.txt": "d49ee4c7f99e3f3379fb8704a54ff5288b83bb412971edf616a4721c2473308e",
    "complex_val_spatial.txt": "6c7ac0ab75c7c9080cfc7b421fb059b9b0febb98471707aeedf58771088abc02",
    "complex_val_spatialaction.txt": "e02ddc7fed812e6577e7386ec2137ce0a994a5ce19771661f68df7ac349a6ca9",
    "3d_spatial_val.txt": "c9953597315f36a5fcb41291bb19bdc6ab5f64a0fa760d691b4854a73f5d1fe9",
    "numeracy_val.txt": "dad8df141604b70ba7554bec724e3db0a80023680769b5c514854ea2d2527bbe",
    "new_objects.txt": "f39a3d2ff6067d7738673cbf465dc659ccc750776162989a5d9916f1d5f3e231",
}


def list_file(category: str, color_list: str = "2025") -> str:
    """The shipped file name of ``category``'s validation list."""
    if category not in CATEGORIES:
        raise BenchError(f"unknown T2I-CompBench category {category!r}; choose from {', '.join(CATEGORIES)}")
    if color_list not in COLOR_LISTS:
        raise BenchError(f"--color-list must be one of {', '.join(COLOR_LISTS)}, got {color_list!r}")
    return "color_val_2023.txt" if category == "color" and color_list == "2023" else f"{category}_val.txt"


@cache
def read_list(name: str) -> tuple[str, ...]:
    """The lines of a shipped file (``\\r`` stripped, empty lines dropped), checked against ``LISTS``."""
    path = files("bench.compbench") / "data" / name
    data = path.read_bytes()
    if sha256_files([path]) != LISTS[name]:
        raise BenchError(f"the shipped prompt list {path} was changed (its SHA-256 differs from the release); "
                         "reinstall pixart-bench")
    return tuple(line for line in data.decode("utf-8").replace("\r", "").split("\n") if line.strip())


def load_prompts(category: str, color_list: str = "2025") -> list[str]:
    """The validation prompts of ``category`` in file order (300 per category)."""
    return [line.split("\t")[0] for line in read_list(list_file(category, color_list))]


def list_sha256(category: str, color_list: str = "2025") -> str:
    return LISTS[list_file(category, color_list)]


def normalise_complex(prompt: str) -> str:
    """The official 3-in-1 script's key for a complex prompt: the text before the first "." in lower case."""
    return prompt.strip("\n").split(".")[0].lower()


def complex_subsets() -> dict[str, frozenset[str]]:
    """{"spatial", "action", "spatialaction"} → the normalised prompts of each complex subset."""
    return {name: frozenset(normalise_complex(p) for p in read_list(f"complex_val_{name}.txt"))
            for name in ("spatial", "action", "spatialaction")}


def new_objects() -> list[tuple[str, str]]:
    """The numeracy scorer's (singular, plural) object names, in file order (duplicates kept)."""
    pairs = []
    for line in read_list("new_objects.txt"):
        singular, _, plural = line.partition(" - ")
        pairs.append((singular.strip(), plural.strip()))
    return pairs
