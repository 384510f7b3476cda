"""Label conventions every layer shares (data, losses, metrics), kept apart so none imports another for them."""

IGNORE = 255  # mask value of pixels left out of losses and metrics
