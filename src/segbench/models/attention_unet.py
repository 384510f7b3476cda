"""Attention U-Net as the thesis's SegUNet describes it.

Oktay et al., 2018, "Attention U-Net: Learning Where to Look for the Pancreas"
(arXiv:1804.03999), in the thesis's configuration: filters 32-64-128-256-512, double
3x3 conv + BN + ReLU blocks, 2x2 max-pooling, dropout in the encoder, transposed-conv
upsampling and an additive attention gate on every skip connection.
"""

from __future__ import annotations

import torch
from torch import nn

from segbench.models.base import SegmentationModel
from segbench.models.blocks import AttentionGate, DoubleConv, encode


class UpBlock(nn.Module):
    """Transposed-conv upsampling, attention-gated skip, concatenation, double conv."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        self.gate = AttentionGate(out_channels, skip_channels, max(1, skip_channels // 2))
        self.conv = DoubleConv(out_channels + skip_channels, out_channels)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        g = self.up(x)
        return self.conv(torch.cat([self.gate(g, skip), g], dim=1))


class AttentionUNet(SegmentationModel):
    """Attention U-Net. Shape: (N, in_channels, H, W) -> logits (N, classes, H, W), H and W divisible by 16.

    Example:
        >>> AttentionUNet(1, 1, base_channels=8)(torch.zeros(2, 1, 64, 64)).shape
        torch.Size([2, 1, 64, 64])
    """

    def __init__(self, in_channels: int = 1, classes: int = 1, base_channels: int = 32, depth: int = 4,
                 dropout: float = 0.3):
        super().__init__()
        widths = [base_channels * 2 ** i for i in range(depth + 1)]  # 32, 64, 128, 256, 512
        self.encoder = nn.ModuleList([DoubleConv(in_channels, widths[0], dropout)] +
                                     [DoubleConv(a, b, dropout) for a, b in zip(widths, widths[1:])])
        self.pool = nn.MaxPool2d(2)
        self.decoder = nn.ModuleList([UpBlock(b, a, a) for a, b in reversed(list(zip(widths, widths[1:])))])
        self.head = nn.Conv2d(widths[0], classes, 1)
        self.size_multiple = 2 ** depth

    def segment(self, x: torch.Tensor) -> torch.Tensor:
        skips = encode(self.encoder, self.pool, x)
        x = skips.pop()
        for block in self.decoder:
            x = block(x, skips.pop())
        return self.head(x)
