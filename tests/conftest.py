"""Shared fixtures: tiny params, a synthetic archive, preprocessed data and a project folder."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from segbench.config import validate_params

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# The repository's params.yaml (dvc.yaml needs every key it names), shrunk to run in seconds.
TINY = yaml.safe_load((REPO / "params.yaml").read_text())
TINY["synthetic"].update(n_images=48, normal_fraction=0.1)
TINY["preprocess"]["size"] = 32
TINY["train"].update(epochs=1, batch_size=8)
TINY["sweep"].update(name="tiny", architectures=["smp_unet", "attention_unet"], losses=["dice", "dice_focal"])
TINY["architectures"]["attention_unet"]["base_channels"] = 4


# history.csv columns that measure time and memory, not results
TIMING = ["seconds", "train_seconds", "val_seconds", "peak_memory_mb"]


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


def tiny_params(**train) -> dict:
    """Validated tiny params, with ``train`` options overridden."""
    params = validate_params(copy.deepcopy(TINY))
    params["train"].update(train)
    return params


def make_project(root: Path, params: dict) -> Path:
    """A copy of the workflow (Snakefile, dvc.yaml, workflow/, src/) with its own params.yaml."""
    for name in ("Snakefile", "dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(REPO / name, root / name)
    for name in ("workflow", "src"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def tool_env(**extra: str) -> dict[str, str]:
    """The environment for the venv's tools (segbench, snakemake, dvc, mlflow): its bin first on PATH, and
    no MLFLOW_TRACKING_URI but the one given."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return {**env, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **extra}


def run(cwd: Path, *command: str) -> str:
    done = subprocess.run(command, cwd=cwd, env=tool_env(), capture_output=True, text=True)
    if done.returncode:
        logs = "\n".join(f"== {p}\n{p.read_text()[-3000:]}" for p in cwd.glob("logs/**/*.log"))
        raise AssertionError(f"{' '.join(command)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}\n{logs}")
    return done.stdout + done.stderr


def new_project(root: Path) -> Path:
    make_project(root, copy.deepcopy(TINY))
    run(root, "git", "init", "-q")
    run(root, "dvc", "init", "-q")
    run(root, "dvc", "config", "core.analytics", "false")
    return root


@pytest.fixture(scope="session")
def snakemade(tmp_path_factory) -> Path:
    """A git + DVC project where the real `snakemake --cores 2` ran the tiny sweep. Shared: a test that
    changes it puts it back."""
    root = new_project(tmp_path_factory.mktemp("snakemake"))
    run(root, "snakemake", "--cores", "2")
    return root


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A tiny project folder, as the working directory, tracking to its own mlflow.db."""
    make_project(tmp_path, copy.deepcopy(TINY))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    """A folder where download -> preprocess -> split already ran on the tiny params (read-only use)."""
    from segbench.cli import main

    root = make_project(tmp_path_factory.mktemp("prepared"), copy.deepcopy(TINY))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for stage in ("download", "preprocess", "split"):
            assert main([stage]) == 0
    return root


@pytest.fixture(scope="session")
def swept(prepared, tmp_path_factory) -> Path:
    """A project where the tiny sweep (2 architectures x 2 losses, 2 epochs) was trained, evaluated and
    reported through the CLI, tracking to its own mlflow.db (read-only use)."""
    from segbench.cli import main

    root = tmp_path_factory.mktemp("swept")
    shutil.copytree(prepared / "data", root / "data")
    params = copy.deepcopy(TINY)
    params["train"]["epochs"] = 2
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        for arch in params["sweep"]["architectures"]:
            for loss in params["sweep"]["losses"]:
                assert main(["train", "--arch", arch, "--loss", loss]) == 0
                assert main(["evaluate", "--arch", arch, "--loss", loss]) == 0
        assert main(["report"]) == 0
    return root


@pytest.fixture
def data(prepared) -> tuple[Path, Path]:
    """(processed dir, split csv) of the prepared tiny dataset."""
    from segbench import paths

    return prepared / paths.processed_dir("synthetic"), prepared / paths.split_csv("synthetic")
