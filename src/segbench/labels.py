"""Label conventions every layer shares (data, losses, metrics), kept apart so none imports another for them."""

IGNORE = 255  # mask value of pixels left out of losses and metrics


def has_lesion(mask) -> bool:
    """Whether a (H, W) mask of class ids has any foreground pixel (ignored pixels are not foreground)."""
    return bool(((mask > 0) & (mask != IGNORE)).any())
