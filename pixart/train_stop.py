"""When the trainer stops before ``max_steps``: after ``max_seconds`` of wall time, or on SIGTERM.

SIGTERM (sent by ``timeout``, SLURM and most schedulers before they kill) stops like
``max_seconds``: after the current step, with a checkpoint; the trainer then exits with status 143,
so that a caller running several stages does not go on to the next one. Every process must stop at
the same step, or one would wait for the others forever, so SIGTERM is only caught where the stop
flag is already shared: one process, or several with ``max_seconds``.
"""

from __future__ import annotations

import signal
import threading
import time

import torch


class SigtermStop:
    """While active, SIGTERM only sets ``received`` (the loop then saves and stops); the previous handler
    is restored on exit. Inactive (``active=False``), or outside the main thread (Python lets only the
    main thread set handlers), it does nothing and ``received`` stays False."""

    def __init__(self, active: bool = True):
        self.active, self.received, self._previous = active, False, None

    def _handle(self, signum, frame):
        self.received = True

    def __enter__(self):
        if self.active and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        return False


class EarlyStop:
    """Whether every process stops after this step (``due``), and why (``reason``).

    A context manager: inside it SIGTERM is caught (``SigtermStop``). ``check`` is called after
    each step; with several processes it gathers their flags (one small collective per step, only
    where ``max_seconds`` is set or SIGTERM arrived), so all of them agree."""

    def __init__(self, accelerator, max_seconds: float | None):
        self.accelerator, self.max_seconds = accelerator, max_seconds
        self.sigterm = SigtermStop(active=accelerator.num_processes == 1 or max_seconds is not None)
        self.t_start = time.perf_counter()
        self.due, self.reason = False, ""

    def __enter__(self):
        self.sigterm.__enter__()
        return self

    def __exit__(self, *exc):
        return self.sigterm.__exit__(*exc)

    def check(self, now: float) -> bool:
        """After a step that ended at ``now`` (``time.perf_counter``): stop now?"""
        terminated = self.sigterm.received
        if self.max_seconds is None and not terminated:
            return False
        due = terminated or now - self.t_start >= self.max_seconds
        if self.accelerator.num_processes > 1:
            flag = torch.tensor([float(due)], device=self.accelerator.device)
            due = bool(self.accelerator.gather(flag).max().item())
        if due:
            self.reason = "SIGTERM received" if terminated else f"max_seconds={self.max_seconds:g} reached"
        self.due = due
        return due
