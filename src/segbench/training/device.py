"""Where training runs: the CPU, or a leased CUDA device with mixed precision."""

from __future__ import annotations

import contextlib
import resource
from dataclasses import dataclass

import torch

from segbench.training.lease import DeviceLease, visible_devices


@contextlib.contextmanager
def leased_device():
    """The CPU, or a CUDA device leased for the life of the block."""
    if not torch.cuda.is_available():
        yield torch.device("cpu")
        return
    with DeviceLease(visible_devices(torch.cuda.device_count())) as lease:
        yield torch.device("cuda", lease.index)


@dataclass(frozen=True)
class Accelerator:
    """Per-device settings: autocast dtype, memory format, loader workers."""

    device: torch.device
    amp_dtype: torch.dtype | None = None
    memory_format: torch.memory_format = torch.contiguous_format
    workers: int = 0

    @classmethod
    def for_device(cls, device: torch.device, recipe: dict, threads: int) -> "Accelerator":
        if device.type != "cuda":  # CPU: the cores compute; loader workers would only compete
            return cls(device)
        torch.backends.cudnn.benchmark = True
        amp = None
        if recipe["amp"]:
            amp = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return cls(device, amp, torch.channels_last if recipe["channels_last"] else torch.contiguous_format,
                   max(0, threads - 1))

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None)

    def images(self, batch: dict) -> torch.Tensor:
        return batch["image"].to(self.device, non_blocking=True, memory_format=self.memory_format)

    def reset_peak_memory(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak_memory_mb(self) -> float:
        """Peak GPU memory since the last reset, or the process's peak resident memory on CPU."""
        if self.cuda:
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
