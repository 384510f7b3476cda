"""UNet++ (Zhou et al., 2018, "UNet++: A Nested U-Net Architecture", arXiv:1807.10165).

Node X[i][j] (depth i, j-th along its skip) is a double conv over the concatenation of
X[i][0..j-1] and the upsampled X[i+1][j-1]: dense, nested skip pathways. Upsampling is
bilinear interpolation, not a learned transposed conv.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from segbench.models.base import SegmentationModel
from segbench.models.blocks import DoubleConv
from segbench.models.unet import widths


class UNetPlusPlus(SegmentationModel):
    """Shape: (N, in_channels, H, W) -> logits (N, classes, H, W); H, W divisible by 2**depth.

    With ``deep_supervision`` a 1x1 head sits on every top node X[0][1..depth]; training returns
    [X[0][depth], ..., X[0][1]] (all full size), inference the last, X[0][depth].

    Example:
        >>> UNetPlusPlus(1, 1, base_channels=4)(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 1, 32, 32])
    """

    def __init__(self, in_channels: int = 1, classes: int = 1, base_channels: int = 32, depth: int = 4,
                 deep_supervision: bool = False):
        super().__init__()
        w = widths(base_channels, depth)  # the paper's 32, 64, 128, 256, 512
        self.size_multiple, self.depth = 2 ** depth, depth
        self.pool = nn.MaxPool2d(2)
        self.nodes = nn.ModuleDict()
        for i in range(depth + 1):
            self.nodes[f"{i}_0"] = DoubleConv(in_channels if i == 0 else w[i - 1], w[i])
            for j in range(1, depth + 1 - i):
                self.nodes[f"{i}_{j}"] = DoubleConv(w[i] * j + w[i + 1], w[i])
        self.heads = nn.ModuleList([nn.Conv2d(w[0], classes, 1)
                                    for _ in range(depth if deep_supervision else 1)])

    def segment(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        grid: dict[tuple[int, int], torch.Tensor] = {}
        for i in range(self.depth + 1):
            grid[i, 0] = self.nodes[f"{i}_0"](x if i == 0 else self.pool(grid[i - 1, 0]))
            # once a new deepest node exists, fill the anti-diagonal it completes
            for j in range(1, i + 1):
                r = i - j
                up = F.interpolate(grid[r + 1, j - 1], scale_factor=2, mode="bilinear")
                grid[r, j] = self.nodes[f"{r}_{j}"](torch.cat([grid[r, k] for k in range(j)] + [up], dim=1))
        if len(self.heads) == 1:
            return self.heads[0](grid[0, self.depth])
        return [head(grid[0, j]) for head, j in zip(self.heads, range(self.depth, 0, -1))]
