"""A study under load, without people: a synthetic study on disk, the study server as a subprocess,
and simulated raters that answer through ``gradio_client`` as a browser would.

``benchmarks/study_load.py`` drives dozens of ``SimRater`` threads against a ``Server`` to measure
answers per second and latency, and the tests use the same parts to check that no answer is lost.

The synthetic models get distinctive names (``zebramodel``, ``okapimodel``, ...) and the prompts a
distinctive word (``quokka``), so a check can search served pages, URLs and files for anything that
would unblind a rater. Every image is a seeded random-noise PNG, different for every (model, prompt),
so a served image can be matched pixel for pixel to its source.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from human_study.design import Settings, Study, create_study

MODEL_NAMES = ("zebramodel", "okapimodel", "tapirmodel", "dingomodel")
PROMPT_WORD = "quokka"  # in every prompt text, to grep pages for leaked prompts


def tiny_prompts(n: int) -> list[str]:
    """``n`` distinct prompts, usable as official-layout file names (no '_' or '/')."""
    return [f"a {PROMPT_WORD} number {i} on a hill" for i in range(n)]


def model_folder(root: Path, name: str, prompts: list[str], seed: int, size: int = 32) -> Path:
    """``root/name/samples/<prompt>_<i>.png`` (the index runs across prompts, as in the official
    layout): one seeded noise image per prompt."""
    samples = root / name / "samples"
    samples.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, prompt in enumerate(prompts):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(samples / f"{prompt}_{i:06d}.png")
    return root / name


def make_study(root: Path, n_prompts: int = 6, n_models: int = 2, *, db_url: str | None = None,
               **settings) -> Study:
    """A study of ``n_models`` noise-image models over ``n_prompts`` prompts in ``root/study``."""
    prompts = tiny_prompts(n_prompts)
    models = {MODEL_NAMES[m]: model_folder(root / "models", MODEL_NAMES[m], prompts, seed=100 + m)
              for m in range(n_models)}
    return create_study(prompts, models, root / "study", settings=Settings(**settings), db_url=db_url)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen | None = None, timeout: float = 90) -> None:
    """Wait until ``url`` answers (any HTTP status); fail early if ``process`` exits."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


class Server:
    """``pixart-bench study serve`` as a subprocess (``python -m bench``, this interpreter) in its own
    process group, so a kill takes every child with it; output goes to a log file, read back by ``log()``."""

    def __init__(self, study_folder: Path, admin_token: str, *, port: int | None = None, concurrency: int | None = None,
                 db_url: str | None = None, log: Path | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.args = [sys.executable, "-m", "bench", "study", "serve", str(study_folder),
                     "--port", str(self.port), "--admin-token", admin_token]
        if concurrency is not None:
            self.args += ["--concurrency", str(concurrency)]
        if db_url is not None:
            self.args += ["--db", db_url]
        self.log_path = log or study_folder.parent / f"serve-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> Server:
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        try:
            wait_for_http(self.url, self.process, timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group and wait for the server to exit."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """A clean stop (SIGTERM), then SIGKILL if it does not exit."""
        self.kill(signal.SIGTERM)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.kill()


# --- a simulated rater ---------------------------------------------------------------------------------------

@dataclass
class View:
    """What one ``/enter`` or ``/submit`` answer showed. The client returns the app's outputs without the
    server-side state and the layout columns: message, progress, prompt, K images, 2K rank radios,
    finish text, dashboard."""

    message: str
    progress: str  # "Item a of N" (empty when no item is shown)
    prompt: str  # the prompt text, without the page's quotes
    images: list[dict]  # FileData dicts (url, path, orig_name) of the K images, in screen order
    finish: str  # the thank-you text with the completion code
    dashboard: str

    @property
    def image_ids(self) -> list[str]:
        return [Path(im["orig_name"] or im["path"]).stem for im in self.images]

    @property
    def item(self) -> tuple[int, int] | None:
        """(a, N) of "Item a of N", or None when no item is shown."""
        m = re.fullmatch(r"Item (\d+) of (\d+)", self.progress or "")
        return (int(m[1]), int(m[2])) if m else None

    @property
    def code(self) -> str | None:
        m = re.search(r"completion code is \*\*`([^`]+)`\*\*", self.finish or "")
        return m[1] if m else None


def _value(v):
    """A component's value, or None for an update without one (hidden or untouched components)."""
    if isinstance(v, dict) and v.get("__type__") == "update":
        return v.get("value")
    return v


def prompt_text(markdown: str) -> str:
    """The prompt as written, from the page's Markdown (a heading, in quotes, special characters
    backslash-escaped)."""
    text = markdown.strip().lstrip("#").strip().strip("\u201c\u201d")
    return re.sub(r"\\(.)", r"\1", text)


def parse_view(result, k: int) -> View:
    result = [_value(v) for v in result]
    if len(result) != 3 + 3 * k + 2:
        raise AssertionError(f"unexpected output count {len(result)} for {k} models: {result!r}")
    images = [im for im in result[3:3 + k] if im]
    prompt = prompt_text(result[2] or "")
    return View(result[0] or "", result[1] or "", prompt, images, result[-2] or "", result[-1] or "")


def client(url: str, **kwargs):
    """A ``gradio_client.Client`` that downloads nothing (URLs come back as they are served) and calls no
    analytics."""
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, analytics_enabled=False, **kwargs)


def release(c) -> None:
    """Close a client without waiting: ``Client.close`` joins its heartbeat thread for up to a second,
    which adds up over many clients; the join runs on a daemon thread instead."""
    threading.Thread(target=c.close, daemon=True).start()


class SimRater:
    """A rater scripted through ``gradio_client``: enters with ``query`` (e.g. ``token=T``), answers
    every item with a seeded random valid ranking, and records each acknowledged answer (the images it
    saw, in screen order, and the ranks it gave) and each ``/submit`` latency.

    Attention checks are recognised from the study's own image table (an image of another prompt is the
    decoy); an honest rater gives the decoy the worst alignment rank, a careless one (``fail_checks``)
    the best, so its checks fail."""

    def __init__(self, url: str, query: str, study: Study, seed: int, *, fail_checks: bool = False,
                 timeout: float = 120):
        self.url, self.query, self.study, self.timeout = url, query, study, timeout
        self.k = len(study.models)
        self.rng = random.Random(seed)
        self.fail_checks = fail_checks
        self.prompt_of = {image: p for p, row in enumerate(study.images) for image in row}
        self.acked: list[tuple[tuple[str, ...], dict[str, list[int]]]] = []
        self.latencies: list[float] = []
        self.view: View | None = None
        self.client = None

    def _call(self, *args, api_name: str) -> View:
        job = self.client.submit(*args, api_name=api_name)
        return parse_view(job.result(timeout=self.timeout), self.k)

    def enter(self) -> View:
        if self.client is None:
            self.client = client(self.url)
        self.view = self._call(self.query, api_name="/enter")
        return self.view

    def ranks_for(self, view: View) -> dict[str, list[int]]:
        """A random valid ranking of ``view``'s images per criterion (checks: the decoy placed on purpose)."""
        shown = self.study.prompts.index(view.prompt)
        decoys = [i for i, image in enumerate(view.image_ids) if self.prompt_of[image] != shown]
        out = {}
        for criterion in ("quality", "alignment"):
            ranks = list(range(1, self.k + 1))
            self.rng.shuffle(ranks)
            if criterion == "alignment" and decoys:
                target = 1 if self.fail_checks else self.k
                j = ranks.index(target)
                ranks[j], ranks[decoys[0]] = ranks[decoys[0]], ranks[j]
            out[criterion] = ranks
        return out

    def answer(self) -> View:
        """Submit one ranking of the current item; on success it is recorded as acknowledged."""
        view = self.view
        ranks = self.ranks_for(view)
        values = [str(r) for c in ("quality", "alignment") for r in ranks[c]]
        start = time.perf_counter()
        self.view = self._call(*values, api_name="/submit")
        self.latencies.append(time.perf_counter() - start)
        self.acked.append((tuple(view.image_ids), ranks))
        # an accepted answer moves this rater on: to the next item or to the code (never back, never stuck)
        if self.view.code is None and self.view.item != (view.item[0] + 1, view.item[1]):
            raise AssertionError(f"{self.query}: after item {view.item} the page shows {self.view.item}")
        return self.view

    def run(self, max_answers: int | None = None) -> str | None:
        """Enter (if not yet in) and answer until done or ``max_answers``; returns the completion code."""
        if self.view is None:
            self.enter()
        n = 0
        while self.view.code is None and (max_answers is None or n < max_answers):
            if self.view.item is None:
                raise AssertionError(f"{self.query}: neither an item nor a code: {self.view}")
            self.answer()
            n += 1
        return self.view.code

    def close(self) -> None:
        if self.client is not None:
            release(self.client)
            self.client = None
