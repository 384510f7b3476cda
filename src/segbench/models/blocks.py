"""Layers shared by the from-the-paper models."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

UPSAMPLING = ("transposed", "bilinear", "nearest", "max_unpool")


def encode(blocks: nn.ModuleList, pool: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """A contracting path: each block after pooling the previous one's output (not before the first).

    Returns every level's features, finest first.
    """
    features = []
    for i, block in enumerate(blocks):
        x = block(x if i == 0 else pool(x))
        features.append(x)
    return features


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int = 3, relu: bool = True) -> nn.Sequential:
    """Same-padded conv -> BN (-> ReLU). Shape: (N, C_in, H, W) -> (N, C_out, H, W)."""
    layers = [nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
              nn.BatchNorm2d(out_channels)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


class DoubleConv(nn.Sequential):
    """(conv 3x3 -> BN -> ReLU) x 2, then optional dropout. Shape: (N, C_in, H, W) -> (N, C_out, H, W)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0):
        layers = [*conv_bn_relu(in_channels, out_channels), *conv_bn_relu(out_channels, out_channels)]
        if dropout:
            layers.append(nn.Dropout2d(dropout))
        super().__init__(*layers)


class AttentionGate(nn.Module):
    """Additive attention gate (Oktay et al., 2018): alpha = sigmoid(psi(ReLU(W_g g + W_x x))); returns x * alpha.

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


class Upsample(nn.Module):
    """x2 upsampling that also maps C_in -> C_out channels. Shape: (N, C_in, H, W) -> (N, C_out, 2H, 2W).

    ``transposed``: a learned 2x2 stride-2 transposed conv (U-Net's "up-convolution").
    ``bilinear`` / ``nearest``: fixed interpolation, then a 1x1 conv.
    ``max_unpool``: a 1x1 conv, then the values go back to the positions the encoder's 2x2
    max-pooling took them from (SegNet's unpooling; ``forward`` needs those ``indices``).
    """

    def __init__(self, in_channels: int, out_channels: int, mode: str = "transposed"):
        super().__init__()
        if mode not in UPSAMPLING:
            raise ValueError(f"upsampling must be one of {UPSAMPLING}, got {mode!r}")
        self.mode = mode
        if mode == "transposed":
            self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        else:
            self.project = nn.Conv2d(in_channels, out_channels, 1)
            self.unpool = nn.MaxUnpool2d(2) if mode == "max_unpool" else None

    def forward(self, x: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        if self.mode == "transposed":
            return self.up(x)
        if self.mode == "max_unpool":
            return self.unpool(self.project(x), indices)
        return self.project(F.interpolate(x, scale_factor=2, mode=self.mode))
