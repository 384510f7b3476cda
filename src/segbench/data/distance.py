"""Signed distance maps of masks: the data pipeline computes them for the boundary losses."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def signed_distance(mask: np.ndarray) -> np.ndarray:
    """Signed Euclidean distance to the boundary of each channel of a binary (K, H, W) mask.

    Negative inside (-(d - 1), so boundary pixels are 0), positive outside; a channel with
    no foreground, or only foreground, is all zeros (Kervadec et al., 2019, reference code).
    """
    out = np.zeros(mask.shape, np.float32)
    for k, channel in enumerate(mask.astype(bool)):
        if channel.any() and not channel.all():
            out[k] = ndimage.distance_transform_edt(~channel) * ~channel \
                - (ndimage.distance_transform_edt(channel) - 1) * channel
    return out
