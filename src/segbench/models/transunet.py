"""A compact TransUNet (Chen et al., 2021, "TransUNet: Transformers Make Strong Encoders for
Medical Image Segmentation", arXiv:2102.04306).

CNN encoder down to 1/16, a ViT over the 1/16 feature map (one token per position, patch
size 1 as in the paper's hybrid), reshaped back and decoded by the cascaded upsampler
(CUP): x2 upsampling, concatenation with the CNN skip, two 3x3 convs, four times. The
paper's encoder is a ResNet-50 with ViT-B/16 (12 layers, 768 wide); this one keeps the
design at a size a CPU can train.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from segbench.models.base import SegmentationModel
from segbench.models.blocks import DoubleConv, conv_bn_relu, encode
from segbench.models.unet import widths


class ViTBottleneck(nn.Module):
    """Linear token embedding + learned position embedding + pre-norm transformer layers.

    Shape: (N, C, h, w) -> (N, hidden, h, w). The position embedding is learned for a
    ``grid`` x ``grid`` map and interpolated bicubically to other sizes (as timm's ViTs do).
    """

    def __init__(self, channels: int, hidden: int, layers: int, heads: int, grid: int, dropout: float = 0.1):
        super().__init__()
        self.embed = nn.Conv2d(channels, hidden, 1)
        self.position = nn.Parameter(torch.zeros(1, hidden, grid, grid))
        nn.init.trunc_normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(hidden, heads, 4 * hidden, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.transformer = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        n, c, h, w = x.shape
        position = self.position
        if position.shape[-2:] != (h, w):
            position = F.interpolate(position, size=(h, w), mode="bicubic", align_corners=False)
        tokens = (x + position).flatten(2).transpose(1, 2)  # (N, h*w, hidden)
        tokens = self.norm(self.transformer(tokens))
        return tokens.transpose(1, 2).reshape(n, c, h, w)


class TransUNet(SegmentationModel):
    """Shape: (N, in_channels, H, W) -> logits (N, classes, H, W); H, W divisible by 16.

    Example:
        >>> TransUNet(1, 1, base_channels=4, hidden=16, layers=1, heads=2)(torch.zeros(1, 1, 32, 32)).shape
        torch.Size([1, 1, 32, 32])
    """

    size_multiple = 16

    def __init__(self, in_channels: int = 1, classes: int = 1, base_channels: int = 32, hidden: int = 256,
                 layers: int = 4, heads: int = 8, img_size: int = 256):
        super().__init__()
        w = widths(base_channels, 3)  # skips at 1, 1/2, 1/4, 1/8
        self.encoder = nn.ModuleList([DoubleConv(a, b) for a, b in zip([in_channels] + w[:-1], w)])
        self.pool = nn.MaxPool2d(2)
        self.vit = ViTBottleneck(w[-1], hidden, layers, heads, grid=img_size // 16)
        self.neck = conv_bn_relu(hidden, w[-1])  # the paper's conv after reshaping the hidden features
        self.decoder = nn.ModuleList([DoubleConv(a + b, a) for a, b in zip(w, w[1:] + w[-1:])][::-1])
        self.head = nn.Conv2d(w[0], classes, 1)

    def segment(self, x: torch.Tensor) -> torch.Tensor:
        skips = encode(self.encoder, self.pool, x)
        x = self.neck(self.vit(self.pool(skips[-1])))
        for block in self.decoder:
            x = block(torch.cat([skips.pop(), F.interpolate(x, scale_factor=2, mode="bilinear")], dim=1))
        return self.head(x)
