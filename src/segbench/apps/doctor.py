"""`segbench doctor`: the first command on a new machine. What this machine can run, in seconds, without waiting.

It prints torch's build and the NVIDIA driver, every visible GPU (name, compute capability, the AMP dtype a train job
would use, free and total memory, who holds its lease), the scheduler's variables, the GPU lock folder (path, owner,
mode, writable), /dev/shm and the optional tools with what each enables. With ``--smoke``, one mixed-precision
training step on each GPU that is free now (a busy one is skipped, never waited for). The exit status is 0 when the
machine can run the sweep as configured (``train.device``), else 1, after a line per problem: GPUs assigned that
torch cannot see, a lock folder no job can write, a smoke step that failed.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import torch

from segbench import devices
from segbench.training.device import Accelerator, amp_dtype

STEP_ARCH = {"family": "attention_unet", "base_channels": 8}
TOOLS = {  # command -> what it enables
    "sbatch": "the Slurm profile (snakemake --profile workflow/profiles/slurm) and its test",
    "chromium": "the tests that open the report and Bone Detect in a browser",
    "pdflatex": "the test that typesets comparison.tex",
    "soffice": "the test that opens the workbook in LibreOffice",
}


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


def driver_version() -> str:
    """The NVIDIA driver's version (nvidia-smi, else /proc), or why it is unknown."""
    if shutil.which("nvidia-smi"):
        done = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.split()[0]
    version = Path("/proc/driver/nvidia/version")
    if version.is_file():
        return version.read_text().split("Kernel Module")[-1].split()[0]
    return "none found (no nvidia-smi, no /proc/driver/nvidia)"


def lock_folder() -> tuple[str, bool]:
    """The GPU lock folder in words, and whether jobs can lease through it."""
    folder = devices.lock_dir()
    if folder.is_dir():
        info = folder.stat()
        try:
            owner = pwd.getpwuid(info.st_uid).pw_name
        except KeyError:
            owner = str(info.st_uid)
        writable = os.access(folder, os.W_OK | os.X_OK)
        shared = "" if info.st_mode & 0o1777 == 0o1777 else ": not 1777, other users cannot lease"
        access = "writable" if writable else "NOT writable by this user"
        return f"{folder} (owner {owner}, mode {info.st_mode & 0o7777:o}{shared}; {access})", writable
    parent = next(p for p in folder.parents if p.exists())
    writable = os.access(parent, os.W_OK | os.X_OK)
    access = "the first job creates it" if writable else f"{parent} is NOT writable: no job can create it"
    return f"{folder} (not there yet; {access})", writable


def shm() -> str:
    try:
        stats = os.statvfs("/dev/shm")
    except OSError:
        return "none (loader workers pass batches through it: train with train.workers: 0)"
    size = stats.f_frsize * stats.f_blocks / 2**30
    small = " (small: loader workers may fail; raise it or set train.workers: 0)" if size < 1 else ""
    return f"{size:.1f} GB{small}"


def _requested() -> str:
    """train.device from params.yaml when there is one here, else auto."""
    from segbench import SegbenchError
    from segbench.config import load_params

    try:
        return load_params("params.yaml")["train"]["device"] if Path("params.yaml").is_file() else "auto"
    except SegbenchError:
        return "auto"


def doctor(smoke: bool = False) -> int:
    """Print what this machine can run; the exit status: 0 when it can run the sweep as configured."""
    problems = []
    requested = _requested()
    print(f"{devices.torch_build()}; NVIDIA driver: {driver_version()}")
    assigned = devices.assigned_gpus()
    print(f"scheduler: {devices.scheduler() or 'none'}; GPUs assigned: "
          + (", ".join(f"{k}={v}" for k, v in assigned.items()) or "none")
          + (f"; SLURM_CPUS_PER_TASK={os.environ['SLURM_CPUS_PER_TASK']}" if os.environ.get("SLURM_CPUS_PER_TASK")
             else ""))
    problem = devices.gpu_problem(requested)
    if problem:
        problems.append(problem)
    folder, writable = lock_folder()
    print(f"GPU lock folder: {folder}")
    print(f"/dev/shm: {shm()}")
    if not torch.cuda.is_available():
        print("No CUDA device visible: " + ("see the problem below." if problem else "segbench trains, evaluates and "
                                            f"predicts on the CPU here (train.device: {requested})."))
    else:
        if not writable:
            problems.append(f"the GPU lock folder cannot be used: {folder}; set SEGBENCH_LOCK_DIR")
        keys = devices.device_keys()
        holders = devices.Lease(keys).holders()
        print(f"{len(keys)} GPU(s) visible (train.device: {requested}):")
        for index, key in enumerate(keys):
            props = torch.cuda.get_device_properties(index)
            free, total = torch.cuda.mem_get_info(index)
            dtype = str(amp_dtype(torch.device("cuda", index))).removeprefix("torch.")
            held = holders.get(index, "free")
            print(f"  cuda:{index}: {props.name}, compute capability {props.major}.{props.minor}, AMP {dtype}, "
                  f"{free / 2**30:.1f} of {total / 2**30:.1f} GB free; lease: {held}")
            if smoke and writable:
                problems += _smoke(index, key)
    from segbench.baselines.catalog import BASELINES

    for name in BASELINES:
        for module in BASELINES.entry(name).requires:
            print(f"{module}: {'installed' if importlib.util.find_spec(module) else 'NOT installed'}: the {name} "
                  "baseline (sweep.baselines)")
    for command, use in TOOLS.items():
        print(f"{command}: {'found' if shutil.which(command) else 'not found'}: {use}")
    for line in problems:
        print(f"PROBLEM: {line}")
    print("This machine can run the sweep as configured." if not problems else
          f"{len(problems)} problem(s): the sweep cannot run as configured.")
    return 1 if problems else 0


def _smoke(index: int, key: str) -> list[str]:
    """One training step on ``cuda:index`` if it is free now (never waits); the problems it found."""
    lease = devices.Lease([key], timeout=0, poll=0)
    if not lease.try_acquire(0):
        print("    smoke: skipped, the GPU is leased by another job")
        return []
    try:
        device = torch.device("cuda", index)
        torch.cuda.set_device(device)
        step = training_step(device)
    finally:
        lease.release()
    print(f"    smoke: one step {step['step_ms']:.0f} ms, AMP {step['amp']}, peak {step['peak_memory_mb']:.0f} MB; "
          f"loss {'finite' if step['loss_finite'] else 'NOT finite'}")
    return [] if step["loss_finite"] else [f"cuda:{index}: the smoke step's loss is not finite"]
