"""Region-level losses."""

from segmentation_models_pytorch.losses import DiceLoss

from segbench.losses.registry import register_loss


@register_loss("dice")
def dice(mode: str, smooth: float = 0.0, eps: float = 1e-7) -> DiceLoss:
    """Soft Dice, 1 - 2|P.G| / (|P| + |G|), over the whole batch (Milletari et al., 2016, V-Net).

    smp's DiceLoss; a class absent from the batch's ground truth adds 0.
    """
    return DiceLoss(mode, from_logits=True, smooth=smooth, eps=eps)
