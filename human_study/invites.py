"""Links raters open: one invite per rater (``?token=T``), or one link for a crowd platform."""

from __future__ import annotations

from urllib.parse import urlencode

from human_study.errors import StudyError


def check_url(url: str) -> str:
    """The study address ``url`` as links are built on it (a trailing / added); StudyError unless it is an
    http(s) address."""
    if not url.startswith(("http://", "https://")):
        raise StudyError(f"--url {url}: give the address raters open, e.g. https://study.example.org/")
    return url if url.endswith("/") or "?" in url else url + "/"


def invite_link(url: str, token: str) -> str:
    base = check_url(url)
    return f"{base}{'&' if '?' in base else '?'}{urlencode({'token': token})}"


def crowd_link(url: str, entry_key: str, entry_params: tuple[str, ...]) -> str:
    """The study URL for a crowd platform, with its placeholders (Prolific's ``{{%NAME%}}`` form), e.g.
    ``https://host/?key=K&PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}``."""
    base = check_url(url)
    placeholders = "&".join(f"{p}={{{{%{p}%}}}}" for p in entry_params)
    return f"{base}{'&' if '?' in base else '?'}{urlencode({'key': entry_key})}&{placeholders}"
