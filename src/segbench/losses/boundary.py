"""Boundary-level losses. They read the ground truth's signed distance maps, which the data
pipeline computes once per sample on the CPU (``segbench.data.distance.signed_distance``).

None of these is in smp; MONAI's HausdorffDTLoss recomputes the ground truth's distance
field inside every training step, so the Hausdorff term below takes it from the data
pipeline instead and matches MONAI's value (a test checks it).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from segbench.data.distance import signed_distance
from segbench.losses.functional import class_ids, class_onehot, class_probs, pixel_ce, unsigned_distance
from segbench.losses.weighted_sum import LossContext


def foreground(probs: torch.Tensor, distance: torch.Tensor, mode: str):
    """Foreground probabilities and distance maps: channel 1.. of multiclass, the single channel of binary."""
    if mode == "binary":
        return probs[:, 1:], distance
    return probs[:, 1:], distance[:, 1:]


class DistanceTerm(nn.Module):
    """Base of the terms that read distance maps: forward(logits, target, distance)."""

    needs_distance = True

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode


class BoundaryLoss(DistanceTerm):
    """Kervadec et al., 2019, "Boundary loss for highly unbalanced segmentation":
    mean over foreground classes and pixels of s_theta(q) * phi_G(q).

    Its value is negative once the prediction sits inside the ground truth; pair it with a
    region loss under a rising weight (``ramp``), as the paper does.
    """

    def forward(self, logits, target, distance):
        probs, phi = foreground(class_probs(logits, self.mode), distance, self.mode)
        return (probs * phi).mean()


class HausdorffDTLoss(DistanceTerm):
    """Karimi & Salcudean, 2019, "Reducing the Hausdorff distance in medical image segmentation
    with CNNs": mean((p - g)^2 * (d_G^alpha + d_P^alpha)) over foreground channels.

    d_G comes from the data pipeline; d_P, the prediction's field, is computed here (CPU, scipy).
    """

    def __init__(self, mode: str, alpha: float):
        super().__init__(mode)
        self.alpha = alpha

    def forward(self, logits, target, distance):
        probs, phi = foreground(class_probs(logits, self.mode), distance, self.mode)
        truth = class_onehot(target, self.mode, logits.shape[1])[:, 1:]  # foreground, as probs
        pred_mask = (probs.detach() > 0.5).cpu().numpy()
        d_pred = torch.from_numpy(np.stack([signed_distance(m) for m in pred_mask])).to(logits.device)
        field = unsigned_distance(phi) ** self.alpha + unsigned_distance(d_pred) ** self.alpha
        return ((probs - truth) ** 2 * field).mean()


class ShapeAwareLoss(DistanceTerm):
    """Shape-aware loss as in Jadon's survey (2020): CE + E * CE, with E the mean distance from the
    predicted contour to the ground-truth contour (|phi_G| on the predicted contour, per image,
    in units of the image side). E is 0 without a predicted contour or a true boundary."""

    def forward(self, logits, target, distance):
        probs, phi = foreground(class_probs(logits, self.mode), distance, self.mode)
        with torch.no_grad():
            pred = (probs > 0.5).float()
            interior = -F.max_pool2d(-pred, 3, stride=1, padding=1)
            contour = pred - interior                                    # (N, K, H, W) 0/1
            per_class = (contour * phi.abs()).flatten(2).sum(-1) / contour.flatten(2).sum(-1).clamp_min(1)
            error = per_class.mean(1) / logits.shape[-1]                   # (N,)
        ce = pixel_ce(logits, target, self.mode).flatten(1).mean(1)       # (N,)
        return (ce + error * ce).mean()


class DistancePenalisedCE(DistanceTerm):
    """Caliva et al., 2019, "Distance map loss penalty term for semantic segmentation":
    mean((1 + Phi) * CE), Phi the ground-truth distance map inverted and normalised per
    region, so 1 on the boundary and 0 farthest from it."""

    def forward(self, logits, target, distance):
        ids = class_ids(target)
        if self.mode == "binary":
            d = unsigned_distance(distance)[:, 0]
        else:
            d = unsigned_distance(distance).gather(1, ids[:, None])[:, 0]
        phi = torch.zeros_like(d)
        for c in ids.unique():
            region = ids == c
            top = (d * region).flatten(1).amax(1).clamp_min(1e-6)[:, None, None]
            phi = phi + region * (top - d) / top * (d > 0)
        return ((1 + phi) * pixel_ce(logits, target, self.mode)).mean()


def boundary(ctx: LossContext) -> nn.Module:
    """Boundary loss, mean(s * phi_G) with signed distance phi_G (Kervadec et al., 2019); may be negative."""
    return BoundaryLoss(ctx.mode)


def hausdorff(ctx: LossContext, alpha: float = 2.0) -> nn.Module:
    """Hausdorff-distance loss, mean((p - g)^2 (d_G^a + d_P^a)) (Karimi & Salcudean, 2019)."""
    return HausdorffDTLoss(ctx.mode, alpha)


def shape_aware(ctx: LossContext) -> nn.Module:
    """Shape-aware loss, CE + E * CE with E the predicted-to-true contour distance (Jadon, 2020)."""
    return ShapeAwareLoss(ctx.mode)


def distance_penalty(ctx: LossContext) -> nn.Module:
    """Distance-map penalised CE, mean((1 + Phi) * CE) (Caliva et al., 2019)."""
    return DistancePenalisedCE(ctx.mode)
