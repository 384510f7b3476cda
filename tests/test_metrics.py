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


def test_ignored_pixels_count_nowhere_and_classes_average_over_the_foreground():
    from segbench.data.sample import IGNORE

    target = torch.tensor([[[1, 1, IGNORE, 0]]])  # (N=1, H=1, W=4)
    pred = torch.tensor([[[1, 0, 1, 0]]])  # the false positive sits on an ignored pixel
    binary = per_image_scores(pred, target)
    assert binary["tp"][0] == 1 and binary["fp"][0] == 0 and binary["fn"][0] == 1
    assert binary["dice"][0] == pytest.approx(2 / 3)
    target3 = torch.tensor([[[1, 1, 2, 2, IGNORE, 0]]])
    pred3 = torch.tensor([[[1, 1, 2, 1, 2, 0]]])
    scores = per_image_scores(pred3, target3, classes=3)
    # class 1: tp 2, fp 1 -> Dice 4/5; class 2: tp 1, fn 1 -> Dice 2/3; the ignored pixel counts nowhere
    assert scores["dice_per_class"][0] == pytest.approx([4 / 5, 2 / 3])
    assert scores["dice"][0] == pytest.approx((4 / 5 + 2 / 3) / 2)
