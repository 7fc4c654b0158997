"""What a generation run makes: its prompts, its seeds, its files, and this process's share.

- Prompts come from a text file or a T2I-CompBench category (``resolve_prompts``). A file is read
  as the official generation script reads one: ``splitlines()``, the text before a tab, nothing
  stripped, except that blank lines are skipped (the official script would make images for them).
- The official protocol (``official_jobs``): image k of prompt i is written to
  ``samples/<prompt>_<NNNNNN>.png`` with number ``n·i + k`` (n images per prompt) and made with
  seed ``base + k``: 42, 43, ... for every prompt when ``base`` is ``OFFICIAL_SEED``.
- The indexed layout (``indexed_jobs``), for prompts that file names cannot hold (COCO captions,
  which contain ``/`` and ``_`` and can be long): image i is ``samples/<NNNNNN>.png`` (i, six digits),
  made from prompt i with seed ``base + i``, one image per prompt; the prompt is in the manifest.
- ``process_share`` finds this process's rank among those ``accelerate launch`` (or ``torchrun``)
  started, with their barrier, or runs alone.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from bench.compbench.prompts import CATEGORIES, list_sha256, load_prompts
from bench.compbench.protocol import OFFICIAL_SEED
from bench.compbench.samples import SAMPLES, sample_name
from bench.errors import BenchError, check_range
from pixart.errors import read_text
from pixart.pipeline import MAX_PROMPT_CHARS
from pixart.sample_run import Job

MAX_SEED = 2**32 - 1  # seeds that every random number generator (torch, numpy) takes
NAME_BYTES = 255  # the longest file name most file systems allow
LAYOUT = f"{SAMPLES}/<prompt>_<NNNNNN>.png; image k of prompt i is number n*i + k"
INDEXED_LAYOUT = f"{SAMPLES}/<NNNNNN>.png; image i is prompt i"
LAYOUTS = ("official", "indexed")


def resolve_prompts(spec: str, color_list: str = "2025") -> tuple[list[str], dict]:
    """(prompts, where they came from) for ``--prompts``: an existing file, else a category name."""
    path = Path(spec)
    if path.is_file():
        return read_prompt_file(path), {"file": str(path)}
    if path.is_dir():
        raise BenchError(f"--prompts {spec} is a folder; give a text file (one prompt per line) or a "
                         f"T2I-CompBench category ({', '.join(CATEGORIES)})")
    if spec in CATEGORIES:
        prompts = load_prompts(spec, color_list)
        return prompts, {"category": spec, **({"color_list": color_list} if spec == "color" else {}),
                         "list_sha256": list_sha256(spec, color_list)}
    raise BenchError(f"--prompts {spec}: no such file, and not a T2I-CompBench category "
                     f"({', '.join(CATEGORIES)})")


def read_prompt_file(path: str | os.PathLike) -> list[str]:
    """The prompts of a text file as the official script reads them (see the module's docstring);
    BenchError names the file and the line of a prompt the official file names cannot hold."""
    path = Path(path)
    numbered = [(n, line.split("\t")[0]) for n, line in enumerate(read_text(path, BenchError, "prompt file")
                                                                     .splitlines(), 1)]
    numbered = [(n, p) for n, p in numbered if p.strip()]
    if not numbered:
        raise BenchError(f"prompt file {path} has no prompts (one prompt per line)")
    for n, prompt in numbered:
        check_prompt(prompt, f"prompt file {path}, line {n}")
    return [p for _, p in numbered]


def check_prompt(prompt: str, where: str) -> None:
    """BenchError when ``prompt`` cannot be a prompt of the official layout (its file name holds it)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise BenchError(f"{where}: the prompt is empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise BenchError(f"{where}: the prompt has {len(prompt):,} characters; at most {MAX_PROMPT_CHARS:,} are "
                         "accepted")
    if "_" in prompt or "/" in prompt:
        raise BenchError(f"{where}: the prompt {prompt!r} contains '_' or '/', which the official file names "
                         "(<prompt>_<NNNNNN>.png) cannot hold")
    longest = len(sample_name(prompt, 0).encode())
    if longest > NAME_BYTES:
        raise BenchError(f"{where}: the prompt is {len(prompt.encode()):,} bytes long, too long for its file name "
                         f"(<prompt>_<NNNNNN>.png: at most {NAME_BYTES} bytes)")


def check_prompts(prompts: list[str]) -> list[str]:
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise BenchError("no prompts to generate (give a prompt file or a T2I-CompBench category)")
    for i, prompt in enumerate(prompts, 1):
        check_prompt(prompt, f"prompt {i}")
    return list(prompts)


def check_indexed_prompts(prompts: list[str], seed: int) -> list[str]:
    """The prompts of an indexed run (any text up to ``MAX_PROMPT_CHARS``: the file names do not hold
    them), and its seeds ``seed … seed + len - 1`` in range; BenchError otherwise."""
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise BenchError("no prompts to generate")
    for i, prompt in enumerate(prompts, 1):
        if not isinstance(prompt, str) or not prompt.strip():
            raise BenchError(f"prompt {i}: the prompt is empty")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise BenchError(f"prompt {i}: the prompt has {len(prompt):,} characters; at most "
                             f"{MAX_PROMPT_CHARS:,} are accepted")
    check_range("--seed", seed, 0, MAX_SEED - (len(prompts) - 1), whole=True,
                why=f"the {len(prompts):,} images use this seed and the next {len(prompts) - 1:,}; seeds go up to "
                    f"{MAX_SEED:,}")
    return list(prompts)


def prompts_sha256(prompts: list[str]) -> str:
    """SHA-256 of the prompts, one per line (UTF-8, ``\\n`` after each)."""
    return hashlib.sha256("".join(p + "\n" for p in prompts).encode("utf-8")).hexdigest()


def parse_seed(text: str) -> int:
    """``--seeds``: "official" (42) or a whole number, the seed of each prompt's first image."""
    if text == "official":
        return OFFICIAL_SEED
    try:
        return int(text)
    except ValueError:
        raise BenchError(f"--seeds must be 'official' or a whole number (image k of every prompt then uses "
                         f"that number + k), got {text!r}") from None


def check_counts(images_per_prompt: int, seed: int, batch_size: int) -> None:
    check_range("--images-per-prompt", images_per_prompt, 1, 100_000, whole=True)
    check_range("--batch-size", batch_size, 1, 4096, whole=True)
    check_range("--seeds", seed, 0, MAX_SEED - (images_per_prompt - 1), whole=True,
                why=f"each prompt's {images_per_prompt} images use this seed and the next "
                    f"{images_per_prompt - 1}; seeds go up to {MAX_SEED:,}")


def official_jobs(prompts: list[str], images_per_prompt: int, seed: int = OFFICIAL_SEED) -> list[Job]:
    """The official layout's images: prompt i, image k → ``samples/<prompt>_<n·i+k>.png``, seed ``seed + k``."""
    n = images_per_prompt
    return [Job(n * i + k, f"{SAMPLES}/{sample_name(p, n * i + k)}", p, seed + k, {"prompt_index": i, "image": k})
            for i, p in enumerate(prompts) for k in range(n)]


def indexed_jobs(prompts: list[str], seed: int) -> list[Job]:
    """The indexed layout's images: prompt i → ``samples/<i:06d>.png``, seed ``seed + i``."""
    return [Job(i, f"{SAMPLES}/{i:06d}.png", p, seed + i, {"prompt_index": i}) for i, p in enumerate(prompts)]


def check_samples_folder(out: Path, jobs: list[Job]) -> None:
    """BenchError when ``out/samples/`` holds images that are not this run's: the scorers read every
    image there, so they would be scored with this run's."""
    folder = out / SAMPLES
    if not folder.is_dir():
        return
    planned = {Path(j.file).name for j in jobs}
    foreign = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and p.name not in planned)
    if foreign:
        raise BenchError(f"{folder} holds {len(foreign)} file(s) this run does not make ({', '.join(foreign[:3])}"
                         f"{', ...' if len(foreign) > 3 else ''}), which the scorers would read with its images; "
                         "use another --out folder")


def process_share(rank: int | None = None, world: int | None = None):
    """(rank, world, barrier): given ones are checked and run without a barrier (processes run one
    after another); none given, the processes of ``accelerate launch`` / ``torchrun``, or one alone."""
    if rank is not None or world is not None:
        if rank is None or world is None:
            raise BenchError("give both rank and world, or neither")
        check_range("world", world, 1, whole=True)
        check_range("rank", rank, 0, world - 1, whole=True)
        return int(rank), int(world), None
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch
        from accelerate import PartialState

        state = PartialState(cpu=not torch.cuda.is_available())
        return state.process_index, state.num_processes, state.wait_for_everyone
    return 0, 1, None


def local_device(device: str) -> str:
    """``cuda`` means this process's own GPU under a multi-process launch (``LOCAL_RANK``)."""
    if device == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device
