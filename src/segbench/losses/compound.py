"""Compound losses: fixed combinations that papers define as one loss.

Combo, Exponential Logarithmic and Unified Focal are written here: smp has none of them and
MONAI's AsymmetricUnifiedFocalLoss applies no activation to its input (open bug in 1.5).
"""

from __future__ import annotations

import torch
from torch import nn

from segbench.losses.adapters import MonaiTerm, monai_activation
from segbench.losses.distribution import focal
from segbench.losses.functional import balanced_weights, class_onehot, class_probs
from segbench.losses.region import dice
from segbench.losses.weighted_sum import LossContext

EPS = 1e-6


def _sums(probs: torch.Tensor, truth: torch.Tensor, dims):
    tp = (probs * truth).sum(dims)
    return tp, (probs * (1 - truth)).sum(dims), ((1 - probs) * truth).sum(dims)


class Combo(nn.Module):
    """Taghanaki et al., 2019, "Combo loss": alpha * L_mCE + (1 - alpha) * (1 - DSC), where
    L_mCE = -mean(beta g_fg log p_fg + (1 - beta) g_bg log p_bg) and DSC is the soft Dice of
    the foreground classes over the batch. (The paper subtracts DSC; 1 - DSC only shifts it.)"""

    def __init__(self, ctx: LossContext, alpha: float, beta: float):
        super().__init__()
        self.ctx, self.alpha, self.beta = ctx, alpha, beta

    def forward(self, logits, target):
        probs = class_probs(logits, self.ctx.mode)
        truth = class_onehot(target, self.ctx.mode, probs.shape[1])
        log_p = probs.clamp_min(EPS).log()
        ce = -(self.beta * (truth[:, 1:] * log_p[:, 1:]).sum(1) + (1 - self.beta) * truth[:, 0] * log_p[:, 0]).mean()
        tp, fp, fn = _sums(probs[:, 1:], truth[:, 1:], (0, 2, 3))
        dsc = ((2 * tp + EPS) / (2 * tp + fp + fn + EPS)).mean()
        return self.alpha * ce + (1 - self.alpha) * (1 - dsc)


class ExpLog(nn.Module):
    """Wong et al., 2018, "3D segmentation with exponential logarithmic loss":
    w_dice * mean_c (-ln Dice_c)^gamma_dice + w_ce * mean_i w_{g_i} (-ln p_{g_i})^gamma_ce,
    Dice per foreground class over the batch, w_c = (sum_k f_k / f_c)^0.5 or 1."""

    def __init__(self, ctx: LossContext, w_dice, w_ce, gamma_dice, gamma_ce, class_weights):
        super().__init__()
        self.ctx, self.w_dice, self.w_ce, self.gamma_dice, self.gamma_ce = ctx, w_dice, w_ce, gamma_dice, gamma_ce
        weights = balanced_weights(class_weights, ctx.class_frequencies, ctx.classes)
        self.class_weights = None if weights is None else weights.sqrt()

    def forward(self, logits, target):
        probs = class_probs(logits, self.ctx.mode)
        truth = class_onehot(target, self.ctx.mode, probs.shape[1])
        tp, fp, fn = _sums(probs[:, 1:], truth[:, 1:], (0, 2, 3))
        dice_c = (2 * tp + EPS) / (2 * tp + fp + fn + EPS)
        l_dice = (-dice_c.log()).clamp_min(0).pow(self.gamma_dice).mean()
        p_true = (probs * truth).sum(1).clamp_min(EPS)                       # (N, H, W)
        l_ce = (-p_true.log()).clamp_min(EPS).pow(self.gamma_ce)
        if self.class_weights is not None:
            l_ce = l_ce * (truth * self.class_weights.to(logits.device)[None, :, None, None]).sum(1)
        return self.w_dice * l_dice + self.w_ce * l_ce.mean()


class UnifiedFocal(nn.Module):
    """Yeung et al., 2022, "Unified Focal loss" (asymmetric form):
    lambda * L_maF + (1 - lambda) * L_maFT, with background suppressed by (1 - p)^gamma in
    the focal part and foreground enhanced by (1 - mTI)^(1 - gamma) in the Tversky part;
    mTI = TP / (TP + delta FN + (1 - delta) FP), per image and class."""

    def __init__(self, ctx: LossContext, weight: float, delta: float, gamma: float):
        super().__init__()
        self.ctx, self.weight, self.delta, self.gamma = ctx, weight, delta, gamma

    def forward(self, logits, target):
        probs = class_probs(logits, self.ctx.mode)
        truth = class_onehot(target, self.ctx.mode, probs.shape[1])
        ce = -truth * probs.clamp_min(EPS).log()                               # (N, C, H, W)
        back = (1 - self.delta) * (1 - probs[:, :1]).pow(self.gamma) * ce[:, :1]
        fore = self.delta * ce[:, 1:]
        focal_part = torch.cat([back, fore], 1).sum(1).mean()
        tp, fp, fn = _sums(probs, truth, (2, 3))                               # (N, C)
        mti = (tp + EPS) / (tp + self.delta * fn + (1 - self.delta) * fp + EPS)
        tversky_part = torch.cat([1 - mti[:, :1], (1 - mti[:, 1:]).clamp_min(0).pow(1 - self.gamma)], 1).mean()
        return self.weight * focal_part + (1 - self.weight) * tversky_part


class DiceFocal(nn.Module):
    """omega * Dice + (1 - omega) * Focal: the thesis's loss (omega in 0.5-0.8)."""

    def __init__(self, ctx: LossContext, omega: float, gamma: float, alpha):
        super().__init__()
        self.omega, self.dice, self.focal = omega, dice(ctx), focal(ctx, gamma=gamma, alpha=alpha)

    def forward(self, logits, target):
        return self.omega * self.dice(logits, target) + (1 - self.omega) * self.focal(logits, target)


def combo(ctx: LossContext, alpha: float = 0.5, beta: float = 0.5) -> nn.Module:
    """Combo loss, alpha * weighted CE + (1 - alpha) * (1 - Dice) (Taghanaki et al., 2019)."""
    return Combo(ctx, alpha, beta)


def exp_log(ctx: LossContext, w_dice: float = 0.8, w_ce: float = 0.2, gamma_dice: float = 0.3,
            gamma_ce: float = 0.3, class_weights=None) -> nn.Module:
    """Exponential logarithmic loss, w_d E[(-ln Dice)^g] + w_c E[w (-ln p)^g] (Wong et al., 2018)."""
    return ExpLog(ctx, w_dice, w_ce, gamma_dice, gamma_ce, class_weights)


def unified_focal(ctx: LossContext, weight: float = 0.5, delta: float = 0.6, gamma: float = 0.5) -> nn.Module:
    """Asymmetric Unified Focal loss, lambda maF + (1 - lambda) maFT (Yeung et al., 2022)."""
    return UnifiedFocal(ctx, weight, delta, gamma)


def dice_ce(ctx: LossContext, lambda_dice: float = 1.0, lambda_ce: float = 1.0) -> nn.Module:
    """Dice + cross-entropy, per image Dice (as nnU-Net uses); MONAI's DiceCELoss."""
    from monai.losses import DiceCELoss

    return MonaiTerm(DiceCELoss(**monai_activation(ctx.mode), lambda_dice=lambda_dice, lambda_ce=lambda_ce), ctx.mode)


def dice_focal(ctx: LossContext, omega: float = 0.7, gamma: float = 2.0, alpha=None) -> nn.Module:
    """The thesis's omega * Dice + (1 - omega) * Focal (smp's Dice and Focal)."""
    return DiceFocal(ctx, omega, gamma, alpha)
