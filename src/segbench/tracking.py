"""MLflow mirror of the results: one experiment per dataset, a parent run per sweep, a child per pair.

Results on disk are the source of truth; MLflow mirrors them for the UI. With the default
SQLite store, every write happens under an inter-process file lock beside the database,
so parallel jobs never race to create the schema, the experiment or the parent run, and
never meet "database is locked".
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import time
from pathlib import Path

from filelock import FileLock
from mlflow.exceptions import MlflowException

log = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///mlflow.db"
SWEEP_ROLE = "segbench.role"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_URI)


def _flatten(prefix: str, value, out: dict) -> dict:
    if isinstance(value, dict):
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, sub, out)
    elif isinstance(value, list):
        out[prefix] = json.dumps(value)
    else:
        out[prefix] = str(value)
    return out


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


class Tracker:
    """Thin wrapper over ``MlflowClient``; every call is one locked transaction."""

    def __init__(self, dataset: str, uri: str | None = None):
        from mlflow.tracking import MlflowClient  # importing mlflow takes seconds: only when tracking

        self.uri = uri or tracking_uri()
        self.experiment_name = f"segbench-{dataset}"
        if self.uri.startswith("sqlite:///"):
            db = Path(self.uri.removeprefix("sqlite:///"))
            db.parent.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(f"{db}.lock", timeout=600)
        else:
            self._lock = contextlib.nullcontext()
        with self._lock:  # opening the store creates and migrates the schema on first use
            self.client = MlflowClient(self.uri)
            self.client.search_experiments(max_results=1)

    def _experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(self.experiment_name)
        return experiment.experiment_id if experiment else self.client.create_experiment(self.experiment_name)

    def _sweep_run_id(self, experiment_id: str, sweep: str) -> str:
        runs = self.client.search_runs([experiment_id], f"tags.`{SWEEP_ROLE}` = 'sweep' and "
                                                        f"tags.`mlflow.runName` = '{sweep}'", max_results=1)
        if runs:
            self.client.update_run(runs[0].info.run_id, status="RUNNING")
            return runs[0].info.run_id
        return self.client.create_run(experiment_id, run_name=sweep, tags={SWEEP_ROLE: "sweep"}).info.run_id

    def start_pair(self, sweep: str, pair: str, params: dict, tags: dict) -> str:
        """Create the pair's child run under the sweep's parent run (both made on demand)."""
        from mlflow.entities import Param

        with self._lock:
            experiment_id = self._experiment_id()
            parent = self._sweep_run_id(experiment_id, sweep)
            commit = git_commit()
            run = self.client.create_run(experiment_id, run_name=pair, tags={
                "mlflow.parentRunId": parent, SWEEP_ROLE: "pair",
                **({"mlflow.source.git.commit": commit} if commit else {}), **tags})
            flat = _flatten("", params, {})
            self.client.log_batch(run.info.run_id, params=[Param(k, v[:6000]) for k, v in flat.items()])
        return run.info.run_id

    def resume_pair(self, run_id: str) -> str | None:
        """Reopen a killed job's child run; None when this store does not have it."""
        with self._lock:
            try:
                self.client.update_run(run_id, status="RUNNING")
            except MlflowException:
                return None
        return run_id

    def log_history(self, run_id: str, history: list[dict]) -> None:
        """Log the epochs of ``history`` that the run does not have yet (after a resume)."""
        with self._lock:
            logged = {m.step for m in self.client.get_metric_history(run_id, "val_dice")}
        for row in history:
            if row["epoch"] not in logged:
                self.log_metrics(run_id, {k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])

    def log_model(self, run_id: str, model, input_example, registered_name: str) -> None:
        """Log ``model`` (the best checkpoint) to the run and register it as a version of ``registered_name``."""
        import mlflow
        import torch

        with self._lock:
            mlflow.set_tracking_uri(self.uri)
            with mlflow.start_run(run_id=run_id):
                mlflow.pytorch.log_model(model, name="model", input_example=input_example,
                                         registered_model_name=registered_name, serialization_format="pickle",
                                         pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        batch = [Metric(k, float(v), stamp, step) for k, v in metrics.items() if v == v]  # skip NaN
        with self._lock:
            try:
                self.client.log_batch(run_id, metrics=batch)
            except MlflowException as exc:  # e.g. the run was made against another tracking store
                log.warning("MLflow run %s: metrics not mirrored (%s)", run_id, exc.message)

    def end(self, run_id: str, status: str = "FINISHED") -> None:
        with self._lock:
            self.client.set_terminated(run_id, status)

    def finish_sweep(self, sweep: str, metrics: dict[str, float], tags: dict[str, str], files: list[Path]) -> None:
        """Log the comparison onto the parent run and close it."""
        with self._lock:
            parent = self._sweep_run_id(self._experiment_id(), sweep)
            for key, value in tags.items():
                self.client.set_tag(parent, key, value)
            for path in files:
                self.client.log_artifact(parent, str(path))
        self.log_metrics(parent, metrics)
        self.end(parent)
