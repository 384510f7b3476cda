"""Counts made independently of segbench, to check its own against."""

import numpy as np


def independent_lesion_count(pred: np.ndarray, truth: np.ndarray, threshold: float, min_size: int):
    """OpenCV's connected components and a brute-force IoU over every pair; with lesions and predictions in
    separate cells, each overlaps at most one other, so any matching is the optimal one."""
    import cv2

    def regions(mask):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        return [labels == i for i in range(1, count) if stats[i, cv2.CC_STAT_AREA] >= min_size]

    true, predicted = regions(truth), regions(pred)
    matched = sum(any((t & p).sum() / (t | p).sum() > threshold for p in predicted) for t in true)
    return len(true), len(predicted), matched
