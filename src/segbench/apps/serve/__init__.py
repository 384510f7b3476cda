"""Bone Detect: the thesis's upload page, for any trained pair (FastAPI; a plain HTML page, no build step).

``create_app(runs, default)`` takes the trained runs by name; a request names a run, never a path,
so nothing a client sends reaches the filesystem. Routes stay thin and call the inference layer.
"""

from __future__ import annotations

import base64
import threading
from functools import lru_cache
from importlib.resources import files

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import HTMLResponse

from segbench import SegbenchError
from segbench.data.images import load_image
from segbench.apps import drawing as draw
from segbench.apps.files import describe
from segbench.predict.predictor import Predictor
from segbench.apps.runs import Run
from segbench.metrics.overlap import class_overlap, confusion_matrix

MAX_PIXELS = 80_000_000  # far above any X-ray (BTXRD's largest are 12 MP), far below a decompression bomb


def _data_uri(picture) -> str:
    return "data:image/png;base64," + base64.b64encode(draw.png_bytes(picture)).decode()


async def _read(upload: UploadFile, limit: int, what: str) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"{what} is larger than the limit of {limit / 2**20:.0f} MB")
    if not data:
        raise HTTPException(400, f"{what} is empty")
    return data


def create_app(runs: list[Run], default: str | None, max_upload_mb: float = 25.0) -> FastAPI:
    """The web app over ``runs`` (best first); ``default`` is the run picked first."""
    app = FastAPI(title="segbench Bone Detect", description="Research use only, not for diagnosis.")
    by_name = {run.name: run for run in runs}
    limit = int(max_upload_mb * 2**20)
    lock = threading.Lock()  # one prediction at a time: the models share the CPU threads

    @lru_cache(maxsize=4)
    def predictor(name: str) -> Predictor:
        return Predictor.from_run(by_name[name].path)

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return files("segbench.apps.serve").joinpath("page.html").read_text()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "runs": len(runs)}

    @app.get("/api/runs")
    def list_runs() -> list[dict]:
        return [{"name": r.name, "test_dice": r.dice, "default": r.name == default} for r in runs]

    @app.post("/api/predict")
    async def predict(file: UploadFile = File(...), run: str | None = Form(None),
                      truth: UploadFile | None = File(None)) -> dict:
        name = run or default
        if name not in by_name:
            raise HTTPException(404, f"unknown run {name!r}; available: {sorted(by_name)}")
        data = await _read(file, limit, "the image")
        model = predictor(name)
        try:
            with lock:
                image, mask, probability = model.predict_file(data, max_pixels=MAX_PIXELS)
        except SegbenchError as exc:
            status = 413 if "limit" in str(exc) else 415  # too many pixels (ours, or PIL's bomb guard)
            raise HTTPException(status, f"{file.filename}: not an image segbench can read (PNG, JPEG, TIFF, BMP "
                                        f"or DICOM): {str(exc).removeprefix('upload: ')}") from None
        image = image.resize((mask.shape[1], mask.shape[0]))
        record = {**describe(model, mask, probability), "run": name, "filename": file.filename,
                  "legend": [{"name": name, "colour": "#%02x%02x%02x" % draw.colour(c)}
                             for c, name in enumerate(model.class_names) if c],
                  "image": _data_uri(image.convert("RGB")),
                  "mask_overlay": _data_uri(draw.colour_mask(mask)), "probability": _data_uri(
                      draw.probability_image(probability)), "mask": _data_uri(draw.mask_image(mask, model.classes))}
        if truth is not None and truth.filename:
            record.update(_scores(mask, await _read(truth, limit, "the ground-truth mask"), model.classes))
        return record

    return app


def _scores(mask: np.ndarray, data: bytes, classes: int) -> dict:
    """Dice and IoU of the prediction against an uploaded mask (any non-zero pixel is foreground in a
    binary task; class ids, or ids scaled as segbench writes them, otherwise)."""
    try:
        truth = np.asarray(load_image(data, "L", max_pixels=MAX_PIXELS)[0])
    except SegbenchError as exc:
        raise HTTPException(415, f"the ground-truth mask is not an image: {exc}") from None
    if truth.shape != mask.shape:
        raise HTTPException(422, f"the ground-truth mask is {truth.shape[1]}x{truth.shape[0]}, the image "
                                 f"{mask.shape[1]}x{mask.shape[0]}")
    step = 255 // max(1, classes - 1)
    truth = (truth > 0).astype(np.uint8) if classes == 2 else np.where(truth % step == 0, truth // step, truth)
    matrix = confusion_matrix(mask, truth, classes)
    scores = [class_overlap(matrix, c) for c in range(1, classes)]
    return {"dice": float(np.mean([s["dice"] for s in scores])), "iou": float(np.mean([s["iou"] for s in scores]))}


def serve(runs: list[Run], default: str | None, host: str, port: int, max_upload_mb: float) -> None:
    import uvicorn

    if not runs:
        raise SegbenchError("no trained run to serve: run the sweep first (`make demo`)")
    print(f"Bone Detect: http://{host}:{port}/  ({len(runs)} trained runs; research use only, not for diagnosis)")
    uvicorn.run(create_app(runs, default, max_upload_mb), host=host, port=port, log_level="info")
