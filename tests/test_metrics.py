import math

import numpy as np
import pytest
import torch

from segbench.evaluation.metrics import per_image_scores, summarise


def masks(*rows):
    return torch.tensor(rows, dtype=torch.long).reshape(len(rows), 1, 1, -1)


def test_hand_computed_scores():
    # image 0: tp=2, fp=1, fn=1; image 1: both empty; image 2: empty prediction, 2 lesion pixels
    pred = masks([1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0])
    gt = masks([1, 1, 0, 1], [0, 0, 0, 0], [1, 1, 0, 0])
    s = per_image_scores(pred, gt)
    assert s["dice"] == pytest.approx([4 / 6, 1.0, 0.0])
    assert s["iou"] == pytest.approx([2 / 4, 1.0, 0.0])
    assert s["precision"][0] == pytest.approx(2 / 3) and math.isnan(s["precision"][1]) and math.isnan(s["precision"][2])
    assert s["recall"][0] == pytest.approx(2 / 3) and math.isnan(s["recall"][1]) and s["recall"][2] == 0
    summary = summarise(s)
    assert summary["dice"] == pytest.approx(np.mean([4 / 6, 1, 0]))
    assert summary["precision_undefined"] == 2 and summary["recall_undefined"] == 1
    assert summary["dice_pooled"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 3))
    assert summary["n_images"] == 3
