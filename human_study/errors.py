"""The human study's bad-input error: a ``pixart.errors.InputError`` (the CLI prints it as one line, exit 2)."""

from __future__ import annotations

from pixart.errors import InputError


class StudyError(InputError, ValueError):
    """A study folder, design, database, image folder, answer or result input that cannot be used."""
