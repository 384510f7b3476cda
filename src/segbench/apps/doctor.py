"""`segbench doctor`: check every GPU this job sees before a sweep uses it.

Each visible GPU is leased in turn (as a train job would lease it) and one short training step with
mixed precision runs on it; the device, compute capability, AMP dtype, step time and peak memory are printed.
On a machine without CUDA it says so and succeeds: segbench trains on the CPU there.
"""

from __future__ import annotations

import time

import torch

from segbench import devices
from segbench.training.device import Accelerator

STEP_ARCH = {"family": "attention_unet", "base_channels": 8}


def training_step(device: torch.device) -> dict:
    """One forward, backward and optimiser step of a small Attention U-Net on a 2 x 1 x 128 x 128 batch,
    with the AMP a train job would use on ``device``."""
    from segbench.models import build_model

    acc = Accelerator.for_device(device, {"amp": True, "channels_last": True, "threads": 1, "workers": 0})
    net = build_model(STEP_ARCH, 1, 2).to(device, memory_format=acc.memory_format)
    optimizer = torch.optim.Adam(net.parameters())
    scaler = torch.amp.GradScaler(device.type, enabled=acc.amp_dtype == torch.float16)
    images = torch.randn(2, 1, 128, 128, device=device)
    target = (images > 0).float()
    acc.reset_peak_memory()
    start = time.perf_counter()
    with acc.autocast():
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(images).float(), target)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    if acc.cuda:
        torch.cuda.synchronize(device)
    return {"step_ms": (time.perf_counter() - start) * 1000, "loss_finite": bool(torch.isfinite(loss)),
            "amp": acc.precision["amp"], "peak_memory_mb": acc.peak_memory_mb()}


def doctor() -> int:
    """Print what every visible GPU can do; the exit status: 0 when each step ran with a finite loss."""
    print(f"torch {torch.__version__}, CUDA {torch.version.cuda or 'not built in'}")
    if not torch.cuda.is_available():
        print("No CUDA device visible: segbench trains, evaluates and predicts on the CPU here.")
        return 0
    scheduler = devices.assigned_by()
    print(f"{torch.cuda.device_count()} GPU(s) visible; "
          + (f"assigned by {scheduler}: used as given, no lease" if scheduler else
             f"leased through lock files in {devices.lock_dir()}"))
    failures = 0
    for index in range(torch.cuda.device_count()):
        with devices.device(f"cuda:{index}") as device:
            props = torch.cuda.get_device_properties(device)
            step = training_step(device)
            failures += not step["loss_finite"]
            print(f"  {device}: {props.name}, compute capability {props.major}.{props.minor}, "
                  f"{props.total_memory / 2**30:.1f} GB; AMP {step['amp']}; one step {step['step_ms']:.0f} ms, "
                  f"peak {step['peak_memory_mb']:.0f} MB; loss {'finite' if step['loss_finite'] else 'NOT finite'}")
    return 1 if failures else 0
