import pytest
import torch

from segbench import SegbenchError
from segbench.losses import create_loss, list_losses


def test_registry_lists_terms():
    assert {"dice", "focal"} <= set(list_losses())


def closed_form_dice(logits, target, eps=1e-7):
    p = torch.sigmoid(logits)
    return 1 - 2 * (p * target).sum() / (p.sum() + target.sum()).clamp_min(eps)


def closed_form_focal(logits, target, gamma):
    p = torch.sigmoid(logits)
    p_t = torch.where(target == 1, p, 1 - p)
    return (-(1 - p_t) ** gamma * torch.log(p_t)).mean()


# logits (N, 1, H, W), target (N, 1, H, W)
LOGITS = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
TARGET = (torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(1)) > 0.6).float()


def test_dice_matches_closed_form():
    loss = create_loss([{"term": "dice"}])
    assert loss(LOGITS, TARGET).item() == pytest.approx(closed_form_dice(LOGITS, TARGET).item(), abs=1e-5)


def test_thesis_compound_is_the_weighted_sum():
    spec = [{"term": "dice", "weight": 0.7}, {"term": "focal", "weight": 0.3, "gamma": 2.0}]
    expected = 0.7 * closed_form_dice(LOGITS, TARGET) + 0.3 * closed_form_focal(LOGITS, TARGET, 2.0)
    assert create_loss(spec)(LOGITS, TARGET).item() == pytest.approx(expected.item(), abs=1e-5)


def test_loss_is_smallest_at_a_perfect_prediction():
    perfect = (TARGET * 2 - 1) * 20
    loss = create_loss([{"term": "dice", "weight": 0.5}, {"term": "focal", "weight": 0.5}])
    assert loss(perfect, TARGET) < 1e-3 < loss(LOGITS, TARGET)


def test_bad_specs_are_named():
    with pytest.raises(SegbenchError, match=r"unknown loss term 'dise'.*did you mean 'dice'"):
        create_loss([{"term": "dise"}])
    with pytest.raises(SegbenchError, match="loss term 'focal': bad options"):
        create_loss([{"term": "focal", "gama": 2}])
    with pytest.raises(SegbenchError, match="mode"):
        create_loss([{"term": "dice"}], mode="regression")
