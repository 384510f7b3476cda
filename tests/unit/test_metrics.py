"""Per-image metrics against MONAI's independent implementations, and the empty-mask policy."""

import itertools
import warnings

import numpy as np
import pytest
import torch
from monai.metrics import (
    compute_average_surface_distance,
    compute_confusion_matrix_metric,
    compute_hausdorff_distance,
    compute_iou,
    compute_surface_dice,
    get_confusion_matrix,
)
from monai.metrics.meandice import compute_dice

from segbench.labels import IGNORE
from segbench.metrics.boundary import boundary_scores
from segbench.metrics.image import image_metrics
from support.counts import independent_lesion_count

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


def test_a_class_absent_from_both_masks_is_left_out_of_the_image_mean():
    """Metrics Reloaded: one class at 0.5 beside an absent one reads 0.5, not 0.75."""
    truth = np.zeros((10, 10), np.uint8)
    truth[:4, :4] = 1
    pred = np.zeros_like(truth)
    pred[:4, :2] = 1  # class 1 half found; class 2 in neither mask
    scores = image_metrics(pred, truth, 3, class_names=["background", "a", "b"])
    assert scores["dice"] == pytest.approx(2 * 8 / (8 + 16)) and np.isnan(scores["dice_b"])
    assert scores["empty"]["both"] == 1
    empty = image_metrics(np.zeros_like(truth), np.zeros_like(truth), 3)
    assert (empty["dice"], empty["hd95"]) == (1.0, 0.0)  # nothing anywhere: the both-empty values


def test_the_boundary_penalty_is_the_diagonal_or_the_one_asked_for():
    empty, lesion = np.zeros((30, 40), np.uint8), np.zeros((30, 40), np.uint8)
    lesion[5:10, 5:10] = 1
    assert image_metrics(empty, lesion, 2)["hd95"] == pytest.approx(50.0)  # a 30 x 40 image's diagonal
    fixed = image_metrics(empty, lesion, 2, penalty=20.0)
    assert fixed["hd95"] == fixed["assd"] == 20.0 and fixed["boundary_penalised"] == 1
    assert image_metrics(lesion, lesion, 2)["boundary_penalised"] == 0


def test_lesions_are_matched_one_to_one_and_counted_as_an_independent_count_does():
    from segbench.metrics.detection import match_lesions

    rng = np.random.default_rng(4)
    for _ in range(20):  # a 4 x 4 grid of 20 px cells, each with its own lesion and prediction, or none
        truth, pred = np.zeros((80, 80), bool), np.zeros((80, 80), bool)
        for cy, cx in itertools.product(range(0, 80, 20), range(0, 80, 20)):
            if rng.random() < 0.6:
                truth[cy + 5:cy + 12, cx + 5:cx + 12] = True
            kind = rng.integers(4)  # none, on the lesion, shifted half off it, tiny
            if kind == 1:
                pred[cy + 5:cy + 12, cx + 6:cx + 13] = True
            elif kind == 2:
                pred[cy + 9:cy + 16, cx + 9:cx + 16] = True
            elif kind == 3:
                pred[cy + 2, cx + 2] = True
        found = match_lesions(pred, truth, "iou", 0.1, min_size=4)
        assert (found["lesions_true"], found["lesions_predicted"], found["lesions_matched"]) == \
            independent_lesion_count(pred, truth, 0.1, 4)
    one_blob = np.zeros((40, 40), bool)
    one_blob[10:30, 10:30] = True
    two_lesions = np.zeros_like(one_blob)
    two_lesions[10:18, 10:18] = two_lesions[22:30, 22:30] = True
    assert match_lesions(one_blob, two_lesions, "overlap")["lesions_matched"] == 1  # one prediction, one match
    assert match_lesions(one_blob, two_lesions, "iou", 0.1)["lesions_matched"] == 1  # IoU 64/400 for each
