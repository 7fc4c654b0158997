"""The study's prompts: a reproducible draw from T2I-CompBench's shipped validation lists.

``default_prompts(n, seed)`` takes an equal share of ``n`` from each of the paper's six categories
(``bench.compbench.prompts.PAPER_CATEGORIES``: color, shape, texture, spatial, non_spatial, complex).
When ``n`` is not a multiple of six, the remainder goes one each to the first categories in that
order, so the shares never differ by more than one and the same ``n`` always gives the same shares.

Within a category the draw is a seeded permutation of the list's distinct prompts (the RNG is seeded
with ``(seed, category's index)``), so a category's picks do not depend on how many the others take
before it, and a prompt already drawn for an earlier category is skipped (the shipped lists share
none, but a study item must not appear twice). The prompts come back grouped by category, each
group in its list's file order, which makes the file easy to check against the lists.

The returned ``source`` dict records what the draw was made from: each list's category, file name,
SHA-256 (checked by ``load_prompts`` when read) and how many prompts it gave, the color list version
(``"2025"``), ``n`` and the seed. ``create_study`` stores it in ``study.json`` as ``prompt_source``.

``write_prompts(prompts, path)`` writes one prompt per line (the ``--prompts FILE`` format).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.compbench.prompts import PAPER_CATEGORIES, list_file, list_sha256, load_prompts
from human_study.errors import StudyError
from pixart.files import write_text_atomic

COLOR_LIST = "2025"


def shares(n: int, categories: tuple[str, ...] = PAPER_CATEGORIES) -> dict[str, int]:
    """How many prompts each category gives: ``n // len(categories)``, plus one for the first
    ``n % len(categories)`` categories."""
    base, extra = divmod(n, len(categories))
    return {c: base + (1 if i < extra else 0) for i, c in enumerate(categories)}


def default_prompts(n: int = 300, seed: int = 0) -> tuple[list[str], dict]:
    """``n`` distinct prompts drawn with ``seed`` from the paper categories' validation lists, and a
    ``source`` dict saying which lists gave how many."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise StudyError(f"--n must be a whole number at least 1, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise StudyError(f"--seed must be a whole number at least 0, got {seed!r}")
    want = shares(n)
    chosen: list[str] = []
    taken: set[str] = set()
    lists = []
    for index, category in enumerate(PAPER_CATEGORIES):
        listed = list(dict.fromkeys(load_prompts(category, COLOR_LIST)))  # distinct, in file order
        candidates = [p for p in listed if p not in taken]
        if want[category] > len(candidates):
            raise StudyError(f"{n} prompts need {want[category]} from T2I-CompBench's {category} list, which has "
                             f"only {len(candidates)} unused distinct prompts: ask for fewer prompts")
        order = np.random.default_rng([seed, index]).permutation(len(candidates))
        picked = sorted(int(i) for i in order[: want[category]])  # back into file order
        group = [candidates[i] for i in picked]
        chosen.extend(group)
        taken.update(group)
        lists.append({"category": category, "file": list_file(category, COLOR_LIST),
                      "sha256": list_sha256(category, COLOR_LIST), "count": len(group)})
    source = {"benchmark": "T2I-CompBench", "split": "validation", "color_list": COLOR_LIST, "n": n, "seed": seed,
              "method": "equal share per paper category (remainder to the first categories in order); "
                        "seeded permutation of each list's distinct prompts, rng seed [seed, category index]",
              "lists": lists}
    return chosen, source


def write_prompts(prompts: list[str], path: str | Path) -> Path:
    """Write ``prompts`` one per line (UTF-8), atomically; a prompt that would not survive as one line
    (empty, a line break, leading or trailing spaces) is refused."""
    bad = [p for p in prompts if not isinstance(p, str) or not p.strip() or p != p.strip()
           or "\n" in p or "\r" in p]
    if bad:
        raise StudyError(f"{len(bad)} prompt(s) cannot be written one per line, e.g. {bad[0]!r}")
    path = Path(path)
    if path.is_dir():
        raise StudyError(f"cannot write the prompt list {path}: it is a folder; give a file path")
    if not path.parent.is_dir():
        raise StudyError(f"cannot write the prompt list {path}: the folder {path.parent} does not exist")
    return write_text_atomic(path, "".join(p + "\n" for p in prompts))
