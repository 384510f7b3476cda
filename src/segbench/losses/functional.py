"""Shared conventions of every loss term.

- ``logits``: (N, C, H, W); binary mode has C = 1 (the foreground logit).
- ``target``: (N, 1, H, W); binary holds 0/1, multiclass holds class ids.
- ``distance``: (N, K, H, W) signed distance to the ground truth's boundary, negative
  inside (Kervadec et al., 2019); K = 1 in binary mode (foreground), K = C in multiclass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from segbench import SegbenchError


def class_ids(target: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) -> (N, H, W) long."""
    return target[:, 0].long()


def class_probs(logits: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-class probabilities (N, C', H, W), background included: C' = 2 in binary mode."""
    if mode == "binary":
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(logits, dim=1)


def class_onehot(target: torch.Tensor, mode: str, classes: int) -> torch.Tensor:
    """One-hot ground truth (N, C', H, W) matching :func:`class_probs`."""
    if mode == "binary":
        t = target.float()
        return torch.cat([1 - t, t], dim=1)
    return F.one_hot(class_ids(target), classes).permute(0, 3, 1, 2).float()


def pixel_ce(logits: torch.Tensor, target: torch.Tensor, mode: str) -> torch.Tensor:
    """Per-pixel cross-entropy (N, H, W)."""
    if mode == "binary":
        return F.binary_cross_entropy_with_logits(logits, target.float(), reduction="none")[:, 0]
    return F.cross_entropy(logits, class_ids(target), reduction="none")


def pixel_weights(target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Each pixel's class weight (N, H, W); ``weights`` has one entry per class (background first)."""
    return weights.to(target.device)[class_ids(target)]


def balanced_weights(option, class_frequencies: list[float] | None, n_classes: int) -> torch.Tensor | None:
    """Class weights from an option: None, a list, or "auto" = n / (C * count_c) (sklearn's "balanced")."""
    if option is None:
        return None
    if option == "auto":
        if class_frequencies is None:
            raise SegbenchError("class_weights: 'auto' needs the training set's class frequencies")
        freq = torch.tensor(class_frequencies, dtype=torch.float32).clamp_min(1e-6)
        return 1.0 / (len(freq) * freq)
    weights = torch.tensor(option, dtype=torch.float32)
    if weights.shape != (n_classes,):
        raise SegbenchError(f"class_weights: expected {n_classes} values (background first), got {option}")
    return weights


def weighted_mean(values: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean of (N, H, W) values, weighted as torch's cross-entropy does: sum(w * v) / sum(w)."""
    if weights is None:
        return values.mean()
    return (weights * values).sum() / weights.sum().clamp_min(1e-12)


def unsigned_distance(signed: torch.Tensor) -> torch.Tensor:
    """edt(fg) + edt(bg) per channel (MONAI's HausdorffDTLoss field), from :func:`signed_distance`.

    Zero for channels without a boundary, as in MONAI.
    """
    has_boundary = (signed != 0).flatten(2).any(-1)[..., None, None]
    return torch.where(signed > 0, signed, 1 - signed) * has_boundary
