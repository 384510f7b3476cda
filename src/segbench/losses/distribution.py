"""Pixel-level (distribution) losses."""

from segmentation_models_pytorch.losses import FocalLoss

from segbench.losses.registry import register_loss


@register_loss("focal")
def focal(mode: str, gamma: float = 2.0, alpha: float | None = None) -> FocalLoss:
    """Focal loss, -alpha_t (1 - p_t)^gamma log p_t (Lin et al., 2017, RetinaNet).

    smp's FocalLoss; multiclass is one-vs-rest sigmoid.
    """
    return FocalLoss(mode, alpha=alpha, gamma=gamma)
