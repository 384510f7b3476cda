"""Attention U-Net as the thesis's SegUNet describes it.

Oktay et al., 2018, "Attention U-Net: Learning Where to Look for the Pancreas"
(arXiv:1804.03999), in the thesis's configuration: filters 32-64-128-256-512, double
3x3 conv + BN + ReLU blocks, 2x2 max-pooling, dropout in the encoder, transposed-conv
upsampling and an additive attention gate on every skip connection.
"""

from __future__ import annotations

import torch
from torch import nn

from segbench.models.registry import register_model


class DoubleConv(nn.Sequential):
    """(conv 3x3 -> BN -> ReLU) x 2, then optional dropout. Shape: (N, C_in, H, W) -> (N, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0):
        layers = []
        for c_in in (in_channels, out_channels):
            layers += [nn.Conv2d(c_in, out_channels, 3, padding=1, bias=False),
                       nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
        if dropout:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class AttentionGate(nn.Module):
    """Additive attention gate: alpha = sigmoid(psi(ReLU(W_g g + W_x x))); returns x * alpha.

    Shape: g (N, C_g, H, W), x (N, C_x, H, W) -> (N, C_x, H, W); alpha is (N, 1, H, W) in [0, 1].
    """

    def __init__(self, gate_channels: int, skip_channels: int, inter_channels: int):
        super().__init__()
        self.w_g = nn.Conv2d(gate_channels, inter_channels, 1)
        self.w_x = nn.Conv2d(skip_channels, inter_channels, 1)
        self.psi = nn.Conv2d(inter_channels, 1, 1)

    def coefficients(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.psi(torch.relu(self.w_g(g) + self.w_x(x))))

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x * self.coefficients(g, x)


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


class AttentionUNet(nn.Module):
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
        self.multiple = 2 ** depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"AttentionUNet: input height and width must be divisible by {self.multiple}, "
                             f"got {h}x{w}")
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for block in self.decoder:
            x = block(x, skips.pop())
        return self.head(x)


@register_model("attention_unet")
def attention_unet(in_channels: int, classes: int, **cfg) -> nn.Module:
    return AttentionUNet(in_channels, classes, **cfg)
