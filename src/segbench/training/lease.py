"""A lease on a free GPU: one lock file per visible device.

Snakemake only counts GPUs (``resources: gpu=1``), it never assigns one, so each train
job takes the first device whose lock it can hold. ``snakemake --resources gpu=N`` then
runs N trainings at once, each on its own GPU. The lock is held until the process ends.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)


def lock_dir() -> Path:
    """Machine-wide: every project on the machine shares the GPUs (override: SEGBENCH_LOCK_DIR)."""
    return Path(os.environ.get("SEGBENCH_LOCK_DIR", Path(tempfile.gettempdir()) / "segbench-gpu-locks"))


def visible_devices(count: int) -> list[str]:
    """Physical ids of the ``count`` visible devices, in CUDA order (honours CUDA_VISIBLE_DEVICES)."""
    listed = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    return listed[:count] if len(listed) >= count else [str(i) for i in range(count)]


class DeviceLease:
    """Hold the lock of one free device; ``index`` is its position among the visible devices."""

    def __init__(self, devices: list[str], directory: Path | None = None, poll: float = 5.0,
                 timeout: float | None = None):
        self.devices, self.directory, self.poll, self.timeout = devices, directory or lock_dir(), poll, timeout
        self.index: int | None = None
        self._lock: FileLock | None = None

    def acquire(self) -> int:
        self.directory.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        while True:
            for index, device in enumerate(self.devices):
                lock = FileLock(self.directory / f"gpu-{device}.lock")
                try:
                    lock.acquire(timeout=0)
                except Timeout:
                    continue
                self.index, self._lock = index, lock
                log.info("leased GPU %s (cuda:%d)", device, index)
                return index
            if self.timeout is not None and time.monotonic() - started > self.timeout:
                raise TimeoutError(f"no free GPU among {self.devices} after {self.timeout:.0f} s")
            time.sleep(self.poll)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock, self.index = None, None

    def __enter__(self) -> "DeviceLease":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
