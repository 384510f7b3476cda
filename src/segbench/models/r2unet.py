"""R2U-Net and R2AttU-Net (Alom et al., 2018, "Recurrent Residual Convolutional Neural Network
based on U-Net (R2U-Net)", arXiv:1802.06955).

Each double conv of U-Net becomes a recurrent residual block: two recurrent conv layers,
each unrolled for ``t`` steps (x_t = f(x + x_{t-1})), plus a residual 1x1 shortcut.
R2AttU-Net adds Oktay's attention gate on every skip.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from segbench.models.base import SegmentationModel
from segbench.models.blocks import AttentionGate, conv_bn_relu, encode
from segbench.models.unet import widths


class RecurrentConv(nn.Module):
    """One conv-BN-ReLU applied t+1 times with shared weights: h_0 = f(x), h_k = f(x + h_{k-1})."""

    def __init__(self, channels: int, t: int = 2):
        super().__init__()
        self.t, self.conv = t, conv_bn_relu(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        for _ in range(self.t):
            h = self.conv(x + h)
        return h


class RRCNNBlock(nn.Module):
    """1x1 conv to C_out, then two recurrent convs, added back. Shape: (N, C_in, H, W) -> (N, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, t: int = 2):
        super().__init__()
        self.project = nn.Conv2d(in_channels, out_channels, 1)
        self.recurrent = nn.Sequential(RecurrentConv(out_channels, t), RecurrentConv(out_channels, t))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(x)
        return x + self.recurrent(x)


class R2UNet(SegmentationModel):
    """Shape: (N, in_channels, H, W) -> logits (N, classes, H, W); H, W divisible by 2**depth.

    Example:
        >>> R2UNet(1, 1, base_channels=4, attention=True)(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 1, 32, 32])
    """

    def __init__(self, in_channels: int = 1, classes: int = 1, base_channels: int = 64, depth: int = 4,
                 t: int = 2, attention: bool = False):
        super().__init__()
        w = widths(base_channels, depth)
        self.size_multiple = 2 ** depth
        self.pool = nn.MaxPool2d(2)
        self.encoder = nn.ModuleList([RRCNNBlock(a, b, t) for a, b in zip([in_channels] + w[:-1], w)])
        # up-conv of the reference code: x2 upsampling, then conv-BN-ReLU halving the channels
        self.up = nn.ModuleList([conv_bn_relu(b, a) for a, b in zip(w, w[1:])][::-1])
        self.gates = nn.ModuleList([AttentionGate(a, a, max(1, a // 2)) for a in w[:-1]][::-1]) if attention \
            else None
        self.decoder = nn.ModuleList([RRCNNBlock(2 * a, a, t) for a in w[:-1]][::-1])
        self.head = nn.Conv2d(w[0], classes, 1)

    def segment(self, x: torch.Tensor) -> torch.Tensor:
        skips = encode(self.encoder, self.pool, x)
        x = skips.pop()
        for k, (up, block) in enumerate(zip(self.up, self.decoder)):
            x = up(F.interpolate(x, scale_factor=2, mode="nearest"))
            skip = skips.pop()
            if self.gates is not None:
                skip = self.gates[k](x, skip)
            x = block(torch.cat([skip, x], dim=1))
        return self.head(x)
