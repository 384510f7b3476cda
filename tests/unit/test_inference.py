"""The predictor: any image size back to its original size, fold ensembles, post-processing."""

import numpy as np
import pytest
import torch

from segbench import SegbenchError
from segbench.data.images import Geometry
from segbench.predict.postprocess import postprocess
from segbench.predict.predictor import Member, Predictor, to_labels


class Constant(torch.nn.Module):
    """A 'model' whose logit is a fixed function of the input: the mean of its channels, times ``gain``."""

    def __init__(self, gain: float):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(gain))

    def forward(self, x):
        return x.mean(1, keepdim=True) * self.gain


def predictor(*gains, size=32, postprocessing=None):
    return Predictor([Member(Constant(g), [0.5], [0.25]) for g in gains], size, 1, 2,
                     postprocessing or {"name": "none"})


def test_geometry_restores_the_original_size_and_position():
    g = Geometry.fit(orig_h=70, orig_w=100, size=32)  # landscape: 32 wide, 22 high, padded top and bottom
    assert (g.height, g.width, g.pad_top, g.pad_left) == (22, 32, 5, 0)
    canvas = np.zeros((1, 32, 32), np.float32)
    canvas[0, 5:27, 16:] = 1.0  # the right half of the image
    restored = g.restore(canvas)
    assert restored.shape == (1, 70, 100)
    assert restored[0, :, :45].max() < 0.5 and restored[0, :, 55:].min() > 0.5
    assert g.restore(canvas, original=False).shape == (1, 22, 32)


def test_predict_returns_a_mask_at_the_images_own_size():
    image = np.zeros((700, 1000), np.uint8)
    image[100:400, 600:900] = 255  # a bright rectangle: the 'lesion' for the Constant model
    mask, probability = predictor(4.0).predict(image)
    assert mask.shape == probability.shape == (700, 1000) and mask.dtype == np.uint8
    assert mask[150:350, 650:850].all() and not mask[:, :500].any()
    rgb_mask, _ = predictor(4.0).predict(np.repeat(image[..., None], 3, -1))  # RGB input to a grey model
    assert (rgb_mask == mask).all()


def test_an_ensemble_is_the_mean_of_its_members_probabilities():
    canvases = np.random.default_rng(0).integers(0, 256, (2, 32, 32), np.uint8)
    a, b = predictor(1.0).canvas_probabilities(canvases), predictor(-3.0).canvas_probabilities(canvases)
    both = predictor(1.0, -3.0).canvas_probabilities(canvases)
    np.testing.assert_allclose(both, (a + b) / 2, rtol=1e-6)
    assert both.shape == (2, 1, 32, 32)


def test_labels_threshold_or_argmax():
    assert to_labels(np.array([[[0.2, 0.6]]])).tolist() == [[0, 1]]
    assert to_labels(np.array([[[0.1]], [[0.3]], [[0.6]]])).tolist() == [[2]]


def test_postprocessing_candidates():
    mask = np.zeros((40, 40), np.uint8)
    mask[2:20, 2:20] = 1
    mask[8:12, 8:12] = 0  # a hole
    mask[30:32, 30:32] = 1  # a speck of 4 px
    assert postprocess(mask, "fill_holes", 2)[8:12, 8:12].all()
    largest = postprocess(mask, "largest_component", 2)
    assert not largest[30:32, 30:32].any() and largest[2:8, 2:8].all()
    assert not postprocess(mask, "remove_small", 2, min_fraction=5 / 1600)[30:32, 30:32].any()
    assert postprocess(mask, "remove_small", 2, min_fraction=3 / 1600)[30:32, 30:32].all()
    assert (postprocess(mask, "none", 2) == mask).all()
    with pytest.raises(SegbenchError, match=r"unknown post-processing 'dilate'; available: \['fill_holes'"):
        postprocess(mask, "dilate", 2)


def test_the_predictor_applies_the_runs_chosen_postprocessing():
    image = np.zeros((64, 64), np.uint8)
    image[5:30, 5:30], image[50:52, 50:52] = 255, 255  # a lesion and a speck
    raw, _ = predictor(4.0, size=64).predict(image)
    cleaned, _ = predictor(4.0, size=64, postprocessing={"name": "largest_component"}).predict(image)
    assert raw[50:52, 50:52].all() and not cleaned[50:52, 50:52].any() and cleaned[10:25, 10:25].all()
