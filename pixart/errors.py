"""Bad input, told apart from bugs.

``InputError`` is the base of every error the library raises for input it cannot use: a missing,
truncated or corrupt file, a config with a wrong key or value, an option out of range. Its message
says what is wrong, where (the file, the key, the option) and, where it helps, what to do. Each
layer has its own subclass: ``pixart.checkpoints.CheckpointError``, ``pixart.pipeline.PipelineError``,
``pixart.data.DataError``, ``pixart.train_config.ConfigError`` (and ``bench.errors.BenchError`` on
the benchmark side). The command line prints an ``InputError`` as one line and exits with status 2;
any other exception is a bug and keeps its traceback.

The readers below turn the ways a file can be damaged into such errors, naming the file:
``read_json``, ``read_yaml``, ``read_text`` (UTF-8), ``read_safetensors``; ``reading`` does the same
around a third-party loader (transformers' and diffusers' ``from_pretrained``).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path


class InputError(Exception):
    """Input the library cannot use; the message says what, where, and what to do."""


class PipelineError(InputError, ValueError):
    """Bad pipeline input: pipeline, T5 or VAE folders, prompts, sampler settings (``pixart.pipeline``
    re-exports it; the T5 and VAE loaders raise it too)."""


def _unreadable(error: type[InputError], path: Path, what: str, why) -> InputError:
    return error(f"cannot read {what} {path}: {why}")


def read_text(path: str | os.PathLike, error: type[InputError] = InputError, what: str = "file") -> str:
    """A UTF-8 text file, or ``error`` naming it (missing, a folder, or not UTF-8 at byte N)."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path}" if not path.exists() else f"{what} {path} is a folder, not a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise _unreadable(error, path, what, f"not UTF-8 text (byte {e.start} is {e.object[e.start:e.start + 1]!r})")
    except OSError as e:
        raise _unreadable(error, path, what, e.strerror or e) from None


def read_json(path: str | os.PathLike, error: type[InputError] = InputError, what: str = "JSON file") -> dict:
    """A JSON object from ``path``, or ``error`` naming the file and the line of a syntax error."""
    path = Path(path)
    text = read_text(path, error, what)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise _unreadable(error, path, what, f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg} "
                                             "(truncated or hand-edited?)") from None
    if not isinstance(value, dict):
        raise error(f"{what} {path} holds a JSON {type(value).__name__}, not an object")
    return value


def read_yaml(path: str | os.PathLike, error: type[InputError] = InputError, what: str = "YAML file"):
    """The YAML document in ``path`` (None when empty), or ``error`` naming the file and line."""
    path = Path(path)
    return parse_yaml(read_text(path, error, what), error, f"{what} {path}")


def parse_yaml(text: str, error: type[InputError] = InputError, where: str = "YAML"):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise error(f"cannot read {where}: invalid YAML{at}: {problem}") from None


def read_safetensors(path: str | os.PathLike, error: type[InputError] = InputError, what: str = "weights file") -> dict:
    """The tensors of a ``.safetensors`` file, or ``error`` naming it when it is missing, empty,
    truncated or not a safetensors file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path}" if not path.exists() else f"{what} {path} is a folder, not a file")
    try:
        return load_file(path)
    except (SafetensorError, OSError) as e:
        raise _unreadable(error, path, what, f"not a valid safetensors file, truncated or corrupt ({e})") from None


@contextmanager
def reading(path: str | os.PathLike, error: type[InputError] = InputError, what: str = "model folder"):
    """Around a third-party loader of ``path`` (``from_pretrained``): the ways a damaged or missing
    folder shows up (OSError, a JSON or safetensors error, EOFError) become ``error`` naming it. Only
    the load call belongs inside: an error of other code there would be misreported as bad input."""
    from safetensors import SafetensorError

    try:
        yield
    except InputError:
        raise
    except (OSError, ValueError, SafetensorError, EOFError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise error(f"cannot load {what} {path}: {first}") from None
