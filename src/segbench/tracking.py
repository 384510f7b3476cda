"""MLflow mirror of the results: one experiment per dataset, a parent run per (dataset, sweep), a child run
per training run (pair, seed, fold), and a registered model per (dataset, sweep).

Results on disk are the source of truth; MLflow mirrors them for the UI. Everything is keyed by
(dataset, sweep), as the results folder is, so a second dataset or sweep never re-parents, overwrites or
re-registers another's runs. The parent run is made race-free for any store: the first job creates the
registered model ``segbench-<dataset>-<sweep>``, which the store allows exactly once, and only the job that
managed it creates the parent run and records its id as a tag of that model; the others wait for the tag.
With the default SQLite store every write also happens under an inter-process file lock beside the
database, so parallel jobs never race to create the schema or meet "database is locked".

This module mirrors; it packages no model (``segbench.apps.mlflow_model`` does) and imports no torch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from pathlib import Path

from filelock import FileLock

from segbench.paths import RunId
from segbench.provenance import git_commit

log = logging.getLogger(__name__)

DEFAULT_DB = "mlflow.db"  # in the project folder
ROLE = "segbench.role"
CURRENT = "segbench.current"  # "yes" on a training's latest run, "no" on the runs a rerun superseded
SWEEP_RUN_TAG = "segbench.sweep_run_id"
KIND = {"mlflow.experimentKind": "custom_model_development"}  # MLflow 3's "Machine learning" view, not GenAI
SHARED_VIEW = "mlflow.sharedViewState."  # + key: a saved runs-table view; the UI opens it by ?viewStateShareKey=key
VIEW_COLUMNS = ("test_dice", "test_dice_ci_low", "test_dice_ci_high", "test_hd95", "test_nsd", "latency_ms_cpu",
                "parameters_m")


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else the project's mlflow.db, by absolute path: MLflow caches a store by its URI,
    so a relative one would keep pointing at the first project a process used."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(DEFAULT_DB).resolve()}"


def _flatten(prefix: str, value, out: dict) -> dict:
    if isinstance(value, dict):
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, sub, out)
    elif isinstance(value, list):
        out[prefix] = json.dumps(value)
    else:
        out[prefix] = str(value)
    return out


def source_tags() -> dict:
    """The run source and git commit MLflow's UI shows in its run table."""
    commit = git_commit()
    return {"mlflow.source.type": "LOCAL", "mlflow.source.name": "segbench",
            **({"mlflow.source.git.commit": commit} if commit else {})}


def headline(metrics: dict, prefix: str = "test_") -> dict[str, float]:
    """The numeric top-level entries of a metrics.json, prefixed (``test_dice``, ``test_hd95``, ...)."""
    return {f"{prefix}{k}": float(v) for k, v in metrics.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v}


class Tracker:
    """Thin wrapper over ``MlflowClient`` for one (dataset, sweep); every call is one (locked, with SQLite)
    transaction."""

    def __init__(self, dataset: str, sweep: str, uri: str | None = None):
        from mlflow.tracking import MlflowClient  # importing mlflow takes seconds: only when tracking

        self.uri = uri or tracking_uri()
        self.dataset, self.sweep = dataset, sweep
        self.experiment_name = f"segbench-{dataset}"
        self.model_name = f"segbench-{dataset}-{sweep}"  # the registered model: this (dataset, sweep)'s runs
        if self.uri.startswith("sqlite:///"):
            db = Path(self.uri.removeprefix("sqlite:///"))
            db.parent.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(f"{db}.lock", timeout=600)
        else:
            self._lock = contextlib.nullcontext()
        with self._lock:  # opening the store creates and migrates the schema on first use
            self.client = MlflowClient(self.uri)
            self.client.search_experiments(max_results=1)

    def experiment_id(self) -> str:
        """Get or create the dataset's experiment; a concurrent creation loses to the store's unique name."""
        from mlflow.exceptions import MlflowException

        with self._lock:
            experiment = self.client.get_experiment_by_name(self.experiment_name)
            if experiment is None:
                try:
                    return self.client.create_experiment(self.experiment_name, tags=KIND)
                except MlflowException as exc:
                    if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                        raise
                    experiment = self.client.get_experiment_by_name(self.experiment_name)
            if experiment.tags.get("mlflow.experimentKind") != KIND["mlflow.experimentKind"]:
                self.client.set_experiment_tag(experiment.experiment_id, *next(iter(KIND.items())))
            return experiment.experiment_id

    def sweep_run(self, timeout: float = 120.0) -> str:
        """The (dataset, sweep)'s parent run id, created exactly once however many jobs ask at the same time."""
        from mlflow.exceptions import MlflowException

        experiment_id = self.experiment_id()
        sweep = self.model_name
        with self._lock:
            try:
                self.client.create_registered_model(sweep, description=f"segbench sweep '{self.sweep}' on dataset "
                                                                       f"'{self.dataset}'")
                won = True
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
                won = False
            if won:
                run = self.client.create_run(experiment_id, run_name=self.sweep, tags={
                    ROLE: "sweep", "segbench.dataset": self.dataset, "segbench.sweep": self.sweep, **source_tags()})
                self.client.set_registered_model_tag(sweep, SWEEP_RUN_TAG, run.info.run_id)
                return run.info.run_id
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                run_id = self.client.get_registered_model(sweep).tags.get(SWEEP_RUN_TAG)
                if run_id:
                    if self.client.get_run(run_id).info.lifecycle_stage != "active":
                        self.client.restore_run(run_id)  # deleted in the UI; restoring twice is harmless
                    return run_id
            if time.monotonic() > deadline:
                raise TimeoutError(f"MLflow: no parent run for sweep {self.sweep!r} on {self.dataset!r} after "
                                   f"{timeout:.0f} s")
            time.sleep(0.5)

    def start_training(self, arch: str, loss: str, seed: int, fold: int, logged: dict, tags: dict) -> str:
        """A child run for one training run, under the sweep's parent run. It is the current run of its (pair, seed,
        fold): an earlier run of the same one (a rerun after a params change) is tagged superseded, so the sweep's
        view lists one run per training, as the report does."""
        from mlflow.entities import Param

        parent = self.sweep_run()
        identity = {"segbench.dataset": self.dataset, "segbench.sweep": self.sweep, "segbench.arch": arch,
                    "segbench.loss": loss, "segbench.seed": str(seed), "segbench.fold": str(fold)}
        with self._lock:
            earlier = self.client.search_runs([self.experiment_id()], " and ".join(
                [f"tags.`{k}` = '{v}'" for k, v in identity.items()] + [f"tags.`{CURRENT}` = 'yes'"]))
            run = self.client.create_run(self.experiment_id(), run_name=str(RunId(arch, loss, seed, fold)), tags={
                "mlflow.parentRunId": parent, ROLE: "pair", CURRENT: "yes", **identity, **source_tags(), **tags})
            for old in earlier:
                self.client.set_tag(old.info.run_id, CURRENT, "no")
                self.client.set_tag(old.info.run_id, "segbench.superseded_by", run.info.run_id)
            flat = _flatten("", logged, {})
            self.client.log_batch(run.info.run_id, params=[Param(k, v[:6000]) for k, v in flat.items()])
        return run.info.run_id

    def resume(self, run_id: str) -> str | None:
        """Reopen a killed job's run; None when this store does not have it."""
        from mlflow.exceptions import MlflowException

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

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric
        from mlflow.exceptions import MlflowException

        stamp = int(time.time() * 1000)
        batch = [Metric(k, float(v), stamp, step) for k, v in metrics.items() if v == v]  # skip NaN
        with self._lock:
            try:
                self.client.log_batch(run_id, metrics=batch)
            except MlflowException as exc:  # e.g. the run was made against another tracking store
                log.warning("MLflow run %s: metrics not mirrored (%s)", run_id, exc.message)

    def log_test_metrics(self, run_ids: list[str | None], metrics: dict) -> None:
        """A seed's test metrics on each of its training runs."""
        for run_id in filter(None, run_ids):
            self.log_metrics(run_id, headline(metrics))

    def register(self, run_id: str, model_dir: Path, tags: dict[str, str]) -> None:
        """Log a saved MLflow model folder on ``run_id`` and register it as a version of this (dataset, sweep)'s
        model, tagged with ``tags``; a warning instead when this store lacks the run (a mirror: the job goes on)."""

        self.sweep_run()  # the registered model exists once its parent run does
        with self._lock:
            if not self._has(run_id, "model not registered"):
                return
            self.client.log_artifacts(run_id, str(model_dir), "model")
            self.client.create_model_version(self.model_name, f"runs:/{run_id}/model", run_id, tags=tags)

    def log_rung(self, run_id: str, decision: dict, pair: str, val_dice: float) -> None:
        """A rung's ``decision`` (``evaluation.selection.select``) on one training run: a run nested under it with
        the rung's val Dice, tagged with the decision; a pruned run's own run tagged with its rung too."""
        verdict = "promoted" if pair in decision["promoted"] else "pruned"
        with self._lock:
            if not self._has(run_id, "rung not mirrored"):
                return
            rung = self.client.create_run(self.experiment_id(), run_name=f"rung{decision['rung']}", tags={
                "mlflow.parentRunId": run_id, ROLE: "rung", "segbench.rung": str(decision["rung"]),
                "segbench.decision": verdict, "segbench.dataset": self.dataset, "segbench.sweep": self.sweep})
            self.client.log_metric(rung.info.run_id, "val_dice", val_dice, step=decision["epochs"])
            self.client.log_metric(rung.info.run_id, "epochs", decision["epochs"])
            self.client.set_terminated(rung.info.run_id)
            if verdict == "pruned":
                self.client.set_tag(run_id, "segbench.pruned_at_rung", str(decision["rung"]))

    def _has(self, run_id: str, otherwise: str) -> bool:
        """Whether this store has run ``run_id``; a warning saying ``otherwise`` when it does not (e.g. the run was
        made against another tracking store: a mirror, the job goes on)."""
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_run(run_id)
        except MlflowException as exc:
            log.warning("MLflow run %s: %s (%s)", run_id, otherwise, exc.message)
            return False
        return True

    def end(self, run_id: str, status: str = "FINISHED") -> None:
        with self._lock:
            self.client.set_terminated(run_id, status)

    def save_view(self) -> str:
        """Save the sweep's table view in the experiment (MLflow's shared view state, an experiment tag): its runs
        flat, best test Dice first, the ``VIEW_COLUMNS`` shown. Returns the view's key."""
        parent, key = self.sweep_run(), f"segbench-{self.dataset}-{self.sweep}"
        state = {"searchFilter": f"tags.`mlflow.parentRunId` = '{parent}' and tags.`{CURRENT}` = 'yes'",
                 "orderByKey": "metrics.`test_dice`",
                 "orderByAsc": False, "selectedColumns": [f"metrics.`{m}`" for m in VIEW_COLUMNS]}
        with self._lock:
            self.client.set_experiment_tag(self.experiment_id(), f"{SHARED_VIEW}{key}", json.dumps(state))
        return key

    def view_url(self, ui: str | None = None, port: int = 5000) -> str:
        """The link to the saved view (``save_view``) in the MLflow UI at ``ui``; by default the tracking server,
        or ``mlflow ui --port <port>``'s address for a local store."""
        from urllib.parse import quote

        base = (ui or (self.uri if self.uri.startswith("http") else f"http://127.0.0.1:{port}")).rstrip("/")
        key = f"segbench-{self.dataset}-{self.sweep}"
        return (f"{base}/#/experiments/{self.experiment_id()}/runs?workflowType=machine_learning"
                f"&viewStateShareKey={quote(key)}")

    def finish_sweep(self, metrics: dict[str, float], tags: dict[str, str], files: list[Path],
                     champion: str, per_run: dict[str, dict[str, float]]) -> None:
        """Log the report onto the parent run and close it; log ``per_run``'s numbers (the pair's Dice CI, its
        architecture's cost) on each training run; save the table view; give the registered model version of
        the run ``champion`` (``<pair>/seed<k>``) the alias ``champion``."""
        parent, sweep = self.sweep_run(), self.model_name
        for run_id, values in per_run.items():
            self.log_metrics(run_id, values)
        self.save_view()
        with self._lock:
            for key, value in tags.items():
                self.client.set_tag(parent, key, value)
            for path in files:
                self.client.log_artifact(parent, str(path), "report/figures" if path.parent.name == "figures"
                                         else "report")
            versions = self.client.search_model_versions(f"name = '{sweep}'")
            best = [v for v in versions if v.tags.get("segbench.run") == champion]
            if best:
                newest = max(best, key=lambda v: int(v.version))
                self.client.set_registered_model_alias(sweep, "champion", newest.version)
        self.log_metrics(parent, metrics)
        self.end(parent)
