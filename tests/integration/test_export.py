"""ONNX export: every registry entry, and a trained pair through `segbench export`."""

import copy
import shutil

import numpy as np
import onnxruntime
import pytest
import torch
import yaml

from segbench.models import MODELS
from segbench.models.export import export_onnx
from support import SWEEP, TINY, build, valid_sizes


def onnx_logits(path, images: torch.Tensor) -> np.ndarray:
    return onnxruntime.InferenceSession(str(path)).run(["logits"], {"image": images.numpy()})[0]


@pytest.mark.parametrize("name", MODELS.names())
def test_every_entry_exports_to_onnx_and_matches_pytorch(name, tmp_path):
    model = build(name).eval()
    size = valid_sizes(name)[0]
    path = export_onnx(model, 1, size, tmp_path / f"{name}.onnx")
    images = torch.randn(3, 1, size, size)  # a batch size the export did not trace with
    with torch.no_grad():
        expected = model(images).numpy()
    np.testing.assert_allclose(onnx_logits(path, images), expected, rtol=1e-3, atol=1e-4)
    assert [p.name for p in tmp_path.iterdir()] == [f"{name}.onnx"]  # no temp file left behind


def test_segbench_export_writes_the_trained_pair(prepared, tmp_path, monkeypatch):
    from segbench.apps.cli import main
    from segbench.predict.predictor import load_checkpoint

    shutil.copytree(prepared / "data", tmp_path / "data")
    params = copy.deepcopy(TINY)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--arch", "attention_unet", "--loss", "dice"]) == 0
    assert main(["export", "--arch", "attention_unet", "--loss", "dice"]) == 0
    run = tmp_path / SWEEP.fold("attention_unet", "dice", 0, 0)
    model, _ = load_checkpoint(run / "model_best.pt")
    images = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        expected = model.eval()(images).numpy()
    np.testing.assert_allclose(onnx_logits(run / "model.onnx", images), expected, rtol=1e-3, atol=1e-4)
