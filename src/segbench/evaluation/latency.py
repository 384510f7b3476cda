"""Inference latency and memory, measured the same way for every pair.

Protocol: one canvas of the model's input size (batch 1), ``warmup`` untimed passes, then the
median of ``repeats`` timed passes of the whole predictor (every fold model, their mean). On the
CPU always, with the job's threads, and on CUDA where present. Memory: on CUDA the peak allocated
by the passes; on the CPU the peak resident memory while they run above the resident memory before
(sampled every millisecond from /proc; Linux only, else None).
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from contextlib import contextmanager

import numpy as np
import torch

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 0.0


def resident_mb() -> float | None:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * PAGE_MB
    except OSError:
        return None


@contextmanager
def peak_resident_increase(result: dict):
    """Sets ``result["memory_mb"]``: the peak resident memory in the block above the memory before it."""
    before = resident_mb()
    peak, done = [before or 0.0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], resident_mb() or 0.0)
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        result["memory_mb"] = None if before is None else round(peak[0] - before, 1)


def _timed(predictor, canvas: np.ndarray, repeats: int, warmup: int, sync) -> float:
    for _ in range(warmup):
        predictor.canvas_probabilities(canvas)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        predictor.canvas_probabilities(canvas)
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(load, repeats: int = 20, warmup: int = 3) -> dict:
    """``load(device) -> Predictor``; returns {"latency_ms_cpu", "memory_mb_cpu", and on CUDA
    "latency_ms_gpu", "memory_mb_gpu"}."""
    cpu = load(torch.device("cpu"))
    shape = (1, cpu.size, cpu.size) if cpu.channels == 1 else (1, cpu.size, cpu.size, cpu.channels)
    canvas = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    memory: dict = {}
    with peak_resident_increase(memory):
        out = {"latency_ms_cpu": round(_timed(cpu, canvas, repeats, warmup, lambda: None), 2)}
    out["memory_mb_cpu"] = memory["memory_mb"]
    if torch.cuda.is_available():
        gpu = load(torch.device("cuda"))
        torch.cuda.reset_peak_memory_stats()
        out["latency_ms_gpu"] = round(_timed(gpu, canvas, repeats, warmup, torch.cuda.synchronize), 2)
        out["memory_mb_gpu"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out
