"""MultiResUNet (Ibtehaz & Rahman, 2020, "MultiResUNet: Rethinking the U-Net architecture for
multimodal biomedical image segmentation", Neural Networks 121, arXiv:1902.04049), and the
paper's ablations: U-Net + ResPath and U-Net + MultiRes blocks.
"""

from __future__ import annotations

import torch
from torch import nn

from segbench.models.base import SegmentationModel
from segbench.models.blocks import DoubleConv, conv_bn_relu, encode
from segbench.models.unet import widths

ALPHA = 1.67  # W = alpha * U: the paper's width matching its U-Net's parameter count


def multires_split(u: int, alpha: float = ALPHA) -> tuple[int, int, int]:
    """Filters of the three chained 3x3 convs: int(0.167 W), int(0.333 W), int(0.5 W) with W = alpha * U."""
    w = alpha * u
    return int(w * 0.167), int(w * 0.333), int(w * 0.5)


class MultiResBlock(nn.Module):
    """Three chained 3x3 convs (a factorised 3x3 / 5x5 / 7x7), concatenated, plus a 1x1 shortcut.

    Shape: (N, C_in, H, W) -> (N, sum(multires_split(U)), H, W).
    """

    def __init__(self, in_channels: int, u: int):
        super().__init__()
        a, b, c = multires_split(u)
        self.out_channels = a + b + c
        self.convs = nn.ModuleList([conv_bn_relu(in_channels, a), conv_bn_relu(a, b), conv_bn_relu(b, c)])
        self.shortcut = conv_bn_relu(in_channels, self.out_channels, kernel=1, relu=False)
        self.norm = nn.BatchNorm2d(self.out_channels)
        self.out = nn.Sequential(nn.ReLU(inplace=True), nn.BatchNorm2d(self.out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, h = [], x
        for conv in self.convs:
            h = conv(h)
            features.append(h)
        return self.out(self.norm(torch.cat(features, dim=1)) + self.shortcut(x))


class ResPath(nn.Module):
    """``length`` residual units (3x3 conv + 1x1 shortcut, added, ReLU, BN) on a skip connection.

    Shape: (N, C_in, H, W) -> (N, C_out, H, W); the paper's C_out is the level's U.
    """

    def __init__(self, in_channels: int, out_channels: int, length: int):
        super().__init__()
        self.units = nn.ModuleList([nn.ModuleDict({
            "conv": conv_bn_relu(c, out_channels),
            "shortcut": conv_bn_relu(c, out_channels, kernel=1, relu=False),
            "out": nn.Sequential(nn.ReLU(inplace=True), nn.BatchNorm2d(out_channels)),
        }) for c in [in_channels] + [out_channels] * (length - 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.units:
            x = unit["out"](unit["conv"](x) + unit["shortcut"](x))
        return x


class MultiResUNet(SegmentationModel):
    """U-Net whose blocks are MultiRes blocks and whose skips are ResPaths of length 4, 3, 2, 1.

    ``multires_blocks`` / ``res_paths`` switch either part off for the paper's ablations
    (double convs of U filters; plain skips). Shape: (N, C_in, H, W) -> logits (N, classes, H, W);
    H, W divisible by 2**depth.

    Example:
        >>> MultiResUNet(1, 1, base_channels=8)(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 1, 32, 32])
    """

    def __init__(self, in_channels: int = 1, classes: int = 1, base_channels: int = 32, depth: int = 4,
                 multires_blocks: bool = True, res_paths: bool = True):
        super().__init__()
        us = widths(base_channels, depth)  # U = 32, 64, 128, 256, 512
        self.size_multiple = 2 ** depth

        def block(c_in: int, u: int) -> nn.Module:
            return MultiResBlock(c_in, u) if multires_blocks else DoubleConv(c_in, u)

        def width(u: int) -> int:
            return sum(multires_split(u)) if multires_blocks else u

        self.encoder = nn.ModuleList()
        c = in_channels
        for u in us:
            self.encoder.append(block(c, u))
            c = width(u)
        self.pool = nn.MaxPool2d(2)
        self.paths = nn.ModuleList([ResPath(width(u), u, depth - i) if res_paths else nn.Identity()
                                    for i, u in enumerate(us[:-1])])
        self.up, self.decoder = nn.ModuleList(), nn.ModuleList()
        for u in reversed(us[:-1]):
            self.up.append(nn.ConvTranspose2d(c, u, 2, stride=2))
            self.decoder.append(block(u + (u if res_paths else width(u)), u))
            c = width(u)
        self.head = nn.Conv2d(c, classes, 1)

    def segment(self, x: torch.Tensor) -> torch.Tensor:
        skips = encode(self.encoder, self.pool, x)
        x = skips.pop()
        for up, block, path in zip(self.up, self.decoder, reversed(self.paths)):
            x = block(torch.cat([path(skips.pop()), up(x)], dim=1))
        return self.head(x)
