"""Per-image segmentation metrics: overlap (from one confusion matrix) and boundary (from surface
distances), with one empty-mask policy. Pure NumPy and SciPy, so training and evaluation share them."""

from segbench.metrics.image import METRICS, image_metrics

__all__ = ["METRICS", "image_metrics"]
