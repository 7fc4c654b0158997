"""Timing of training steps, shared by ``ablate cost`` and ``benchmarks/train_step.py``."""

from __future__ import annotations

import time

import torch


def time_steps(step, warmup: int, steps: int, device) -> list[float]:
    """Seconds of each of ``steps`` calls of ``step()`` after ``warmup`` untimed ones. On CUDA the queue is
    drained around every timed call and the peak-memory counters restart after the warm-up, so
    ``max_memory_allocated`` afterwards is the timed steps' peak."""
    cuda = torch.device(device).type == "cuda"
    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return times
