"""Writing result files safely, and recording what made them.

- ``atomic_write(path, write)``: ``write`` fills a temporary file beside ``path``, which then replaces
  ``path`` in one ``os.replace``. A reader (another process, or a resumed run after a crash) sees the
  old file or the new one, never half of one. ``write_text_atomic`` and ``write_json_atomic`` are the
  common cases.
- ``sha256_files(files)``: one SHA-256 over the files' bytes in the given order (optionally with
  their names), read in chunks; ``sha256_folder(folder, pattern)`` hashes a folder's matching files
  in name order. Manifests and training records use them to name the weights and data they used.
- ``package_version`` / ``package_versions``: installed versions, for manifests.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable

RECORDED_PACKAGES = ("pixart-bench", "torch", "diffusers", "transformers")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a fresh temporary path in ``path``'s folder, then move it onto ``path``.

    The temporary name (``.NAME.XXXX.tmp``) is unique per call, as several processes may write the
    same file, and ends in ``.tmp``, so no glob for the real files picks up a half-written one;
    writers that choose a format from the name (PIL) must be told it. On an error the temporary
    file is removed and ``path`` is left as it was."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: str | os.PathLike, obj, indent: int | None = 2) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def sha256_files(files: Iterable[str | os.PathLike], *, with_names: bool = False) -> str:
    """SHA-256 of the files' contents, concatenated in the given order. ``with_names`` also hashes
    each file's name (then a NUL) before its bytes, so renaming a file changes the digest."""
    h = hashlib.sha256()
    for f in files:
        f = Path(f)
        if with_names:
            h.update(f.name.encode() + b"\0")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def sha256_folder(folder: str | os.PathLike, pattern: str = "*.safetensors") -> str:
    """SHA-256 of ``folder``'s files matching ``pattern`` (not recursive), in name order; for a weights
    folder, the digest of its ``*.safetensors`` files."""
    return sha256_files(sorted(Path(folder).glob(pattern)))


def package_version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def package_versions(dists: Iterable[str] = RECORDED_PACKAGES) -> dict:
    return {d: package_version(d) for d in dists}
