"""From a model's logits to probabilities and label maps: the one convention training's validation, evaluation and
every app share (apart from the predictor, so that training's code is not the predictor's)."""

from __future__ import annotations

import numpy as np
import torch


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Logits (N, C, H, W) -> probabilities: the sigmoid of a single foreground logit, else the softmax."""
    return torch.sigmoid(logits) if logits.shape[1] == 1 else torch.softmax(logits, 1)


def to_labels(probabilities: np.ndarray) -> np.ndarray:
    """(1, ...) foreground probability -> 0/1 (> 0.5); (K, ...) class probabilities -> argmax. uint8."""
    if len(probabilities) == 1:
        return (probabilities[0] > 0.5).astype(np.uint8)
    return probabilities.argmax(0).astype(np.uint8)


def foreground(probabilities: np.ndarray) -> np.ndarray:
    """The probability of any foreground class, (K', H, W) -> (H, W)."""
    return probabilities[0] if len(probabilities) == 1 else 1.0 - probabilities[0]
