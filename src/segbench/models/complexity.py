"""Efficiency figures for the report: parameters and FLOPs at a given input size."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode


def complexity(model: torch.nn.Module, in_channels: int, size: int) -> dict:
    """Parameter count and GFLOPs of one forward pass on a (1, in_channels, size, size) input.

    FLOPs as torch.utils.flop_counter counts them: a multiply-add is 2.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, in_channels, size, size, device=device))
    model.train(was_training)
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "gflops": counter.get_total_flops() / 1e9}
