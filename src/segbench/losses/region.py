"""Region-level (overlap) losses.

smp's Dice, Jaccard and Tversky give exactly zero loss on a batch whose truth is empty (they
mask absent classes out), so alone they never penalise false positives on normal images.
``smooth`` > 0 switches them to the smoothed batch form nnU-Net uses, (2TP + s) / (2TP + FP + FN + s)
over the batch with nothing masked (MONAI's losses with ``batch=True``), which does.
MONAI is imported where it is used: it takes seconds to import.
"""

from __future__ import annotations

import torch
from segmentation_models_pytorch.losses import DiceLoss, JaccardLoss, LovaszLoss, TverskyLoss
from torch import nn

from segbench.losses.adapters import MonaiTerm, SmpTerm, monai_activation
from segbench.losses.weighted_sum import LossContext


def dice(ctx: LossContext, smooth: float = 0.0, eps: float = 1e-7) -> nn.Module:
    """Soft Dice, 1 - 2|P.G| / (|P| + |G|), over the batch (Milletari et al., 2016); smp's DiceLoss.

    In multiclass mode the mean over classes present in the batch; absent classes add 0.
    With ``smooth`` > 0: nnU-Net's smoothed batch Dice (MONAI), which penalises false positives
    on empty truth too.
    """
    if smooth:
        from monai.losses import DiceLoss as MonaiDiceLoss

        return MonaiTerm(MonaiDiceLoss(**monai_activation(ctx.mode), batch=True, smooth_nr=smooth,
                                       smooth_dr=smooth), ctx.mode)
    return SmpTerm(DiceLoss(ctx.mode, from_logits=True, eps=eps), ctx.mode)


def generalized_dice(ctx: LossContext, smooth: float = 1e-5) -> nn.Module:
    """Generalised Dice, 1 - 2 sum_c w_c |P_c.G_c| / sum_c w_c (|P_c| + |G_c|), w_c = 1/|G_c|^2
    (Sudre et al., 2017); MONAI's GeneralizedDiceLoss, per image."""
    from monai.losses import GeneralizedDiceLoss

    return MonaiTerm(GeneralizedDiceLoss(**monai_activation(ctx.mode), smooth_nr=smooth, smooth_dr=smooth), ctx.mode)


def squared_dice(ctx: LossContext, smooth: float = 1e-5) -> nn.Module:
    """V-Net Dice with squared denominators, 1 - 2|P.G| / (|P|^2 + |G|^2) (Milletari et al., 2016);
    MONAI's DiceLoss(squared_pred=True), per image."""
    from monai.losses import DiceLoss as MonaiDiceLoss

    return MonaiTerm(MonaiDiceLoss(**monai_activation(ctx.mode), squared_pred=True, smooth_nr=smooth,
                                   smooth_dr=smooth), ctx.mode)


def jaccard(ctx: LossContext, smooth: float = 0.0, eps: float = 1e-7) -> nn.Module:
    """Soft IoU (Jaccard), 1 - |P.G| / (|P| + |G| - |P.G|), over the batch (Rahman & Wang, 2016); smp's JaccardLoss.

    With ``smooth`` > 0: the smoothed batch form (MONAI's DiceLoss(jaccard=True)).
    """
    if smooth:
        from monai.losses import DiceLoss as MonaiDiceLoss

        return MonaiTerm(MonaiDiceLoss(**monai_activation(ctx.mode), jaccard=True, batch=True, smooth_nr=smooth,
                                       smooth_dr=smooth), ctx.mode)
    return SmpTerm(JaccardLoss(ctx.mode, from_logits=True, eps=eps), ctx.mode)


def tversky(ctx: LossContext, alpha: float = 0.3, beta: float = 0.7, smooth: float = 0.0) -> nn.Module:
    """Tversky, 1 - TP / (TP + alpha FP + beta FN) (Salehi et al., 2017); smp's TverskyLoss.

    With ``smooth`` > 0: the smoothed batch form (MONAI's TverskyLoss(batch=True)).
    """
    if smooth:
        from monai.losses import TverskyLoss as MonaiTverskyLoss

        return MonaiTerm(MonaiTverskyLoss(**monai_activation(ctx.mode), alpha=alpha, beta=beta, batch=True,
                                          smooth_nr=smooth, smooth_dr=smooth), ctx.mode)
    return SmpTerm(TverskyLoss(ctx.mode, alpha=alpha, beta=beta), ctx.mode)


class Power(nn.Module):
    """L^exponent of another loss, with L clamped away from 0 so that exponents < 1 keep finite
    gradients at a perfect (or empty) prediction, where smp's own ``gamma`` gives NaN."""

    def __init__(self, loss: nn.Module, exponent: float):
        super().__init__()
        self.loss, self.exponent = loss, exponent

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss(logits, target).clamp_min(1e-7) ** self.exponent


def focal_tversky(ctx: LossContext, alpha: float = 0.3, beta: float = 0.7, gamma: float = 4 / 3,
                  smooth: float = 0.0) -> nn.Module:
    """Focal Tversky, (1 - TI)^(1/gamma), gamma in [1, 3] (Abraham & Khan, 2019), over smp's TverskyLoss."""
    return Power(tversky(ctx, alpha=alpha, beta=beta, smooth=smooth), 1.0 / gamma)


class LogCosh(nn.Module):
    """log(cosh(L)) of another loss (Jadon, 2020); no library has it."""

    def __init__(self, loss: nn.Module):
        super().__init__()
        self.loss = loss

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.log(torch.cosh(self.loss(logits, target)))


def log_cosh_dice(ctx: LossContext, smooth: float = 0.0) -> nn.Module:
    """Log-Cosh Dice, log(cosh(L_Dice)) (Jadon, 2020, "A survey of loss functions for semantic segmentation")."""
    return LogCosh(dice(ctx, smooth=smooth))


def lovasz(ctx: LossContext, per_image: bool = False) -> nn.Module:
    """Lovasz hinge (binary) / Lovasz-softmax (multiclass), a convex surrogate of IoU
    (Berman et al., 2018); smp's LovaszLoss."""
    return SmpTerm(LovaszLoss(ctx.mode, per_image=per_image), ctx.mode)
