"""UNet 3+ (Huang et al., 2020, "UNet 3+: A Full-Scale Connected UNet for Medical Image
Segmentation", ICASSP, arXiv:2004.08790).

Every decoder stage gathers all scales: the shallower encoder maps max-pooled down, the
same-level encoder map, and the deeper decoder maps (and the bottom encoder map) upsampled
bilinearly, each through a 3x3 conv to ``cat_channels``, then one conv over the concatenation.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from segbench.models.base import SegmentationModel
from segbench.models.blocks import DoubleConv, conv_bn_relu, encode
from segbench.models.unet import widths


def resize(x: torch.Tensor, level_from: int, level_to: int) -> torch.Tensor:
    """Max-pool down or upsample bilinearly by 2**|level_from - level_to|."""
    if level_from < level_to:
        return F.max_pool2d(x, 2 ** (level_to - level_from))
    if level_from > level_to:
        return F.interpolate(x, scale_factor=2 ** (level_from - level_to), mode="bilinear")
    return x


class UNet3Plus(SegmentationModel):
    """Shape: (N, in_channels, H, W) -> logits (N, classes, H, W); H, W divisible by 2**depth.

    With ``deep_supervision`` every decoder stage and the bottom encoder stage get a 3x3 head,
    upsampled to full size; training returns them finest first.

    Example:
        >>> UNet3Plus(1, 1, base_channels=4)(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 1, 32, 32])
    """

    def __init__(self, in_channels: int = 1, classes: int = 1, base_channels: int = 64, depth: int = 4,
                 deep_supervision: bool = False):
        super().__init__()
        w = widths(base_channels, depth)  # 64 ... 1024
        levels = depth + 1
        self.size_multiple, self.levels = 2 ** depth, levels
        cat = base_channels  # the paper's CatChannels = 64
        fused = cat * levels  # 320
        self.pool = nn.MaxPool2d(2)
        self.encoder = nn.ModuleList([DoubleConv(a, b) for a, b in zip([in_channels] + w[:-1], w)])
        # decoder stage d (0 = finest) reads encoder levels 0..d and decoder levels d+1..depth-1,
        # plus the bottom encoder level; deeper decoder maps are `fused` channels wide
        self.links = nn.ModuleDict()
        for d in range(depth):
            for src in range(levels):
                c_in = w[src] if src <= d or src == depth else fused
                self.links[f"{src}_{d}"] = conv_bn_relu(c_in, cat)
        self.fuse = nn.ModuleList([conv_bn_relu(fused, fused) for _ in range(depth)])
        n_heads = levels if deep_supervision else 1
        self.heads = nn.ModuleList([nn.Conv2d(fused if i < depth else w[-1], classes, 3, padding=1)
                                    for i in range(n_heads)])

    def segment(self, x: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        enc = encode(self.encoder, self.pool, x)
        depth = self.levels - 1
        dec: dict[int, torch.Tensor] = {depth: enc[depth]}
        for d in reversed(range(depth)):
            parts = [self.links[f"{src}_{d}"](resize(enc[src] if src <= d else dec[src], src, d))
                     for src in range(self.levels)]
            dec[d] = self.fuse[d](torch.cat(parts, dim=1))
        if len(self.heads) == 1:
            return self.heads[0](dec[0])
        return [resize(head(dec[i]), i, 0) for i, head in enumerate(self.heads)]
