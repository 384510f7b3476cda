"""Which device a job runs on: the CPU, the GPU a scheduler assigned it, or a GPU it leases on a shared machine.

Snakemake counts GPUs (``resources: gpu=1`` on train, evaluate and latency jobs) but never assigns one. So on
one machine each GPU job leases a device: it holds the lock file of the first free visible GPU until it ends.
Locks are named by the device's UUID, so jobs that see different ``CUDA_VISIBLE_DEVICES`` still agree on which
physical GPU a lock stands for, and live in one directory that every user can write (mode 1777, like /tmp;
lock files 0666). Under a scheduler that assigns devices (Slurm's ``--gres``/``--gpus``, Kubernetes' device
plugin), the job uses the devices it was given, the first visible one, and takes no lock: the scheduler
already keeps jobs apart.

Train, evaluate, latency, ``segbench predict`` and ``segbench serve`` all take their device here.
Environment: ``SEGBENCH_LOCK_DIR`` (the lock directory), ``SEGBENCH_GPU_WAIT`` (seconds to wait for a free
GPU before failing; default 6 hours).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from segbench import SegbenchError

log = logging.getLogger(__name__)

WAIT = 6 * 3600.0   # seconds: the default wait for a free GPU
POLL = 5.0          # seconds between tries
REPORT = 60.0       # seconds between "still waiting" messages


def lock_dir() -> Path:
    """Machine-wide, shared by every user and project (override: SEGBENCH_LOCK_DIR)."""
    return Path(os.environ.get("SEGBENCH_LOCK_DIR", Path(tempfile.gettempdir()) / "segbench-gpu-locks"))


def assigned_by() -> str | None:
    """The scheduler that assigned this job its GPUs ("Slurm", "Kubernetes"), or None on a shared machine."""
    if os.environ.get("SLURM_JOB_ID") and any(os.environ.get(k) for k in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS",
                                                                          "SLURM_GPUS_ON_NODE")):
        return "Slurm"
    if os.environ.get("KUBERNETES_SERVICE_HOST") and os.environ.get("NVIDIA_VISIBLE_DEVICES", "none") not in (
            "", "none", "void"):
        return "Kubernetes"
    return None


def device_keys() -> list[str]:
    """A name per visible device, in CUDA order, the same in every process: its UUID (else its PCI bus id, else
    its CUDA_VISIBLE_DEVICES entry)."""
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    keys = []
    for index in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(index)
        uuid = getattr(props, "uuid", None)
        bus = getattr(props, "pci_bus_id", None)
        keys.append(str(uuid) if uuid else f"pci-{bus}" if bus is not None else
                    listed[index] if index < len(listed) else str(index))
    return keys


def _shared_directory(path: Path) -> None:
    """Create ``path`` writable by every user (sticky, like /tmp), if it is not there yet."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(PermissionError):  # made by another user a moment ago: theirs to set
        path.chmod(0o1777)


class Lease:
    """Hold the lock of one free device among ``keys`` (positions ``candidates``); ``index`` is its position."""

    def __init__(self, keys: list[str], candidates: list[int] | None = None, directory: Path | None = None,
                 poll: float = POLL, timeout: float | None = None):
        self.keys, self.directory, self.poll = keys, directory or lock_dir(), poll
        self.candidates = list(range(len(keys))) if candidates is None else candidates
        self.timeout = float(os.environ.get("SEGBENCH_GPU_WAIT", WAIT)) if timeout is None else timeout
        self.index: int | None = None
        self._lock: FileLock | None = None

    def acquire(self) -> int:
        _shared_directory(self.directory)
        started = reported = time.monotonic()
        while True:
            for index in self.candidates:
                lock = FileLock(self.directory / f"gpu-{self.keys[index]}.lock", mode=0o666)
                try:
                    lock.acquire(timeout=0)
                except Timeout:
                    continue
                self.index, self._lock = index, lock
                log.info("leased GPU cuda:%d (%s)", index, self.keys[index])
                return index
            waited = time.monotonic() - started
            if waited > self.timeout:
                raise TimeoutError(f"no free GPU among {[self.keys[i] for i in self.candidates]} after "
                                   f"{waited:.0f} s (SEGBENCH_GPU_WAIT; locks in {self.directory})")
            if time.monotonic() - reported >= REPORT or reported == started:
                log.info("waiting for a free GPU: all %d leased by other jobs (locks in %s); %.0f s so far",
                         len(self.candidates), self.directory, waited)
                reported = time.monotonic()
            time.sleep(self.poll)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock, self.index = None, None

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


@contextlib.contextmanager
def device(requested: str | None = None) -> Iterator[torch.device]:
    """The device for the life of the block. ``requested``: None or "auto" (a GPU when there is one, else the
    CPU), "cpu", "cuda" (any GPU) or "cuda:<k>" (that one). A GPU is the scheduler's, else leased; it becomes
    the current device (``torch.cuda.set_device``), so nothing opens a context on another.

    Raises:
        SegbenchError: a GPU asked for where there is none, or a device name segbench does not know.
    """
    requested = (requested or "auto").lower()
    if requested not in ("auto", "cpu", "cuda") and not (requested.startswith("cuda:") and
                                                         requested[5:].isdigit()):
        raise SegbenchError(f"--device {requested!r}: use auto, cpu, cuda or cuda:<k>")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        yield torch.device("cpu")
        return
    if not torch.cuda.is_available():
        raise SegbenchError(f"--device {requested}: torch sees no CUDA device on this machine")
    count = torch.cuda.device_count()
    wanted = int(requested[5:]) if requested.startswith("cuda:") else None
    if wanted is not None and wanted >= count:
        raise SegbenchError(f"--device {requested}: this job sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    scheduler = assigned_by()
    if scheduler:
        chosen = torch.device("cuda", wanted or 0)
        log.info("using %s, assigned by %s (no lease)", chosen, scheduler)
        torch.cuda.set_device(chosen)
        yield chosen
        return
    with Lease(device_keys(), None if wanted is None else [wanted]) as lease:
        chosen = torch.device("cuda", lease.index)
        torch.cuda.set_device(chosen)
        yield chosen
