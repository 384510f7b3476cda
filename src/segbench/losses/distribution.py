"""Pixel-level (distribution) losses: cross-entropy and its re-weightings."""

from __future__ import annotations

import torch
from segmentation_models_pytorch.losses import FocalLoss
from torch import nn

from segbench import SegbenchError
from segbench.losses.adapters import SmpTerm
from segbench.losses.functional import balanced_weights, pixel_ce, pixel_weights, weighted_mean
from segbench.losses.weighted_sum import LossContext


class CrossEntropy(nn.Module):
    """(Weighted) cross-entropy: sum_i w_{g_i} CE_i / sum_i w_{g_i}, as torch weights it.

    Hand-written so that binary (sigmoid) and multiclass (softmax) modes share one class
    weighting, background included; torch's BCE has only a positive-class weight.
    """

    def __init__(self, mode: str, weights: torch.Tensor | None = None):
        super().__init__()
        self.mode, self.weights = mode, weights

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        w = None if self.weights is None else pixel_weights(target, self.weights)
        return weighted_mean(pixel_ce(logits, target, self.mode), w)


def ce(ctx: LossContext, class_weights=None) -> nn.Module:
    """Cross-entropy, -sum_c g_c log p_c; class_weights: list (background first) or "auto"."""
    return CrossEntropy(ctx.mode, balanced_weights(class_weights, ctx.class_frequencies, ctx.classes))


def weighted_ce(ctx: LossContext, class_weights="auto") -> nn.Module:
    """Weighted cross-entropy, w_c = N / (C * N_c) from training-set frequencies by default (Long et al., 2015)."""
    return CrossEntropy(ctx.mode, balanced_weights(class_weights, ctx.class_frequencies, ctx.classes))


class TopKCrossEntropy(nn.Module):
    """Mean cross-entropy of the k % hardest pixels (Wu et al., 2016, "Bridging category-level and
    instance-level semantic image segmentation"; nnU-Net's TopK loss). Neither smp nor MONAI has it."""

    def __init__(self, mode: str, k: float):
        super().__init__()
        if not 0 < k <= 100:
            raise SegbenchError(f"topk: k must be a percentage in (0, 100], got {k}")
        self.mode, self.k = mode, k

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        losses = pixel_ce(logits, target, self.mode).flatten()
        return losses.topk(max(1, int(round(losses.numel() * self.k / 100)))).values.mean()


def topk(ctx: LossContext, k: float = 10.0) -> nn.Module:
    """TopK cross-entropy: mean CE over the k % pixels with the largest CE."""
    return TopKCrossEntropy(ctx.mode, k)


def focal(ctx: LossContext, gamma: float = 2.0, alpha=None) -> nn.Module:
    """Focal loss, -alpha_t (1 - p_t)^gamma log p_t (Lin et al., 2017, RetinaNet); smp's FocalLoss.

    alpha: weight of the foreground (binary; "auto" = background pixel share), or one
    scalar for every class in multiclass mode, where smp's focal loss is one-vs-rest sigmoid.
    """
    if alpha == "auto":
        if ctx.mode != "binary":
            raise SegbenchError("focal: alpha 'auto' is for binary mode; give a number in multiclass mode")
        if ctx.class_frequencies is None:
            raise SegbenchError("focal: alpha 'auto' needs the training set's class frequencies")
        alpha = float(ctx.class_frequencies[0])
    return SmpTerm(FocalLoss(ctx.mode, alpha=alpha, gamma=gamma), ctx.mode)
