"""Every loss term against an independent reference (MONAI, smp or a closed form derived here),
plus properties that every registered term must have."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.losses import HausdorffDTLoss
from scipy import ndimage

from segbench import SegbenchError
from segbench.data.distance import signed_distance
from segbench.losses import BLIND_ON_EMPTY, FAMILIES, LOSSES, create_loss

warnings.filterwarnings("ignore", category=UserWarning)
GEN = torch.Generator().manual_seed(0)
# logits (N, 1, H, W), target (N, 1, H, W) in {0, 1}
LOGITS = torch.randn(2, 1, 12, 12, generator=GEN)
TARGET = torch.zeros(2, 1, 12, 12)
TARGET[0, 0, 3:8, 2:9] = 1
TARGET[1, 0, 6:11, 5:10] = 1
FREQ = [float(1 - TARGET.mean()), float(TARGET.mean())]


def distances(target: torch.Tensor, mode: str = "binary", classes: int = 2) -> torch.Tensor:
    """Signed distance maps (N, K, H, W) as the data pipeline makes them."""
    onehot = target if mode == "binary" else F.one_hot(target[:, 0].long(), classes).permute(0, 3, 1, 2)
    return torch.from_numpy(np.stack([signed_distance(m.numpy()) for m in onehot]))


def loss_of(term, logits=LOGITS, target=TARGET, mode="binary", classes=2, **options):
    loss = create_loss([{"term": term, **options}], mode, classes=classes,
                       class_frequencies=FREQ if mode == "binary" else [1 / classes] * classes)
    return loss(logits, target, distances(target, mode, classes))


P = torch.sigmoid(LOGITS)
G = TARGET
TP, FP, FN = (P * G).sum(), (P * (1 - G)).sum(), ((1 - P) * G).sum()
BCE = -(G * P.log() + (1 - G) * (1 - P).log())
DICE = 1 - 2 * TP / (2 * TP + FP + FN)


def per_image(fn):
    return torch.stack([fn(P[i], G[i]) for i in range(len(P))]).mean()


# Closed forms, each written from the paper's formula, for the binary mode.
REFERENCES = {
    "ce": lambda: BCE.mean(),
    "weighted_ce": lambda: ((G / (2 * FREQ[1]) + (1 - G) / (2 * FREQ[0])) * BCE).sum()
    / (G / (2 * FREQ[1]) + (1 - G) / (2 * FREQ[0])).sum(),
    "topk": lambda: BCE.flatten().sort(descending=True).values[: round(BCE.numel() * 0.1)].mean(),
    "focal": lambda: ((1 - torch.where(G == 1, P, 1 - P)) ** 2 * BCE).mean(),
    "dice": lambda: DICE,
    "generalized_dice": lambda: per_image(lambda p, g: 1 - (2 * (p * g).sum() / g.sum() ** 2 + 1e-5)
                                          / ((p.sum() + g.sum()) / g.sum() ** 2 + 1e-5)),
    "squared_dice": lambda: per_image(
        lambda p, g: 1 - (2 * (p * g).sum() + 1e-5) / ((p ** 2).sum() + (g ** 2).sum() + 1e-5)),
    "jaccard": lambda: 1 - TP / (TP + FP + FN),
    "tversky": lambda: 1 - TP / (TP + 0.3 * FP + 0.7 * FN),
    "focal_tversky": lambda: (1 - TP / (TP + 0.3 * FP + 0.7 * FN)) ** 0.75,
    "log_cosh_dice": lambda: torch.log(torch.cosh(DICE)),
    "dice_focal": lambda: 0.7 * DICE + 0.3 * ((1 - torch.where(G == 1, P, 1 - P)) ** 2 * BCE).mean(),
    "combo": lambda: 0.5 * (-(0.5 * G * P.log() + 0.5 * (1 - G) * (1 - P).log())).mean() + 0.5 * DICE,
    "dice_ce": lambda: per_image(lambda p, g: 1 - (2 * (p * g).sum() + 1e-5) / (p.sum() + g.sum() + 1e-5)) + BCE.mean(),
    "exp_log": lambda: 0.8 * (-(1 - DICE).log()) ** 0.3
    + 0.2 * (-torch.where(G == 1, P, 1 - P).log()) .pow(0.3).mean(),
    "unified_focal": lambda: unified_focal_reference(),
    "boundary": lambda: (P * distances(G)).mean(),
    "distance_penalty": lambda: distance_penalty_reference(),
}


def unified_focal_reference(delta=0.6, gamma=0.5, weight=0.5):
    probs, truth = torch.cat([1 - P, P], 1), torch.cat([1 - G, G], 1)
    ce = -truth * probs.log()
    focal = ((1 - delta) * (1 - probs[:, 0]) ** gamma * ce[:, 0] + delta * ce[:, 1]).mean()
    tp, fn, fp = (probs * truth).sum((2, 3)), ((1 - probs) * truth).sum((2, 3)), (probs * (1 - truth)).sum((2, 3))
    mti = tp / (tp + delta * fn + (1 - delta) * fp)
    tversky = torch.stack([1 - mti[:, 0], (1 - mti[:, 1]) ** (1 - gamma)], 1).mean()
    return weight * focal + (1 - weight) * tversky


def distance_penalty_reference():
    """(1 + Phi) * CE with Phi = (max - d) / max per region, d = distance to the other region (scipy)."""
    total = []
    for g, ce in zip(G[:, 0].numpy().astype(bool), BCE[:, 0]):
        phi = np.zeros(g.shape)
        for region in (g, ~g):
            d = ndimage.distance_transform_edt(region)
            phi[region] = (d.max() - d[region]) / d.max()
        total.append((1 + torch.from_numpy(phi).float()) * ce)
    return torch.stack(total).mean()


def test_registry_has_the_whole_taxonomy():
    assert len(LOSSES.names()) >= 20
    assert {f: len(LOSSES.names(f)) >= 4 for f in FAMILIES} == dict.fromkeys(FAMILIES, True)
    assert set(REFERENCES) | {"hausdorff", "shape_aware", "lovasz"} == set(LOSSES.names())


@pytest.mark.parametrize("term", sorted(REFERENCES))
def test_matches_its_reference(term):
    assert loss_of(term).item() == pytest.approx(REFERENCES[term]().item(), rel=1e-4, abs=1e-5)


def test_hausdorff_matches_monai():
    """MONAI recomputes the ground truth's field each step; ours reads it from the data pipeline."""
    expected = HausdorffDTLoss(alpha=2.0, sigmoid=True)(LOGITS, TARGET)
    assert loss_of("hausdorff").item() == pytest.approx(expected.item(), rel=1e-5)


def test_lovasz_hinge_matches_the_lovasz_extension_brute_force():
    logits = torch.tensor([[[[2.0, -1.0, 0.5, -0.3]]]])
    truth = torch.tensor([[[[1.0, 0.0, 0.0, 1.0]]]])
    errors = 1 - logits.flatten() * (2 * truth.flatten() - 1)
    order = errors.argsort(descending=True)
    positives = truth.flatten().bool()

    def jaccard_loss(mistakes):  # Delta_J(M) = |M| / |positives U M|
        union = positives.clone()
        union[mistakes] = True
        return len(mistakes) / union.sum().item()

    expected = sum(errors[order[i]].clamp_min(0) * (jaccard_loss(order[: i + 1]) - jaccard_loss(order[:i]))
                   for i in range(4))
    assert loss_of("lovasz", logits, truth).item() == pytest.approx(float(expected))


def test_shape_aware_is_ce_scaled_by_contour_distance():
    ce = BCE.flatten(1).mean(1)
    value = loss_of("shape_aware").item()
    assert ce.mean().item() <= value <= (ce * (1 + np.sqrt(2))).mean().item()
    perfect = (TARGET * 2 - 1) * 8  # contour on the truth's contour: E = 0, plain CE
    expected = F.binary_cross_entropy_with_logits(perfect, TARGET).item()
    assert loss_of("shape_aware", perfect).item() == pytest.approx(expected, rel=1e-5)


def test_focal_tversky_gamma_is_the_papers():
    assert loss_of("focal_tversky", gamma=1.0).item() == pytest.approx(loss_of("tversky").item(), rel=1e-6)


def test_class_weights_options():
    assert loss_of("ce", class_weights=[1.0, 1.0]).item() == pytest.approx(BCE.mean().item(), rel=1e-6)
    with pytest.raises(SegbenchError, match="expected 2 values"):
        loss_of("ce", class_weights=[1.0, 2.0, 3.0])
    with pytest.raises(SegbenchError, match="needs the training set's class frequencies"):
        create_loss([{"term": "weighted_ce"}])


MODES = [("binary", 1, 2), ("multiclass", 3, 3)]


def sample(mode, channels, classes, empty=False):
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(2, channels, 16, 16, generator=gen)
    target = torch.zeros(2, 1, 16, 16)
    if not empty:
        target[:, :, 4:10, 3:9] = 1
        if classes > 2:
            target[:, :, 11:15, 10:15] = 2
    return logits, target


@pytest.mark.parametrize("mode, channels, classes", MODES)
@pytest.mark.parametrize("term", LOSSES.names())
def test_properties_of_every_term(term, mode, channels, classes):
    logits, target = sample(mode, channels, classes)
    onehot = target if mode == "binary" else F.one_hot(target[:, 0].long(), classes).permute(0, 3, 1, 2).float()
    direction = onehot * 2 - 1                                     # +1 where the truth is, -1 elsewhere
    values = [loss_of(term, direction * scale, target, mode, classes).item() for scale in (-6, -2, 0.5, 2, 6)]
    assert all(b <= a + 1e-4 for a, b in zip(values, values[1:])), f"not monotone on the path: {values}"
    assert values[-1] <= loss_of(term, logits, target, mode, classes).item() + 1e-6  # perfect beats random
    for truth_empty, pred_empty in ((True, False), (False, True), (True, True)):
        lg, tg = sample(mode, channels, classes, empty=truth_empty)
        lg = (torch.full_like(lg, -8.0) if pred_empty else lg).requires_grad_()
        if pred_empty and mode == "multiclass":
            lg.data[:, 0] = 8.0
        value = loss_of(term, lg, tg, mode, classes)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(lg.grad).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("term", LOSSES.names())
def test_no_nan_under_autocast(term, dtype):
    conv = torch.nn.Conv2d(1, 1, 3, padding=1)
    with torch.autocast("cpu", dtype=dtype):
        value = loss_of(term, conv(LOGITS) * 30, TARGET)
    assert torch.isfinite(value)


@pytest.mark.parametrize("term", ["ce", "weighted_ce", "topk", "boundary", "distance_penalty", "hausdorff",
                                  "shape_aware"])
def test_binary_equals_two_class_multiclass(term):
    """Where the formula is the same: softmax([0, z])_1 = sigmoid(z). (Not focal: smp's multiclass
    focal is one-vs-rest sigmoid on each logit; not the region losses: they average over classes.)"""
    two_class = torch.cat([torch.zeros_like(LOGITS), LOGITS], 1)
    options = {"class_weights": [0.3, 1.7]} if term == "weighted_ce" else {}
    binary = loss_of(term, **options).item()
    assert loss_of(term, two_class, TARGET, "multiclass", 2, **options).item() == pytest.approx(binary, rel=1e-4)


def test_ramp_schedule_and_deep_supervision():
    loss = create_loss([{"term": "dice"}, {"term": "boundary", "weight": 0.01, "ramp": 0.01, "max_weight": 0.03}])
    assert loss.needs_distance
    weights = []
    for epoch in (1, 2, 5):
        loss.set_epoch(epoch)
        weights.append(loss.weights[1])
    assert weights == pytest.approx([0.01, 0.02, 0.03])
    half = F.avg_pool2d(LOGITS, 2)
    deep = create_loss([{"term": "dice"}], deep_supervision=[1.0, 0.5])
    expected = (loss_of("dice") + 0.5 * loss_of("dice", half, F.interpolate(TARGET, size=(6, 6)))) / 1.5
    assert deep([LOGITS, half], TARGET).item() == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(SegbenchError, match="distance maps"):
        loss(LOGITS, TARGET)


def test_boundary_loss_can_be_negative():
    inside = TARGET * 2 - 1
    assert loss_of("boundary", inside * 8).item() < 0


def test_bad_specs_are_named():
    with pytest.raises(SegbenchError, match=r"unknown loss term 'dise'.*did you mean 'dice'"):
        create_loss([{"term": "dise"}])
    with pytest.raises(SegbenchError, match=r"losses\[0\].gama: focal takes no option 'gama'.*did you mean 'gamma'"):
        create_loss([{"term": "focal", "gama": 2}])
    with pytest.raises(SegbenchError, match="mode"):
        create_loss([{"term": "dice"}], mode="regression")
    with pytest.raises(SegbenchError, match=r"losses\[0\].k: 0 must be a percentage"):
        create_loss([{"term": "topk", "k": 0}])
    with pytest.raises(SegbenchError, match=r"losses\[0\].beta: .*alpha \+ beta must be positive"):
        create_loss([{"term": "tversky", "alpha": 0.0, "beta": 0.0}])
    assert LOSSES.entry("tversky").options == {"alpha": 0.3, "beta": 0.7, "smooth": 0.0}


@pytest.mark.parametrize("term", LOSSES.names())
def test_every_terms_declared_options_are_its_builders_keyword_arguments_with_their_defaults(term):
    import inspect

    entry = LOSSES.entry(term)
    signature = inspect.signature(entry.load()).parameters
    assert entry.options == {k: v.default for k, v in list(signature.items())[1:]}
    assert entry.summary


@pytest.mark.parametrize("term", BLIND_ON_EMPTY)
def test_region_terms_are_blind_on_empty_truth_unless_smoothed(term):
    """smp's Dice, Jaccard and Tversky give exactly 0 on a batch with no foreground, however much the
    model predicts; nnU-Net's smoothing makes the false positives cost, and a perfect empty prediction
    still costs nothing."""
    empty = torch.zeros(2, 1, 12, 12)
    confident = torch.full((2, 1, 12, 12), 5.0, requires_grad=True)  # predicts foreground everywhere
    blind = loss_of(term, confident, empty)
    blind.backward()
    assert blind.item() < 1e-5 and not confident.grad.any()  # (focal Tversky's clamp leaves 1e-7 ** 0.75)
    confident.grad = None
    loss = loss_of(term, confident, empty, smooth=1e-5)
    assert loss.item() > 0.4  # near its maximum: 1, or log cosh 1 for Log-Cosh Dice
    loss.backward()
    assert (confident.grad > 0).all()  # gradient descent lowers the false-positive logits
    assert loss_of(term, torch.full((2, 1, 12, 12), -30.0), empty, smooth=1e-5).item() < 1e-3


def test_a_term_of_weight_zero_counts_from_its_ramp_and_never_without_one():
    import torch

    ramped = create_loss([{"term": "dice", "weight": 0.0, "ramp": 0.5}])  # nothing counts at epoch 1
    logits = LOGITS.clone().requires_grad_(True)
    value = ramped(logits, TARGET)
    assert torch.isfinite(value) and value.item() == 0.0
    value.backward()  # a tensor in the graph: a training step takes it
    assert logits.grad is not None and not logits.grad.any()
    ramped.set_epoch(3)
    assert ramped(LOGITS, TARGET).item() == pytest.approx(loss_of("dice").item(), rel=1e-6)
    with pytest.raises(SegbenchError, match=r"losses\[1\].weight: 0 with no ramp: the term 'focal' would never"):
        create_loss([{"term": "dice"}, {"term": "focal", "weight": 0}])
