"""Pretend CUDA devices, for GPU logic on a machine without one: ``install(uuids, capability)`` makes torch.cuda
report one device per UUID. Nothing runs on them: only the code that chooses, leases and configures devices."""

from __future__ import annotations

from types import SimpleNamespace


def install(monkeypatch, uuids: list[str], capability: tuple[int, int] = (8, 0)) -> dict:
    """Patch torch.cuda with ``monkeypatch`` (pytest's, or any object with ``setattr``); returns a record of the
    calls that touch device state (set_device, RNG states)."""
    import torch

    calls: dict = {"set_device": [], "set_rng_state": [], "get_rng_state": []}
    patches = {
        "is_available": lambda: True,
        "device_count": lambda: len(uuids),
        "get_device_properties": lambda i: SimpleNamespace(uuid=uuids[_index(i)], name=f"Fake GPU {_index(i)}",
                                                          total_memory=16 * 2**30, major=capability[0],
                                                          minor=capability[1]),
        "get_device_capability": lambda device=None: capability,
        "set_device": lambda device: calls["set_device"].append(str(device)),
        "get_rng_state": lambda device="cuda": calls["get_rng_state"].append(_index(device)) or torch.zeros(
            16, dtype=torch.uint8),
        "set_rng_state": lambda state, device="cuda": _set_rng(calls, uuids, state, device),
    }
    for name, fake in patches.items():
        monkeypatch.setattr(torch.cuda, name, fake)
    return calls


def _index(device) -> int:
    import torch

    return device if isinstance(device, int) else (torch.device(device).index or 0)


def _set_rng(calls: dict, uuids: list[str], state, device) -> None:
    index = _index(device)
    if index >= len(uuids):  # what real CUDA does with a device that is not there
        raise IndexError(f"cuda:{index} is not among the {len(uuids)} visible devices")
    calls["set_rng_state"].append(index)


class Setter:
    """``setattr`` for a subprocess, where there is no pytest monkeypatch."""

    @staticmethod
    def setattr(target, name, value):
        setattr(target, name, value)


def fake_job(uuids: str, hold: float | str, out: str) -> None:
    """A subprocess job (``python -c``): with pretend devices ``uuids`` (comma-separated), take a device through
    ``segbench.devices.device()``, write "<device> <monotonic time>" to ``out``, hold it ``hold`` seconds, or, when
    ``hold`` is a path, until that file exists (at most a minute)."""
    import logging
    import time
    from pathlib import Path

    from segbench import devices

    logging.basicConfig(level=logging.INFO)
    install(Setter, uuids.split(","))
    with devices.device() as chosen:
        Path(out).write_text(f"{chosen} {time.monotonic()}")
        if isinstance(hold, str):
            deadline = time.monotonic() + 60
            while not Path(hold).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        else:
            time.sleep(hold)
