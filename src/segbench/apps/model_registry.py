"""A trained run (a pair's seed: its fold models and their post-processing) as an MLflow model, logged on its
first training run and registered as a version of the (dataset, sweep)'s model.

The model is an MLflow pyfunc "from code" (``mlflow_model.py``): MLflow stores that file and runs it to load
the model, so loading unpickles nothing, and the weights load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from segbench.tracking import Tracker


def log_run_model(tracker: Tracker, run_ids: list[str | None], run: str, metrics_json: Path,
                  checkpoints: dict[str, Path], example: bytes) -> None:
    """Save the run's pyfunc (its metrics.json and fold checkpoints as artifacts) and register it, tagged
    ``segbench.run = run``; nothing when no training run was tracked."""
    import mlflow
    import pandas as pd
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    run_ids = [r for r in run_ids if r]
    if not run_ids:
        return
    signature = ModelSignature(inputs=Schema([ColSpec("binary", "image")]),
                               outputs=Schema([ColSpec("binary", "mask_png"), ColSpec("long", "lesion_count"),
                                               ColSpec("string", "lesions")]))
    requirements = [f"torch=={torch.__version__.split('+')[0]}", "torchvision", "segmentation-models-pytorch",
                    "scipy", "pillow", "numpy", "pandas", "pydicom"]
    package = Path(__file__).resolve().parents[1]  # the segbench package, shipped with the model
    with tempfile.TemporaryDirectory() as tmp:  # saved, then logged by the tracker's client: no global state
        mlflow.pyfunc.save_model(
            f"{tmp}/model", python_model=str(Path(__file__).parent / "mlflow_model.py"),
            artifacts={"run": str(metrics_json), **{k: str(v) for k, v in checkpoints.items()}},
            signature=signature, input_example=pd.DataFrame({"image": [example]}), code_paths=[str(package)],
            pip_requirements=requirements)
        tracker.register(run_ids[0], Path(tmp) / "model", {"segbench.run": run})
