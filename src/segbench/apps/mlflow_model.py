"""The MLflow model of a trained run (a pair's seed: its fold models and their post-processing).

An MLflow pyfunc "from code": MLflow stores this file and runs it to load the model, so loading
unpickles nothing, and the weights load with ``torch.load(weights_only=True)``.

Input: a DataFrame with one column, ``image``: each row an image file's bytes (PNG, JPEG, TIFF, BMP
or DICOM; base64 in JSON requests). Output: ``mask_png`` (the mask at the image's own size, PNG
bytes, class c stored as c * 255 // (K - 1)), ``lesion_count`` and ``lesions`` (JSON).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class SegbenchModel(PythonModel):
    def load_context(self, context) -> None:
        from segbench.predict.predictor import Predictor

        run = json.loads(Path(context.artifacts["run"]).read_text())
        checkpoints = [Path(context.artifacts[key]) for key in sorted(context.artifacts) if key.startswith("fold")]
        self.predictor = Predictor.from_checkpoints(checkpoints, run["postprocessing"], run["run"],
                                                    map_location="cpu")

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        from segbench.apps.drawing import mask_image, png_bytes
        from segbench.apps.files import describe

        rows = []
        for data in model_input["image"]:
            _, mask, probability = self.predictor.predict_file(bytes(data))
            record = describe(self.predictor, mask, probability)
            rows.append({"mask_png": png_bytes(mask_image(mask, self.predictor.classes)),
                         "lesion_count": record["lesion_count"], "lesions": json.dumps(record["lesions"])})
        return pd.DataFrame(rows, columns=["mask_png", "lesion_count", "lesions"])


mlflow.models.set_model(SegbenchModel())
