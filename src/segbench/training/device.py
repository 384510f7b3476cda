"""Per-device training settings: autocast dtype, memory format, loader workers."""

from __future__ import annotations

import resource
from dataclasses import dataclass

import torch


def amp_dtype(device: torch.device) -> torch.dtype:
    """bf16 where the device computes it natively (compute capability 8.0 and above: A100, RTX 30xx, H100),
    else fp16 with a grad scaler (T4, RTX 20xx; the pinned torch has no kernels for a V100).
    ``torch.cuda.is_bf16_supported`` would say yes on older cards too, where bf16 is emulated: slow, and
    unsupported by some cuDNN kernels."""
    return torch.bfloat16 if torch.cuda.get_device_capability(device) >= (8, 0) else torch.float16


@dataclass(frozen=True)
class Accelerator:
    """Per-device settings: autocast dtype, memory format, loader workers."""

    device: torch.device
    amp_dtype: torch.dtype | None = None
    memory_format: torch.memory_format = torch.contiguous_format
    workers: int = 0

    @classmethod
    def for_device(cls, device: torch.device, recipe: dict) -> Accelerator:
        """``recipe``: params' train section. Loader workers: ``train.workers``, else threads - 1 on CUDA and
        none on the CPU (there the cores compute; workers would compete with them)."""
        workers = recipe.get("workers")
        if device.type != "cuda":
            return cls(device, workers=workers or 0)
        torch.backends.cudnn.benchmark = True
        return cls(device, amp_dtype(device) if recipe["amp"] else None,
                   torch.channels_last if recipe["channels_last"] else torch.contiguous_format,
                   max(0, recipe["threads"] - 1) if workers is None else workers)

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    @property
    def scorers(self) -> int:
        """Threads that score val images at their original size while a GPU predicts the next batches (the
        loader's workers, which idle then); none on the CPU, whose cores compute."""
        return self.workers if self.cuda else 0

    @property
    def precision(self) -> dict[str, str]:
        """What a resumed run must share with the killed one: the device type and the autocast dtype."""
        return {"device": self.device.type, "amp": str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype
                else "off"}

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
