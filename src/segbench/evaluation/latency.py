"""The `latency` stage: inference latency and memory of an architecture at the dataset's input size.

Latency is a property of the architecture and the input size, not of the loss or the trained weights, so
it is measured once per architecture and input (channels, classes, size) on each host, on a model with seeded
random weights: every dataset and sweep of that input reuses the measurement (``measured_once``). Protocol: one
canvas of the input size (batch 1), ``warmup`` untimed passes, then ``repeats`` timed passes of the predictor
(normalisation, forward pass, softmax or sigmoid); the median and the interquartile range (the spread the
report's Pareto front treats as a tie). On the CPU always, with one thread, and on a leased CUDA device where
there is one (the lease held for the GPU's passes only). Memory: on the CPU the peak resident memory while the
passes run above the resident memory before (sampled every millisecond from /proc; Linux only, else None); on
CUDA the weights and the activations apart (peak allocated above the weights). A fold ensemble of k models
takes k times as long.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import platform
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("segbench")
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


def _timed(predictor, canvas: np.ndarray, repeats: int, warmup: int, sync) -> list[float]:
    """Milliseconds of each of ``repeats`` passes, after ``warmup``."""
    for _ in range(warmup):
        predictor.canvas_probabilities(canvas)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        predictor.canvas_probabilities(canvas)
        sync()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _spread(times: list[float], device: str) -> dict[str, float]:
    q25, median, q75 = np.percentile(times, [25, 50, 75])
    return {f"latency_ms_{device}": round(float(median), 3), f"latency_ms_{device}_iqr": round(float(q75 - q25), 3)}


def measure(predictor, repeats: int = 30, warmup: int = 5, device: str = "cpu") -> dict:
    """Time and measure ``predictor`` on the CPU (one thread), then on a GPU when ``device`` (as
    ``segbench.devices.device`` takes it) gives one, leased for the GPU's passes only: {"latency_ms_cpu",
    "latency_ms_cpu_iqr", "memory_mb_cpu", and on a GPU "latency_ms_gpu", "latency_ms_gpu_iqr",
    "weights_mb_gpu", "activations_mb_gpu", "gpu"}."""
    from segbench import devices

    shape = (1, predictor.size, predictor.size) + ((predictor.channels,) if predictor.channels > 1 else ())
    canvas = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    predictor.to(torch.device("cpu"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    memory: dict = {}
    try:
        with peak_resident_increase(memory):
            out = _spread(_timed(predictor, canvas, repeats, warmup, lambda: None), "cpu")
    finally:
        torch.set_num_threads(threads)
    out.update(memory_mb_cpu=memory["memory_mb"], cpu_threads=1)
    with devices.device(device) as gpu:  # the CPU's passes hold no GPU
        if gpu.type == "cuda":
            out.update(_gpu_measure(predictor, canvas, repeats, warmup, gpu))
    return out


def _gpu_measure(predictor, canvas: np.ndarray, repeats: int, warmup: int, gpu: torch.device) -> dict:
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated(gpu)
    predictor.to(gpu)
    weights = torch.cuda.memory_allocated(gpu) - before
    torch.cuda.reset_peak_memory_stats(gpu)
    out = _spread(_timed(predictor, canvas, repeats, warmup, lambda: torch.cuda.synchronize(gpu)), "gpu")
    out.update(weights_mb_gpu=round(weights / 2**20, 1),
               activations_mb_gpu=round((torch.cuda.max_memory_allocated(gpu) - before - weights) / 2**20, 1),
               gpu=torch.cuda.get_device_name(gpu))
    predictor.to(torch.device("cpu"))
    torch.cuda.empty_cache()
    return out


def predictor_latency(name: str, predictor, device: str = "cpu", repeats: int = 30, warmup: int = 5) -> dict:
    """``measure`` of ``predictor``, as the latency stage writes it: named ``name``, with its input shape."""
    return {"architecture": name, "input": [predictor.channels, predictor.size, predictor.size],
            **measure(predictor, repeats=repeats, warmup=warmup, device=device)}


def architecture_latency(arch_cfg: dict, info: dict, size: int, device: str = "auto", repeats: int = 30) -> dict:
    """The latency and memory of the architecture ``arch_cfg`` (a params.yaml entry) on inputs of the dataset
    ``info`` describes (its info.json: channels and classes) at ``size`` px, with seeded random weights."""
    from segbench.models import build_model
    from segbench.predict.predictor import Member, Predictor

    torch.manual_seed(0)
    channels, classes = info["channels"], len(info["class_names"])
    net = build_model(arch_cfg, channels, classes).eval()
    predictor = Predictor([Member(net, [0.5] * channels, [0.25] * channels)], size, channels, classes)
    return predictor_latency(arch_cfg["family"], predictor, device, repeats)


def measured_once(folder: Path, key: dict, measure) -> dict:
    """``measure()``'s result, measured the first time ``key`` is seen and read from ``folder`` after that.

    ``key`` holds all a measurement depends on (architecture, input shape, host, code); a job that finds the key
    while another measures it waits for that one (an ``flock`` per key) rather than measuring on a loaded host.
    Written here, not with ``joblib.Memory``: that one neither locks across processes nor keys on a host."""
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    from segbench.io import read_json, write_json

    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / f"{name}.json").exists():
            log.info("latency: the measurement in %s (same architecture, input, host and code)", folder / name)
            return read_json(folder / f"{name}.json")["result"]
        result = measure()
        write_json(folder / f"{name}.json", {"key": key, "result": result})
        return result


def host() -> dict:
    """The machine a timing belongs to: its name, processor and the torch it ran."""
    return {"node": platform.node(), "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__}
