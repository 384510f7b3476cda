"""nnU-Net's own networks (Isensee et al., 2021; ResEnc: "nnU-Net Revisited", MICCAI 2024) from
``dynamic-network-architectures`` (installed with nnunetv2), trained with segbench's recipe, so "nnU-Net's
network with our loss" is a pair like any other.

The defaults follow nnU-Net's 2D plans for a 512-px canvas: 32 features doubling to at most 512, 3x3 kernels,
stride 2 per stage, instance norm and leaky ReLU; ``ResidualEncoderUNet`` takes ResEnc M's residual blocks per
stage (1, 3, 4, 6, 6, 6, ...).
"""

from __future__ import annotations

import torch
from dynamic_network_architectures.architectures.unet import PlainConvUNet, ResidualEncoderUNet
from torch import nn

from segbench.models.base import SegmentationModel

RESENC_M_BLOCKS = (1, 3, 4, 6, 6, 6, 6, 6)  # nnU-Net's ResEncUNetPlanner (M), per encoder stage


class NnunetUNet(SegmentationModel):
    """nnU-Net's PlainConvUNet (two convs per encoder stage) or, with ``residual``, its ResidualEncoderUNet (ResEnc
    M's residual blocks per stage, ``RESENC_M_BLOCKS``); one conv per decoder stage.

    Shape: (N, in_channels, H, W) -> logits (N, classes, H, W); H, W divisible by 2**(stages-1), at least 2**stages.
    """

    def __init__(self, in_channels: int = 1, classes: int = 1, stages: int = 7, base_channels: int = 32,
                 max_channels: int = 512, residual: bool = False):
        super().__init__()
        self.size_multiple = 2 ** (stages - 1)
        self.min_size = 2 ** stages  # instance norm needs more than one pixel at the deepest stage
        common = {"input_channels": in_channels, "n_stages": stages, "num_classes": classes, "conv_op": nn.Conv2d,
                  "features_per_stage": [min(base_channels * 2 ** i, max_channels) for i in range(stages)],
                  "kernel_sizes": [[3, 3]] * stages, "strides": [[1, 1]] + [[2, 2]] * (stages - 1),
                  "n_conv_per_stage_decoder": [1] * (stages - 1), "conv_bias": True, "norm_op": nn.InstanceNorm2d,
                  "norm_op_kwargs": {"eps": 1e-5, "affine": True}, "nonlin": nn.LeakyReLU,
                  "nonlin_kwargs": {"inplace": True}, "deep_supervision": False}
        self.net = ResidualEncoderUNet(**common, n_blocks_per_stage=list(RESENC_M_BLOCKS[:stages])) if residual \
            else PlainConvUNet(**common, n_conv_per_stage=[2] * stages)

    def segment(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
