"""Which device a job runs on: the CPU, or a GPU it leases, on one machine or inside a scheduler's allocation.

Snakemake counts GPUs (``resources: gpu=1`` on the GPU stages) but never assigns one, and one Slurm allocation may
hold several. So every GPU job leases its device: it holds an OS lock (``fcntl.flock``) on that device's lock file
while the GPU computes. Lock files are named by the device's UUID, so jobs that see different
``CUDA_VISIBLE_DEVICES`` agree on which physical GPU a lock stands for; they live in one machine-wide folder
(``/var/tmp/segbench-gpu-locks``: not under ``TMPDIR``, which pam_tmpdir, containers and Slurm make differ between
jobs), created sticky and world-writable like /tmp. A lock file another user created is locked through a read-only
handle where it cannot be written (flock needs no write access), and the kernel drops the lock of a process that
dies, so a killed job never blocks a GPU. The holder writes who it is into the lock file (user, pid, host, Slurm
job), and a job that waits says every minute who holds the device.

No silent CPU: where a scheduler (or the user) assigned GPUs, or ``cuda`` was asked for, and torch sees none, the
job stops at once, naming what was assigned, what torch sees and the likely cause.

Environment: ``SEGBENCH_LOCK_DIR`` (the lock folder), ``SEGBENCH_GPU_WAIT`` (seconds to wait for a free GPU before
failing; default 6 hours).
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from segbench import SegbenchError

log = logging.getLogger(__name__)

LOCK_DIR = Path("/var/tmp/segbench-gpu-locks")
WAIT = 6 * 3600.0   # seconds: the default wait for a free GPU
POLL = 5.0          # seconds between tries
REPORT = 60.0       # seconds between "still waiting" messages
NO_DEVICES = {"", "-1", "none", "void", "nodevfiles"}  # values that assign no GPU (Slurm writes NoDevFiles)


def lock_dir() -> Path:
    """Machine-wide, shared by every user and project (override: SEGBENCH_LOCK_DIR)."""
    return Path(os.environ.get("SEGBENCH_LOCK_DIR") or LOCK_DIR)


def assigned_gpus() -> dict[str, str]:
    """The environment variables by which a scheduler or the user gave this job GPUs, with their values: Slurm's
    ``SLURM_JOB_GPUS``, ``SLURM_STEP_GPUS``, ``SLURM_GPUS_ON_NODE``, Kubernetes' ``NVIDIA_VISIBLE_DEVICES`` (in a pod),
    and ``CUDA_VISIBLE_DEVICES``. Empty on a plain CPU machine."""
    found = {name: value for name in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "CUDA_VISIBLE_DEVICES")
             if (value := os.environ.get(name, "").strip()) and value.lower() not in NO_DEVICES}
    on_node = os.environ.get("SLURM_GPUS_ON_NODE", "").strip()
    if on_node.isdigit() and int(on_node) > 0:
        found["SLURM_GPUS_ON_NODE"] = on_node
    nvidia = os.environ.get("NVIDIA_VISIBLE_DEVICES", "").strip()
    if os.environ.get("KUBERNETES_SERVICE_HOST") and nvidia.lower() not in NO_DEVICES:
        found["NVIDIA_VISIBLE_DEVICES"] = nvidia
    return found


def scheduler() -> str | None:
    """The scheduler this job runs under ("Slurm", "Kubernetes"), or None."""
    if os.environ.get("SLURM_JOB_ID"):
        return "Slurm"
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "Kubernetes"
    return None


def torch_build() -> str:
    """What this torch can do, in words: its version and the CUDA it was built for."""
    cuda = torch.version.cuda
    return (f"torch {torch.__version__} built for CUDA {cuda}" if cuda else
            f"torch {torch.__version__}, a CPU-only build (torch.version.cuda is None)")


def gpu_problem(requested: str = "auto") -> str | None:
    """Why a GPU job must not run here as asked, or None: GPUs assigned (or ``cuda`` asked for) that torch cannot
    see. ``requested``: auto, cpu, cuda or cuda:<k>."""
    if requested == "cpu" or torch.cuda.is_available():
        return None
    assigned = assigned_gpus()
    if requested == "auto" and not assigned:
        return None
    what = (f"GPUs were assigned to this job ({', '.join(f'{k}={v}' for k, v in assigned.items())})" if assigned
            else f"device {requested!r} was asked for")
    cause = ("install a CUDA build of torch (the pinned torch==2.14.1 from PyPI is one)" if not torch.version.cuda
             else f"the NVIDIA driver is missing, older than CUDA {torch.version.cuda} needs (driver 580 or newer for "
                  "CUDA 13.0; `nvidia-smi` shows it), or the job cannot open /dev/nvidia*")
    return (f"{what}, but torch sees no CUDA device ({torch_build()}; torch.cuda.is_available() is False). Likely "
            f"cause: {cause}. To run on the CPU on purpose, set train.device: cpu (or --device cpu).")


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
    """Create ``path`` writable by every user (sticky, like /tmp), if it is not there yet.

    Raises:
        SegbenchError: it cannot be created, naming it and SEGBENCH_LOCK_DIR.
    """
    if path.is_dir():
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SegbenchError(f"GPU lock folder {path}: cannot create it ({exc.strerror}); set SEGBENCH_LOCK_DIR to a "
                            "folder every job on this machine can write") from None
    with contextlib.suppress(PermissionError):  # made by another user a moment ago: theirs to set
        path.chmod(0o1777)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a name (containers)
        return str(os.getuid())


def holder() -> dict:
    """Who this process is, as a lease records it."""
    return {"user": _user(), "pid": os.getpid(), "host": socket.gethostname(),
            **({"slurm_job": os.environ["SLURM_JOB_ID"]} if os.environ.get("SLURM_JOB_ID") else {}),
            "since": time.strftime("%Y-%m-%d %H:%M:%S")}


def describe_holder(text: str) -> str:
    """A lock file's holder record in words."""
    try:
        who = json.loads(text)
    except ValueError:
        return "another job (it did not say who)"
    job = f", Slurm job {who['slurm_job']}" if who.get("slurm_job") else ""
    return f"{who.get('user')} (pid {who.get('pid')} on {who.get('host')}{job}, since {who.get('since')})"


class Lease:
    """Hold the lock of one free device among ``keys`` (positions ``candidates``); ``index`` is its position."""

    def __init__(self, keys: list[str], candidates: list[int] | None = None, directory: Path | None = None,
                 poll: float = POLL, timeout: float | None = None):
        self.keys, self.directory, self.poll = keys, directory or lock_dir(), poll
        self.candidates = list(range(len(keys))) if candidates is None else candidates
        self.timeout = float(os.environ.get("SEGBENCH_GPU_WAIT", WAIT)) if timeout is None else timeout
        self.index: int | None = None
        self._fd: int | None = None
        self._writable = False

    def path(self, index: int) -> Path:
        return self.directory / f"gpu-{self.keys[index]}.lock"

    def _open(self, path: Path) -> tuple[int, bool]:
        """(file descriptor, writable): read-write where we may, else read-only (another user's file)."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:
            try:
                return os.open(path, os.O_RDONLY), False
            except OSError as exc:
                raise SegbenchError(f"GPU lock file {path}: cannot open it ({exc.strerror}); set SEGBENCH_LOCK_DIR to "
                                    "a folder every job on this machine can write") from None
        with contextlib.suppress(PermissionError):  # ours: every user may write it (the umask may have said not)
            os.fchmod(fd, 0o666)
        return fd, True

    def try_acquire(self, index: int) -> bool:
        """Take the lock of device ``index`` if it is free now (never waits); True when taken."""
        import fcntl

        fd, writable = self._open(self.path(index))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return False
            raise
        if writable:
            record = json.dumps(holder()).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
        self.index, self._fd, self._writable = index, fd, writable
        return True

    def held_by(self, index: int) -> str | None:
        """Who holds device ``index``'s lease, as its lock file says, or None when it is free (probed with a shared
        lock, never waiting)."""
        import fcntl

        try:
            fd = os.open(self.path(index), os.O_RDONLY)
        except OSError:
            return None  # no lock file: never leased
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        except OSError:
            return describe_holder(os.pread(fd, 4096, 0).decode(errors="replace"))
        finally:
            os.close(fd)

    def holders(self) -> dict[int, str]:
        """Who holds each leased candidate device."""
        return {i: who for i in self.candidates if (who := self.held_by(i))}

    def acquire(self) -> int:
        _shared_directory(self.directory)
        started = time.monotonic()
        reported = None
        while True:
            for index in self.candidates:
                if self.try_acquire(index):
                    log.info("leased GPU cuda:%d (%s)", index, self.keys[index])
                    return index
            waited = time.monotonic() - started
            if waited > self.timeout:
                raise TimeoutError(f"no free GPU among {[self.keys[i] for i in self.candidates]} after "
                                   f"{waited:.0f} s (SEGBENCH_GPU_WAIT; locks in {self.directory})")
            if reported is None or time.monotonic() - reported >= REPORT:
                held = "; ".join(f"cuda:{i} by {who}" for i, who in self.holders().items())
                log.info("waiting for a free GPU: all %d leased (%s; locks in %s); %.0f s so far",
                         len(self.candidates), held, self.directory, waited)
                reported = time.monotonic()
            time.sleep(self.poll)

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            if self._writable:
                os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd, self.index = None, None

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def parse(requested: str | None) -> str:
    """``requested`` normalised: auto, cpu, cuda or cuda:<k>.

    Raises:
        SegbenchError: a device name segbench does not know.
    """
    requested = (requested or "auto").lower()
    if requested not in ("auto", "cpu", "cuda") and not (requested.startswith("cuda:") and requested[5:].isdigit()):
        raise SegbenchError(f"device {requested!r}: use auto, cpu, cuda or cuda:<k>")
    return requested


def check(requested: str | None = None) -> str:
    """``parse`` and ``gpu_problem`` at once, before anything heavy: the job stops here rather than run on the CPU.

    Raises:
        SegbenchError: a bad name, or GPUs assigned (or asked for) that torch cannot see.
    """
    requested = parse(requested)
    problem = gpu_problem(requested)
    if problem:
        raise SegbenchError(problem)
    return requested


@contextlib.contextmanager
def device(requested: str | None = None) -> Iterator[torch.device]:
    """The device for the life of the block, leased if it is a GPU. ``requested``: None or "auto" (a GPU when there
    is one, else the CPU), "cpu", "cuda" (any GPU) or "cuda:<k>" (that one). Inside an allocation with several GPUs,
    jobs lease among the allocated (visible) ones. A GPU becomes the current device (``torch.cuda.set_device``), so
    nothing opens a context on another.

    Raises:
        SegbenchError: a GPU asked for or assigned where torch sees none, or a device name segbench does not know.
    """
    requested = check(requested)
    if requested == "cpu" or not torch.cuda.is_available():
        yield torch.device("cpu")
        return
    count = torch.cuda.device_count()
    wanted = int(requested[5:]) if requested.startswith("cuda:") else None
    if wanted is not None and wanted >= count:
        raise SegbenchError(f"device {requested}: this job sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    with Lease(device_keys(), None if wanted is None else [wanted]) as lease:
        chosen = torch.device("cuda", lease.index)
        torch.cuda.set_device(chosen)
        yield chosen


@contextlib.contextmanager
def hold(chosen: torch.device) -> Iterator[torch.device]:
    """Lease ``chosen`` again for the block (a GPU whose models are loaded, between two bursts of work, as serve's
    requests are); the CPU needs no lease."""
    if chosen.type != "cuda":
        yield chosen
        return
    with device(f"cuda:{chosen.index or 0}") as again:
        yield again
