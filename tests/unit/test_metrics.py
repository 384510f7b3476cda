"""Per-image metrics against MONAI's independent implementations, and the empty-mask policy."""

import warnings

import numpy as np
import pytest
import torch
from monai.metrics import (compute_average_surface_distance, compute_hausdorff_distance, compute_iou,
                           compute_surface_dice, get_confusion_matrix, compute_confusion_matrix_metric)
from monai.metrics.meandice import compute_dice

from segbench.labels import IGNORE
from segbench.metrics import image_metrics
from segbench.metrics.boundary import boundary_scores

warnings.filterwarnings("ignore", message=".*is all 0.*")


def blobs(rng, shape=(90, 120), n=3) -> np.ndarray:
    """A boolean mask of ``n`` random discs."""
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    mask = np.zeros(shape, bool)
    for _ in range(n):
        y, x, r = rng.integers(0, shape[0]), rng.integers(0, shape[1]), rng.integers(2, 20)
        mask |= (yy - y) ** 2 + (xx - x) ** 2 < r * r
    return mask


def onehot(mask: np.ndarray) -> torch.Tensor:
    """(H, W) 0/1 -> MONAI's (1, 2, H, W) one-hot, background first."""
    m = torch.from_numpy(mask.astype(np.float32))
    return torch.stack([1 - m, m])[None]


PAIRS = [(blobs(np.random.default_rng(s)), blobs(np.random.default_rng(100 + s), n=1 + s % 3)) for s in range(12)]


@pytest.mark.parametrize("pred, truth", PAIRS)
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 0.5)])
def test_boundary_metrics_equal_monais(pred, truth, spacing):
    ours = boundary_scores(pred, truth, tolerance=2.0 * spacing[0], spacing=spacing)
    p, t = onehot(pred), onehot(truth)
    hd95 = compute_hausdorff_distance(p, t, percentile=95, spacing=spacing).item()
    assd = compute_average_surface_distance(p, t, symmetric=True, spacing=spacing).item()
    nsd = compute_surface_dice(p, t, [2.0 * spacing[0]], spacing=spacing).item()
    assert ours["hd95"] == pytest.approx(hd95, rel=1e-6)
    assert ours["assd"] == pytest.approx(assd, rel=1e-6)
    assert ours["nsd"] == pytest.approx(nsd, rel=1e-6)


@pytest.mark.parametrize("pred, truth", PAIRS[:6])
def test_overlap_metrics_equal_monais(pred, truth):
    ours = image_metrics(pred.astype(np.uint8), truth.astype(np.uint8), classes=2)
    p, t = onehot(pred), onehot(truth)
    assert ours["dice"] == pytest.approx(compute_dice(p, t, include_background=False).item(), rel=1e-6)
    assert ours["iou"] == pytest.approx(compute_iou(p, t, include_background=False).item(), rel=1e-6)
    assert ours["mean_iou"] == pytest.approx(compute_iou(p, t, include_background=True).mean().item(), rel=1e-6)
    matrix = get_confusion_matrix(p, t, include_background=False)
    for ours_name, monai_name in (("precision", "precision"), ("recall", "sensitivity"),
                                  ("specificity", "specificity"), ("accuracy", "accuracy")):
        assert ours[ours_name] == pytest.approx(compute_confusion_matrix_metric(monai_name, matrix).item(), rel=1e-6)


def test_empty_masks_follow_metrics_reloaded_and_are_counted():
    h, w = 30, 40
    empty, lesion = np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint8)
    lesion[5:15, 5:15] = 1
    both = image_metrics(empty, empty, 2)
    assert (both["dice"], both["iou"], both["nsd"], both["hd95"], both["assd"]) == (1, 1, 1, 0, 0)
    assert both["empty"] == {"both": 1, "truth": 0, "prediction": 0}
    missed = image_metrics(empty, lesion, 2)  # nothing predicted
    assert (missed["dice"], missed["nsd"], missed["precision"], missed["recall"]) == (0, 0, 0, 0)
    assert missed["hd95"] == missed["assd"] == pytest.approx(np.hypot(h, w))  # the worst distance: the diagonal
    assert missed["empty"] == {"both": 0, "truth": 0, "prediction": 1}
    false_alarm = image_metrics(lesion, empty, 2)
    assert false_alarm["dice"] == 0 and false_alarm["empty"]["truth"] == 1
    assert not any(np.isnan(v) for m in (both, missed, false_alarm) for v in m.values() if isinstance(v, float))


def test_ignored_pixels_count_nowhere_and_classes_average_over_the_foreground():
    truth = np.zeros((10, 10), np.uint8)
    truth[:5, :5], truth[5:, 5:], truth[:, 9] = 1, 2, IGNORE
    pred = truth.copy()
    pred[:, 9] = 1  # wrong only where the truth is ignored
    scores = image_metrics(pred, truth, 3, class_names=["background", "pet", "border"])
    assert scores["dice"] == scores["dice_pet"] == scores["dice_border"] == 1.0
    pred[5:, 5:] = 0  # class 2 missed entirely
    scores = image_metrics(pred, truth, 3, class_names=["background", "pet", "border"])
    assert scores["dice_border"] == 0 and scores["dice"] == pytest.approx(0.5)
