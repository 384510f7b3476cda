"""What the tests share: the tiny params, project folders, the venv's tools and a loopback HTTP server."""

from __future__ import annotations

import contextlib
import copy
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import yaml

from segbench import paths
from segbench.config import validate_params

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# The repository's params.yaml (dvc.yaml needs every key it names), shrunk to run in seconds.
TINY = yaml.safe_load((REPO / "params.yaml").read_text())
TINY["synthetic"].update(n_images=48, normal_fraction=0.1)
TINY["preprocess"]["size"] = 32
TINY["train"].update(epochs=1, batch_size=8, resume_every_minutes=0)  # resume.pt every epoch, as the tests kill jobs
TINY["sweep"].update(name="tiny", architectures=["smp_unet", "attention_unet"], losses=["dice", "dice_focal"])
TINY["architectures"]["attention_unet"]["base_channels"] = 4
# A 0.4 M-parameter smp U-Net (resnet18's is 14 M): its resume.pt is 5 MB, not 170 MB, so a suite run
# writes a few GB to its temp folder, not tens.
TINY["architectures"]["smp_unet"].update(encoder="tu-mobilenetv3_small_050", decoder_channels=[32, 16, 8, 8, 8])
DATASET = "synthetic"
SWEEP = paths.Sweep(DATASET, "tiny")  # where the tiny sweep's runs and report go
PAIRS = [(a, l) for a in TINY["sweep"]["architectures"] for l in TINY["sweep"]["losses"]]


def paper_models() -> list[str]:
    from segbench.models import MODELS

    return [n for n in MODELS.names() if not n.startswith("smp_")]


PAPER = paper_models()


def small(name: str, **extra) -> dict:
    """Options that keep an entry small enough for 2 CPU cores (widths, not structure)."""
    if name.startswith("smp_"):
        return extra
    cfg = {"base_channels": 4, **extra}
    if name.startswith("nnunet_"):
        cfg = {"stages": 4, **cfg}  # a size multiple of 8, as the tiny canvases need
    if name == "transunet":
        cfg.update(hidden=16, layers=1, heads=2, img_size=64)
    return cfg


def build(name: str, in_channels: int = 1, classes: int = 2, seed: int = 0, **extra):
    """A small model of registry entry ``name``, with seeded weights."""
    import torch

    from segbench.models import create_model

    torch.manual_seed(seed)
    return create_model(name, in_channels, classes, **small(name, **extra))


def valid_sizes(name: str) -> tuple[int, int]:
    """Two input sizes the entry takes (the least above 64, and 32 more)."""
    model = build(name)
    first = max(64, -(-model.min_size // model.size_multiple) * model.size_multiple)
    return first, first + 32


def tiny_params(**train) -> dict:
    """Validated tiny params, with ``train`` options overridden."""
    params = validate_params(copy.deepcopy(TINY))
    params["train"].update(train)
    return params


def with_dataset(params: dict, **entry) -> dict:
    """``params`` on one other dataset, written with the one-dataset shorthand ``dataset: {name: ..., ...}``."""
    params = copy.deepcopy(params)
    del params["datasets"], params["sweep"]["datasets"]
    params["dataset"] = entry
    return params


def tiny_view(**train) -> dict:
    """The tiny params as the synthetic dataset's stages see them (``config.dataset_params``)."""
    from segbench.config import dataset_params

    return dataset_params(tiny_params(**train), DATASET)


def make_project(root: Path, params: dict) -> Path:
    """A copy of the workflow (Snakefile, dvc.yaml, workflow/, src/) with its own params.yaml."""
    for name in ("Snakefile", "dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(REPO / name, root / name)
    for name in ("workflow", "src"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def results_copy(swept: Path, root: Path) -> Path:
    """A writable copy of a trained project's params, data and results in ``root``, without its MLflow store."""
    shutil.copytree(swept / "data", root / "data")
    shutil.copytree(swept / "results", root / "results")
    shutil.copy(swept / "params.yaml", root / "params.yaml")
    return root


def tool_env(project: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment for the venv's tools (segbench, snakemake, dvc, mlflow): its bin first on PATH, no
    MLFLOW_TRACKING_URI but the one given, and in a ``project`` its own copy of the code (as a checkout runs
    it: its code dependencies are then src/segbench/... inside the project)."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    env["DVC_NO_ANALYTICS"] = "1"  # `dvc init` would start a daemon that reports to DVC's servers
    if project is not None and (project / "src" / "segbench").is_dir():
        env["PYTHONPATH"] = str(project / "src")
    return {**env, **extra}


def run(cwd: Path, *command: str, env: dict | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env or tool_env(cwd), capture_output=True, text=True)
    if done.returncode:
        logs = "\n".join(f"== {p}\n{p.read_text()[-3000:]}" for p in cwd.glob("logs/**/*.log"))
        raise AssertionError(f"{' '.join(command)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}\n{logs}")
    return done.stdout + done.stderr


def new_project(root: Path, params: dict | None = None) -> Path:
    """A git + DVC project of the workflow with the tiny params (or ``params``)."""
    make_project(root, copy.deepcopy(params or TINY))
    run(root, "git", "init", "-q")
    run(root, "dvc", "init", "-q")
    return root


def metrics_of(root: Path, where: paths.Sweep = SWEEP, pairs=PAIRS, seed: int = 0) -> dict:
    """Every pair's metrics.json (results only: timings are in timing.json)."""
    import json

    return {pair: json.loads((root / where.seed(*pair, seed) / "metrics.json").read_text()) for pair in pairs}


@contextlib.contextmanager
def serve(files: dict[str, bytes], cut_once: set[str] = frozenset()):
    """Serve ``files`` (name -> bytes) on 127.0.0.1 with HTTP Range support; /redirect -> /file.

    Yields (base url, state); state["requests"] lists (path, Range header). The first full
    request to a path in ``cut_once`` is cut off half-way, as a dropped connection would.
    """
    state = {"requests": [], "cut": set(cut_once)}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            state["requests"].append((self.path, self.headers.get("Range")))
            if self.path == "/redirect":
                self.send_response(302)
                self.send_header("Location", "/file")
                self.end_headers()
                return
            data = files.get(self.path.lstrip("/"))
            if data is None:
                self.send_error(404)
                return
            start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
            body = data[start:]
            self.send_response(206 if start else 200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.path in state["cut"] and not start:
                state["cut"].discard(self.path)
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.connection.shutdown(2)
                return
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}", state
    finally:
        httpd.shutdown()


@contextlib.contextmanager
def asgi_server(app):
    """``app`` (FastAPI) under a real uvicorn on a free loopback port; yields its base URL."""
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def mlflow_server(backend_uri: str, folder: Path, workers: int = 4):
    """A real `mlflow server` on a free loopback port over ``backend_uri``, its artifacts and log in ``folder``,
    with ``workers`` worker processes (MLflow's default 4; each costs a second or more of start-up); yields its
    URL once /health answers."""
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = folder / "mlflow-server.log"
    server = subprocess.Popen([str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
                               "--workers", str(workers), "--backend-store-uri", backend_uri,
                               "--artifacts-destination", str(folder / "artifacts")],
                              stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def planned_jobs(cwd: Path, *extra: str) -> list[str]:
    """Jobs a dry run would execute, as 'rule' or 'rule:arch,loss'."""
    out = run(cwd, "snakemake", "--cores", "1", "--dry-run", *extra)
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        head = re.match(r"(?:local)?rule (\w+):", block.strip())
        if head and head.group(1) != "all":
            wild = re.search(r"arch=(\w+), loss=(\w+)", block)
            jobs.append(head.group(1) + (f":{wild.group(1)},{wild.group(2)}" if wild else ""))
    return sorted(jobs)
