"""U-Net (Ronneberger et al., 2015, arXiv:1505.04597) with same padding, and stacked U-Nets.

The upsampling step is a choice, as the segmentation slides compare them: learned
transposed conv (the paper's "up-convolution"), bilinear or nearest interpolation, or
max-unpooling that puts values back where the encoder's max-pooling found them.
"""

from __future__ import annotations

import torch
from torch import nn

from segbench.models.base import SegmentationModel
from segbench.models.blocks import DoubleConv, Upsample


def widths(base_channels: int, depth: int) -> list[int]:
    """Filters per level, doubling with depth: 64, 128, 256, 512, 1024 for the paper."""
    return [base_channels * 2 ** i for i in range(depth + 1)]


class UNet(SegmentationModel):
    """Contracting path of double 3x3 convs and 2x2 max-pools, expanding path with skip concatenation.

    Shape: (N, in_channels, H, W) -> logits (N, classes, H, W); H, W divisible by 2**depth.

    Example:
        >>> UNet(1, 2, base_channels=8, upsampling="max_unpool")(torch.zeros(1, 1, 64, 64)).shape
        torch.Size([1, 2, 64, 64])
    """

    def __init__(self, in_channels: int = 1, classes: int = 1, base_channels: int = 64, depth: int = 4,
                 upsampling: str = "transposed", dropout: float = 0.0):
        super().__init__()
        w = widths(base_channels, depth)
        self.size_multiple = 2 ** depth
        self.unpool = upsampling == "max_unpool"
        self.encoder = nn.ModuleList([DoubleConv(a, b) for a, b in zip([in_channels] + w[:-2], w[:-1])])
        self.pool = nn.MaxPool2d(2, return_indices=self.unpool)
        self.bottleneck = DoubleConv(w[-2], w[-1], dropout)
        # every mode projects the deeper level's b channels to the skip's a, so the concatenation has 2a
        self.up = nn.ModuleList([Upsample(b, a, upsampling) for a, b in zip(w, w[1:])][::-1])
        self.decoder = nn.ModuleList([DoubleConv(2 * a, a) for a in w[:-1]][::-1])
        self.head = nn.Conv2d(w[0], classes, 1)

    def segment(self, x: torch.Tensor) -> torch.Tensor:
        skips, indices = [], []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = self.pool(x)
            if self.unpool:
                x, idx = x
                indices.append(idx)
        x = self.bottleneck(x)
        for up, block in zip(self.up, self.decoder):
            x = up(x, indices.pop() if self.unpool else None)
            x = block(torch.cat([skips.pop(), x], dim=1))
        return self.head(x)


class StackedUNet(SegmentationModel):
    """Two U-Nets in sequence (stacked hourglass-style, Newell et al., 2016): the second sees the
    image and the first's logits, and the first is supervised too (intermediate supervision).

    Shape: (N, C_in, H, W) -> logits (N, classes, H, W); in training [second, first].
    """

    def __init__(self, in_channels: int = 1, classes: int = 1, base_channels: int = 32, depth: int = 4,
                 upsampling: str = "transposed"):
        super().__init__()
        self.size_multiple = 2 ** depth
        self.first = UNet(in_channels, classes, base_channels, depth, upsampling)
        self.second = UNet(in_channels + classes, classes, base_channels, depth, upsampling)

    def segment(self, x: torch.Tensor) -> list[torch.Tensor]:
        first = self.first.segment(x)
        return [self.second.segment(torch.cat([x, first], dim=1)), first]
