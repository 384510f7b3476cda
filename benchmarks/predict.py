"""Bone Detect's latency: one 512 px X-ray through the web API against the bare model forward pass.

The thesis's model (Attention U-Net, 32 base channels) at its size (512 px), on the CPU. The API side
is a real HTTP request over loopback to `segbench serve`'s app under uvicorn: upload, decode,
resize and pad, forward, resample to the original size, threshold, lesion table, and the pictures in the
JSON answer (image and probability as JPEG, overlay and mask as PNG, at most 1,024 px but the mask). The forward
side is the same model on the same preprocessed tensor.
Runs alternate; medians are compared.

    python benchmarks/predict.py [--repeats 15] [--threads 2] [--quick]
"""

from __future__ import annotations

import io
import statistics
import tempfile
import threading
import time
from pathlib import Path

import _common as bench
import numpy as np
import requests
import torch
import uvicorn
from PIL import Image

from segbench import paths
from segbench.apps.runs import Run
from segbench.apps.serve import create_app
from segbench.data.images import Geometry, normalise
from segbench.io import write_json
from segbench.models import build_model


def make_run(folder: Path, arch: dict, size: int) -> Path:
    """A seed folder holding one trained fold of ``arch`` as training leaves it, checkpoint and train.json (random
    weights: timing only)."""
    torch.manual_seed(0)
    model = build_model(arch, 1, 2)
    fold = folder / "seed0" / "folds" / "fold0"
    fold.mkdir(parents=True)
    torch.save({"model": model.state_dict(), "arch_cfg": arch, "mean": [0.4], "std": [0.25], "in_channels": 1,
                "classes": 2, "class_names": ["background", "tumour"], "size": size, "epoch": 1},
               fold / paths.CHECKPOINT)
    write_json(fold / paths.TRAINED, {"arch": "attention_unet", "loss": "dice_focal", "seed": 0, "fold": 0,
                                      "epochs": 1, "best_epoch": 1})
    return folder / "seed0"


def xray(size: int) -> bytes:
    rng = np.random.default_rng(0)
    pixels = rng.integers(20, 120, (size, size), np.uint8)
    pixels[size // 3:size * 3 // 5, size * 2 // 5:size * 2 // 3] += 100
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def main() -> None:
    parser = bench.parser(__doc__, repeats=2, size=128, width=8)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:<k>: the API and the bare "
                                                        "forward both run there")
    parser.add_argument("--size", type=int, default=512, help="the X-ray's and the model's size (the thesis's 512)")
    parser.add_argument("--width", type=int, default=32, help="the Attention U-Net's base channels (the thesis's 32)")
    args = bench.parse(parser)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    arch = {"family": "attention_unet", "base_channels": args.width, "dropout": 0.3}
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp), arch, args.size)
        app = create_app([Run("attention_unet__dice_focal/seed0", run, None)], "attention_unet__dice_focal/seed0",
                         device=device)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}/api/predict"
        image = xray(args.size)
        model = build_model(arch, 1, 2).eval().to(device)
        model.load_state_dict(torch.load(run / "folds/fold0/model_best.pt", weights_only=True)["model"])
        canvas = Geometry.fit(args.size, args.size, args.size).place(Image.open(io.BytesIO(image)).convert("L"))
        tensor = normalise(canvas[None], [0.4], [0.25]).to(device)

        def api():
            answer = requests.post(url, files={"file": ("xray.png", image)}, timeout=120)
            answer.raise_for_status()

        def forward():
            with torch.inference_mode():
                model(tensor)
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        times = {"api": [], "forward": []}
        for fn in (api, forward):  # warm-up: the server loads and caches the model on its first request
            fn()
        for _ in range(args.repeats):
            for name, fn in (("api", api), ("forward", forward)):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        server.should_exit = True
        thread.join(timeout=10)
    api_s, forward_s = statistics.median(times["api"]), statistics.median(times["forward"])
    print(bench.heading(f"Attention U-Net ({args.width} base channels), {args.size}x{args.size} X-ray, on {device}, "
                        f"{args.threads} threads, median of {args.repeats} alternating runs"))
    print(f"web API, end to end : {api_s * 1000:7.0f} ms")
    print(f"model forward only  : {forward_s * 1000:7.0f} ms")
    print(f"API overhead        : {api_s / forward_s - 1:7.2f} x the forward (target <= 0.2)")


if __name__ == "__main__":
    main()
