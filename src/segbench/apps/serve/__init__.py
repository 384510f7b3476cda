"""Bone Detect: the thesis's upload page, for any trained pair (FastAPI; a plain HTML page, no build step).

``create_app(runs, default)`` takes the trained runs by name; a request names a run, never a path,
so nothing a client sends reaches the filesystem. Routes stay thin and call the inference layer.
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading
from collections.abc import Callable
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import HTMLResponse
from PIL import Image

from segbench import SegbenchError, devices
from segbench.apps import drawing as draw
from segbench.apps.files import describe
from segbench.apps.runs import Run
from segbench.data.images import TooLarge, load_image
from segbench.metrics.overlap import class_overlap, confusion_matrix
from segbench.predict.predictor import Predictor

MAX_PIXELS = 80_000_000  # far above any X-ray (BTXRD's largest are 12 MP), far below a decompression bomb
DISPLAY = 1024           # px: the longest side of the pictures the page shows (the mask download is full size)


def _data_uri(picture: Image.Image, kind: str = "PNG") -> str:
    out = io.BytesIO()
    picture.save(out, kind, **({"quality": 85} if kind == "JPEG" else {"compress_level": 1}))
    return f"data:image/{kind.lower()};base64," + base64.b64encode(out.getvalue()).decode()


async def _read(upload: UploadFile, limit: int, what: str) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"{what} is larger than the limit of {limit / 2**20:.0f} MB; compress or downscale "
                                 "it (the server's limit is set by segbench serve --max-upload-mb)")
    if not data:
        raise HTTPException(400, f"{what} is empty: choose the file again")
    return data


def pictures(model: Predictor, image: Image.Image, mask: np.ndarray, probability: np.ndarray,
             found: list[dict]) -> dict[str, str]:
    """What the page shows, as data URIs: the image and the probability (JPEG) and the coloured mask with
    numbered lesions (PNG with transparency), at most ``DISPLAY`` px; the mask to download, full size."""
    height, width = mask.shape
    scale = min(1.0, DISPLAY / max(height, width))
    shown = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = np.asarray(Image.fromarray(mask).resize(shown, Image.Resampling.NEAREST))
    return {"image": _data_uri(image.convert("RGB").resize(shown, Image.Resampling.BILINEAR), "JPEG"),
            "mask_overlay": _data_uri(draw.annotate(draw.colour_mask(small), found, scale)),
            "probability": _data_uri(draw.probability_image(
                np.asarray(Image.fromarray(probability).resize(shown, Image.Resampling.BILINEAR))), "JPEG"),
            "mask": _data_uri(draw.mask_image(mask, model.classes))}


class ServerError(Exception):
    """A problem on the server's side (its models, its files): a 5xx, never blamed on the upload."""


def exact_names(runs: list[Run], default: str | None) -> Callable[[str], Run]:
    """A run by its name as listed, or ``best``: the default run."""
    by_name = {run.name: run for run in runs}

    def find(name: str) -> Run:
        name = default if name == "best" else name
        if name not in by_name:
            raise SegbenchError(f"unknown run {name!r}; available: best, {', '.join(sorted(by_name))}")
        return by_name[name]
    return find


def create_app(runs: list[Run], default: str | None, max_upload_mb: float = 25.0,
               resolve: Callable[[str], Run] | None = None, device: torch.device | str = "cpu") -> FastAPI:
    """The web app over ``runs`` (best first); ``default`` is the run picked first. ``resolve`` finds the run a
    request names (``segbench serve`` passes ``runs.resolve``: every name ``segbench predict --run`` takes);
    by default, the names listed and ``best``. Models run on ``device``."""
    app = FastAPI(title="segbench Bone Detect", description="Research use only, not for diagnosis.")
    resolve = resolve or exact_names(runs, default)
    limit = int(max_upload_mb * 2**20)
    lock = threading.Lock()  # one prediction at a time: the models share the CPU threads
    device = torch.device(device)

    @lru_cache(maxsize=4)
    def predictor(path: Path) -> Predictor:
        return Predictor.from_run(path, map_location=device)

    def segment(run: Run, data: bytes, filename: str, truth: bytes | None) -> dict:
        """Everything one prediction takes; run in a worker thread, so the event loop keeps answering. A GPU is
        leased for the prediction alone, so a sweep on the same machine has it between requests."""
        with lock, devices.hold(device):
            try:
                model = predictor(run.path)
            except Exception as exc:  # the server's own files (a missing or corrupt checkpoint): not the upload's
                raise ServerError(f"run {run.name}: its model cannot be loaded on the server: {exc}") from None
            image, mask, probability = model.predict_file(data, max_pixels=MAX_PIXELS)
        record = {**describe(model, mask, probability), "run": run.name, "filename": filename}
        return {**record, "legend": [{"name": name, "colour": "#{:02x}{:02x}{:02x}".format(*draw.colour(c))}
                                     for c, name in enumerate(model.class_names) if c],
                "probability_scale": draw.heat_scale(),
                **pictures(model, image.resize((mask.shape[1], mask.shape[0])), mask, probability, record["lesions"]),
                **(_scores(mask, truth, model.classes) if truth else {})}

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return files("segbench.apps.serve").joinpath("page.html").read_text()

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "runs": len(runs)}

    @app.get("/api/runs")
    def list_runs() -> list[dict]:
        return [{"name": r.name, "test_dice": r.dice, "default": r.name == default} for r in runs]

    @app.post("/api/predict")
    async def predict(file: UploadFile = File(...), run: str | None = Form(None),
                      truth: UploadFile | None = File(None)) -> dict:
        try:
            chosen = resolve(run or default or "best")
        except SegbenchError as exc:
            raise HTTPException(404, str(exc)) from None
        name = file.filename or "the image"
        data = await _read(file, limit, name)
        mask = await _read(truth, limit, "the ground-truth mask") if truth is not None and truth.filename else None
        try:
            return await asyncio.to_thread(segment, chosen, data, name, mask)
        except ServerError as exc:
            raise HTTPException(500, str(exc)) from None
        except SegbenchError as exc:
            message = str(exc).replace("upload: ", f"{name}: ", 1)
            raise HTTPException(413 if isinstance(exc, TooLarge) else 415, message) from None

    return app


def _scores(mask: np.ndarray, data: bytes, classes: int) -> dict:
    """Dice and IoU of the prediction against an uploaded mask (any non-zero pixel is foreground in a
    binary task; class ids, or ids scaled as segbench writes them, otherwise)."""
    try:
        truth = np.asarray(load_image(data, "L", max_pixels=MAX_PIXELS)[0])
    except SegbenchError as exc:
        raise HTTPException(415, f"the ground-truth mask: {str(exc).removeprefix('upload: ')}") from None
    if truth.shape != mask.shape:
        raise HTTPException(422, f"the ground-truth mask is {truth.shape[1]}x{truth.shape[0]}, the image "
                                 f"{mask.shape[1]}x{mask.shape[0]}: upload the mask of this image, at its size")
    step = 255 // max(1, classes - 1)
    truth = (truth > 0).astype(np.uint8) if classes == 2 else np.where(truth % step == 0, truth // step, truth)
    matrix = confusion_matrix(mask, truth, classes)
    scores = [class_overlap(matrix, c) for c in range(1, classes)]
    return {"dice": float(np.mean([s["dice"] for s in scores])), "iou": float(np.mean([s["iou"] for s in scores]))}


def serve(runs: list[Run], default: str | None, host: str, port: int, max_upload_mb: float,
          resolve: Callable[[str], Run] | None = None, device: torch.device | str = "cpu") -> None:
    import uvicorn

    if not runs:
        raise SegbenchError("no trained run to serve: run the sweep first (`make demo`)")
    print(f"Bone Detect: http://{host}:{port}/  ({len(runs)} trained runs; research use only, not for diagnosis)")
    print(f"Models run on {device}.")
    uvicorn.run(create_app(runs, default, max_upload_mb, resolve, device), host=host, port=port, log_level="info")
