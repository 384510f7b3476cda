"""Atomic, asynchronous checkpoints and the random state a resumed run needs.

A checkpoint is copied to CPU memory in the training thread (milliseconds), then written
by a background thread, so disk speed never slows training. Writes are atomic, one at a
time, in order; a kill mid-write leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import shutil
import threading
from pathlib import Path

import numpy as np
import torch

from segbench.io import atomic_path


def to_cpu(obj):
    """A deep copy of ``obj`` with every tensor detached and moved to the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


def link_or_copy(source: Path, link: Path) -> None:
    """Give ``source`` a second name ``link`` (a hard link: free), or copy it; atomically."""
    with atomic_path(link) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


class Checkpointer:
    """Writes ``{path: state}`` snapshots in a background thread, one at a time."""

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def _write(self, items: list[tuple[Path, dict]], links: list[tuple[Path, Path]]) -> None:
        with contextlib.suppress(AttributeError, OSError):  # Linux: nice this thread, not the process
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        try:
            for path, state in items:
                with atomic_path(path) as tmp:
                    torch.save(state, tmp)
            for source, link in links:
                link_or_copy(source, link)
        except BaseException as exc:  # surfaced by the next wait()
            self._error = exc

    def save(self, items: list[tuple[Path, dict]], links: list[tuple[Path, Path]] = ()) -> None:
        """Snapshot now; in the background (after the previous write) write ``items``, then
        give each written ``source`` a second name ``link`` that outlives the first."""
        snapshot = [(path, to_cpu(state)) for path, state in items]
        self.wait()
        self._thread = threading.Thread(target=self._write, args=(snapshot, list(links)), daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Block until the pending write is on disk; re-raise its error."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error


def rng_state(loader_generator: torch.Generator, device: torch.device) -> dict:
    """Every random stream a training epoch draws from, as tensors and plain values only (so the checkpoint
    loads with ``weights_only=True``): Python's, NumPy's, torch's, the loader's shuffling and, on a GPU, the
    job's own device's (not every visible one: a resumed job may see fewer). Augmentation needs none: it is
    seeded per sample."""
    numpy = np.random.get_state(legacy=False)
    numpy["state"] = {**numpy["state"], "key": numpy["state"]["key"].tolist()}
    state = {"python": random.getstate(), "numpy": numpy, "torch": torch.get_rng_state(),
             "loader": loader_generator.get_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng_state(state: dict, loader_generator: torch.Generator, device: torch.device) -> None:
    random.setstate(state["python"])
    numpy = state["numpy"]
    np.random.set_state({**numpy, "state": {**numpy["state"], "key": np.asarray(numpy["state"]["key"], np.uint32)}})
    torch.set_rng_state(state["torch"])
    loader_generator.set_state(state["loader"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)
