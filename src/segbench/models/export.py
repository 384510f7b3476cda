"""ONNX export of a trained model, for deployment outside PyTorch."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch

from segbench import SegbenchError
from segbench.io import atomic_path


def export_onnx(model: torch.nn.Module, in_channels: int, size: int, path: Path) -> Path:
    """Write ``model`` (eval mode) as ONNX with input "image" (batch, C, size, size) and output "logits".

    The batch dimension is dynamic. Uses torch.export (the dynamo exporter).

    Raises:
        SegbenchError: an operation ONNX cannot express, naming the model.
    """
    model = model.eval().cpu()
    example = torch.zeros(2, in_channels, size, size)
    batch = {"x": {0: torch.export.Dim("batch", min=1)}}
    try:
        with atomic_path(path) as tmp, contextlib.redirect_stdout(io.StringIO()):  # the exporter's chatter
            torch.onnx.export(model, (example,), tmp, dynamo=True, external_data=False, dynamic_shapes=batch,
                              input_names=["image"], output_names=["logits"])
    except (torch.onnx.errors.OnnxExporterError, RuntimeError) as exc:
        raise SegbenchError(f"{type(model).__name__}: ONNX export failed: {str(exc).splitlines()[0]}") from None
    return path
