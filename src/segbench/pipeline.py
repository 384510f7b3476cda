"""The pipeline, defined once: its stages, the fields each iterates over, the params each reads, the files it
reads and writes, and the code it runs.

The Snakefile builds one rule per stage from ``STAGES``; ``dvc.yaml`` is generated from them
(``segbench dag --write``; a test checks the committed file). Both run the same ``segbench <stage>`` command
with the same outputs. The differences are what each tool can express:

- Snakemake expands a stage's inputs over the sweep's lists and knows each job's own code: a pair's train
  job depends on its architecture's module and its loss terms' modules (and what they import), and on their
  lines of the registry tables as params, so adding an architecture trains only its pairs.
- A DVC matrix stage has one dependency list for all its items: it depends on the folder a matrix writes
  into, and on the whole ``models/`` and ``losses/`` packages.

Code dependencies are read from the import statements with ``ast`` (nothing is imported): a stage runs its
``module``, which imports what it imports, function-level imports included.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from itertools import product
from pathlib import Path

import yaml

from segbench import SegbenchError, paths

SRC = Path(__file__).resolve().parent.parent  # the folder holding the segbench package
TARGET = re.compile(r"segbench(\.\w+)+(:\w+)?")  # a registry target naming a segbench module
CATALOGS = ("segbench.models.catalog", "segbench.losses.catalog", "segbench.baselines.catalog")  # per entry, not files
# a wildcard -> the params key listing its values
AXES = {"dataset": "sweep.datasets", "arch": "sweep.architectures", "loss": "sweep.losses", "seed": "sweep.seeds",
        "fold": "sweep.folds", "baseline": "sweep.baselines", "external": "evaluate.external"}
REFERENCES = "sweep.references"  # the datasets whose pairs train references (the gap at equal training size)
# the dataset view's sections that DVC reads from the dataset's entry of `datasets:` as well
PER_DATASET = ("dataset", "synthetic", "preprocess", "split")


@dataclass(frozen=True)
class Output:
    pattern: str
    cache: bool = True        # False: a small file kept in git (DVC's cache: false)
    metric: bool = False      # DVC's metrics: the headline `dvc metrics show` displays
    plot: bool = False        # DVC plot of val Dice per epoch (history.csv)
    directory: bool = False
    figure: str | None = None  # a report figure: Snakemake's report() shows it with its caption
    when: str | None = None    # written only when this params key is set (sweep.tune's figure)


@dataclass(frozen=True)
class Input:
    pattern: str
    over: tuple[str, ...] = ()  # fields Snakemake expands over the sweep's lists
    dvc: str | None = None      # the folder DVC depends on instead (it cannot list a matrix's outputs)
    datasets: str = AXES["dataset"]  # a job of a dataset this params list holds reads it (Snakemake)
    when: str | None = None     # read only when this params key is set (sweep.budget, sweep.tune); {previous}: the
                                # rung before the job's (none at 0)


@dataclass(frozen=True)
class Option:
    """A command-line option a stage's command takes besides its fields (``argparse``'s arguments)."""

    flag: str
    help: str
    type: type = str


@dataclass(frozen=True)
class Stage:
    name: str
    fields: tuple[str, ...]
    params: tuple[str, ...]     # keys of dataset_params(params, dataset), with {field}s
    inputs: tuple[Input, ...]
    outputs: tuple[Output, ...]
    module: str                 # the library module whose code (with its imports) the stage runs
    entries: tuple[str, ...] = ()  # "arch", "loss", "baseline": the registry entries whose modules it runs too
    gpu: bool = False           # counted as a resource; the job leases a device itself
    threads: str | None = None  # a params key, or "all" (Snakemake's --cores)
    help: str = ""              # `segbench <stage> --help`'s line
    run: str = ""               # "module:function" taking (params, args): the command; default apps.stages:<name>
    options: tuple[Option, ...] = ()
    runtime: Callable[[dict, dict], int] | None = None  # (params view, fields) -> minutes a cluster job may run
    datasets: str = AXES["dataset"]  # the params list of the datasets it runs on (DVC's matrix)
    when: str | None = None     # jobs only when this params key is set: sweep.budget's rungs (one stage per rung in
                                # dvc.yaml), sweep.tune's candidates

    @property
    def runner(self) -> str:
        return self.run or f"segbench.apps.stages:{self.name}"

    def command(self, fill=lambda field: f"{{{field}}}") -> str:
        return " ".join([f"segbench {self.name}", *(f"--{f} {fill(f)}" for f in self.fields)])


BASELINE_SECONDS_PER_ITERATION = 0.3  # nnU-Net 2d: a training step and its share of validation on a mid-range GPU


def baseline_runtime(params: dict, fields: dict) -> int:
    """Minutes a cluster job of one baseline fold may run: its iterations at BASELINE_SECONDS_PER_ITERATION, plus
    30 for its start and its final validation (nnU-Net's full 1000 x (250 + 50): 1,530 min); 60 for a baseline
    without such a schedule."""
    options = params["baselines"][fields["baseline"]]
    if not {"epochs", "iterations_per_epoch"} <= set(options):
        return 60
    iterations = options["epochs"] * (options["iterations_per_epoch"] + options.get("val_iterations_per_epoch", 0))
    return 30 + math.ceil(iterations * BASELINE_SECONDS_PER_ITERATION / 60)


def _files(pattern: str, names, **flags) -> tuple[Output, ...]:
    return tuple(Output(f"{pattern}/{name}", **flags.get(name, {})) for name in names)


_PROCESSED = tuple(Input(f"{paths.PROCESSED}/{name}") for name in paths.PROCESSED_FILES)
BUDGET, TUNE = "sweep.budget", "sweep.tune"
_FIGURE_WHEN = {"tuning": TUNE}  # a figure of what the sweep does only under a params key
_FIGURES = tuple(Output(f"{paths.REPORT}/figures/{name}.{suffix}", figure=name if suffix == "png" else None,
                        when=_FIGURE_WHEN.get(name)) for name in paths.FIGURES for suffix in paths.FIGURE_FORMATS)

def _baseline(pattern: str) -> str:
    """A pair's path pattern for a baseline's row: <baseline>__default, seed 0."""
    return (pattern.replace("{arch}", "{baseline}").replace("{loss}", paths.BASELINE_LOSS)
            .replace("{seed}", str(paths.BASELINE_SEED)))


def _external(pattern: str) -> str:
    """A dataset's path pattern for an ``evaluate.external`` dataset."""
    return pattern.replace("{dataset}", "{external}")


# evaluate scores the models on each external dataset's test images too (DVC: on any dataset's)
_EXTERNAL = (*(Input(_external(f"{paths.PROCESSED}/{name}"), ("external",), "data/processed")
               for name in paths.PROCESSED_FILES),
             Input(_external(paths.SPLIT), ("external",), "data/splits"))
BASELINE_FOLD, BASELINE_SEED = _baseline(paths.FOLD), _baseline(paths.SEED)
BASELINE_LATENCY = _baseline(paths.LATENCY)
_SCORED = tuple(name for name in paths.EVALUATE_FILES if name != paths.VAL_PREDICTIONS)  # what the report reads

# sweep.budget: a rung's run resumes the previous rung's, once that rung's selection has promoted it
_PREVIOUS = tuple(Input(pattern.replace("{rung}", "{previous}"), when=BUDGET) for pattern in (paths.SELECTION,
                                                                                             paths.RUNG))
# a run to train.epochs (train; under sweep.tune, tune) starts from its last rung, or its pruned one
_LAST_RUNG = (Input(paths.SELECTION.replace("{rung}", "{last}"), dvc=paths.RUNGS, when=BUDGET),
              Input(paths.RUNG, ("rung",), paths.RUNGS, when=BUDGET))

STAGES = (
    Stage("download", ("dataset",), ("dataset.name", "dataset.source", "dataset.checksum", "synthetic"), (),
          (Output(paths.RAW, directory=True),), "segbench.data.sources", help="fetch, verify and extract the dataset"),
    Stage("preprocess", ("dataset",), ("dataset.name", "dataset.include_normal", "dataset.border_as",
                                       "dataset.labels", "dataset.channels", "preprocess"),
          (Input(paths.RAW),), _files(paths.PROCESSED, paths.PROCESSED_FILES), "segbench.data.preprocess",
          threads="all", help="masks from annotations; resize and pad (on every CPU this job may use)"),
    Stage("split", ("dataset",), ("split",), (Input(f"{paths.PROCESSED}/meta.csv"),
                                              Input(f"{paths.PROCESSED}/info.json")),
          (Output(paths.SPLIT), Output(paths.SPLIT_COUNTS), Output(paths.SPLIT_LEAKAGE)), "segbench.data.split",
          help="stratified train/val/test split (and folds), and its leakage audit"),
    Stage("rung", ("dataset", "arch", "loss", "seed", "fold", "rung"),
          ("train", "architectures.{arch}", "losses.{loss}", "evaluate.resolution", "sweep.budget.min_epochs",
           "sweep.budget.eta", TUNE),
          (*_PROCESSED, Input(paths.SPLIT), *_PREVIOUS), (Output(paths.RUNG, directory=True),),
          "segbench.training.halving", ("arch", "loss"), gpu=True, threads="train.threads",
          help="sweep.budget: train one pair for one seed and fold (under sweep.tune: each of its candidates) to a "
               "rung's epochs, if the rung before promoted it", when=BUDGET),
    Stage("select", ("dataset", "rung"), ("sweep.budget", TUNE),
          (Input(paths.RUNG, ("arch", "loss", "seed", "fold"), paths.RUNGS + "/rung{rung}"),
           Input(paths.SELECTION.replace("{rung}", "{previous}"), when=BUDGET)),
          (Output(paths.SELECTION, cache=False),), "segbench.evaluation.selection",
          help="sweep.budget: the pairs (under sweep.tune: each pair's candidates) a rung promotes (successive "
               "halving: the best 1/eta by mean val Dice; a race: all but those tested worse than the leader) and "
               "those it prunes",
          when=BUDGET),
    Stage("tune", ("dataset", "arch", "loss", "seed", "fold", "candidate"),
          ("train", "architectures.{arch}", "losses.{loss}", "evaluate.resolution", TUNE),
          (*_PROCESSED, Input(paths.SPLIT), *_LAST_RUNG), (Output(paths.TUNE, directory=True),),
          "segbench.training.halving", ("arch", "loss"), gpu=True, threads="train.threads",
          help="sweep.tune: train one pair for one seed and fold with one candidate configuration (under "
               "sweep.budget: on from its last rung, or its pruned model)", when=TUNE),
    Stage("choose", ("dataset", "arch", "loss"), (TUNE,),
          (Input(paths.TUNE, ("candidate", "seed", "fold"), paths.PAIR + "/tuning"),),
          (Output(paths.TUNING, cache=False),), "segbench.tuning",
          help="sweep.tune: the pair's candidate with the best mean val Dice (test images unread)", when=TUNE),
    Stage("train", ("dataset", "arch", "loss", "seed", "fold"),
          ("train", "architectures.{arch}", "losses.{loss}", "evaluate.resolution"),
          (*_PROCESSED, Input(paths.SPLIT), *_LAST_RUNG,
           Input(paths.TUNING, when=TUNE), Input(paths.TUNE, ("candidate",), paths.PAIR + "/tuning", when=TUNE)),
          _files(paths.FOLD, paths.TRAIN_FILES, **{"history.csv": {"cache": False, "plot": True}}),
          "segbench.training.final", ("arch", "loss"), gpu=True, threads="train.threads",
          help="train one pair for one seed and fold (under sweep.budget: on from its last rung, or its pruned "
               "model; under sweep.tune: its chosen candidate's run)"),
    Stage("evaluate", ("dataset", "arch", "loss", "seed"),
          ("evaluate", "dataset.spacing_mm", "sweep.folds"),
          (*_PROCESSED, Input(paths.SPLIT), Input(paths.SPLIT_LEAKAGE),
           *(Input(f"{paths.FOLD}/{name}", ("fold",), f"{paths.SEED}/folds") for name in (paths.CHECKPOINT,
                                                                                         paths.TRAINED)),
           *_EXTERNAL),
          (*_files(paths.SEED, paths.EVALUATE_FILES, **{"metrics.json": {"cache": False}}),
           Output(f"{paths.SEED}/{paths.GENERALISATION}", directory=True)),
          "segbench.evaluation.evaluate", ("arch",), gpu=True, help="score one pair's seed on the test images"),
    Stage("reference", ("dataset", "arch", "loss", "seed"),
          ("train", "architectures.{arch}", "losses.{loss}", "evaluate", "dataset.spacing_mm"),
          (*_PROCESSED, Input(paths.SPLIT)), (Output(paths.REFERENCE, directory=True),),
          "segbench.evaluation.reference", ("arch", "loss"), gpu=True, threads="train.threads",
          help="train the pair in the held-out groups and on as many of the others' images, for the "
               "generalisation gap at equal training size (the datasets of sweep.references)",
          datasets=REFERENCES),
    Stage("latency", ("dataset", "arch"), ("architectures.{arch}", "preprocess"),
          (Input(f"{paths.PROCESSED}/{paths.INFO}"),), (Output(paths.LATENCY),), "segbench.evaluation.latency",
          ("arch",), gpu=True, help="time an architecture at the dataset's input size (one thread)"),
    Stage("baseline_prepare", ("dataset", "baseline"), ("sweep.folds",),
          (*_PROCESSED, Input(paths.SPLIT)), (Output(paths.BASELINE_DATA, directory=True),),
          "segbench.baselines", ("baseline",),  # one process (a profile may give more): it runs beside the pairs
          help="a baseline's own data from segbench's split (nnU-Net: its dataset, plan and preprocessing)"),
    Stage("baseline_train", ("dataset", "baseline", "fold"), ("baselines.{baseline}", "preprocess.size"),
          (*_PROCESSED, Input(paths.SPLIT), Input(paths.BASELINE_DATA)), (Output(BASELINE_FOLD, directory=True),),
          "segbench.baselines", ("baseline",), gpu=True, help="train a baseline on one fold of segbench's split",
          runtime=baseline_runtime),
    Stage("baseline_evaluate", ("dataset", "baseline"), ("evaluate", "dataset.spacing_mm", "sweep.folds"),
          (*_PROCESSED, Input(paths.SPLIT), Input(paths.SPLIT_LEAKAGE),
           Input(BASELINE_FOLD, ("fold",), f"{BASELINE_SEED}/folds"), *_EXTERNAL),
          (*_files(BASELINE_SEED, paths.EVALUATE_FILES, **{"metrics.json": {"cache": False}}),
           Output(f"{BASELINE_SEED}/{paths.GENERALISATION}", directory=True),
           Output(BASELINE_LATENCY)), "segbench.evaluation.evaluate", ("baseline",), gpu=True,
          help="score a baseline with segbench's evaluation"),
    Stage("report", ("dataset",), ("sweep", "evaluate", "statistics", "train", "preprocess", "losses"),
          (*_PROCESSED, Input(paths.SPLIT), Input(paths.SPLIT_COUNTS), Input(paths.SPLIT_LEAKAGE),
           Input(paths.LATENCY, ("arch",), f"{paths.SWEEP}/latency"),
           *(Input(f"{paths.SEED}/{name}", ("arch", "loss", "seed"), f"{paths.SWEEP}/runs") for name in _SCORED),
           *(Input(f"{paths.FOLD}/{name}", ("arch", "loss", "seed", "fold"), f"{paths.SWEEP}/runs")
             for name in (paths.TRAINED, paths.HISTORY, paths.TIMING)),
           Input(BASELINE_LATENCY, ("baseline",), f"{paths.SWEEP}/latency"),
           *(Input(f"{BASELINE_SEED}/{name}", ("baseline",), f"{paths.SWEEP}/runs") for name in _SCORED),
           Input(f"{paths.SEED}/{paths.GENERALISATION}", ("arch", "loss", "seed"), f"{paths.SWEEP}/runs"),
           Input(paths.REFERENCE, ("arch", "loss", "seed"), f"{paths.SWEEP}/runs", REFERENCES),
           Input(paths.TUNING, ("arch", "loss"), f"{paths.SWEEP}/runs", when=TUNE),
           Input(f"{BASELINE_SEED}/{paths.GENERALISATION}", ("baseline",), f"{paths.SWEEP}/runs"),
           Input(BASELINE_FOLD, ("baseline", "fold"), f"{paths.SWEEP}/runs")),
          (*_files(paths.REPORT, paths.REPORT_FILES, **{"statistics.json": {"cache": False},
                                                        paths.SUMMARY: {"cache": False, "metric": True}}),
           *_FIGURES, Output(paths.CROSS_INPUT, cache=False)), "segbench.report.build",
          help="comparison tables, statistics and figures of every pair",
          options=(Option("--mlflow-ui", "the MLflow UI the printed link opens (default: the tracking server, or "
                                         "`mlflow ui` on a local store at --mlflow-port)"),
                   Option("--mlflow-port", "the port `mlflow ui` listens on (default 5000)", int))),
    Stage("summary", (), ("sweep.datasets", "statistics.alpha"),
          (Input(paths.CROSS_INPUT, ("dataset",), f"{paths.CROSS_DATASET}/datasets"),),
          (*_files(paths.CROSS_DATASET, paths.CROSS_FILES, **{paths.CROSS_JSON: {"cache": False}}),
           *(Output(f"{paths.CROSS_DATASET}/figures/{paths.CROSS_FIGURE}.{suffix}")
             for suffix in paths.FIGURE_FORMATS)),
          "segbench.report.cross_dataset", help="the sweep across its datasets: mean ranks, Friedman, winners"),
)
BY_NAME = {stage.name: stage for stage in STAGES}


def stage(name: str) -> Stage:
    if name not in BY_NAME:
        raise SegbenchError(f"unknown stage {name!r}; stages: {list(BY_NAME)}")
    return BY_NAME[name]


# -- code dependencies ------------------------------------------------------------------------------------

def module_file(module: str) -> Path:
    path = SRC.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _with_parents(module: str) -> set[str]:
    """Importing a.b.c runs a/__init__.py and a/b/__init__.py too."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1)}


@cache
def imports(module: str) -> frozenset[str]:
    """The segbench modules ``module`` imports anywhere in it (function-level imports included), and those it
    names as a registry target (``"segbench.data.btxrd"``, ``"segbench.x.y:name"``), which load them."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(module_file(module).read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and TARGET.fullmatch(node.value):
            target = node.value.partition(":")[0]
            if module_file(target).exists():
                found |= _with_parents(target)
            continue
        if isinstance(node, ast.Import):
            names = [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [(node.module, a.name) for a in node.names]
        else:
            continue
        for name, attribute in names:
            if name.startswith("segbench"):
                found |= _with_parents(name)
                if attribute and module_file(f"{name}.{attribute}").exists():
                    found.add(f"{name}.{attribute}")
    return frozenset(found - {module})


def closure(module: str) -> set[str]:
    """``module`` and everything it imports, transitively; the registry tables are left out (per entry)."""
    seen, todo = set(), [*_with_parents(module)]
    while todo:
        current = todo.pop()
        if current not in seen and current not in CATALOGS and module_file(current).exists():
            seen.add(current)
            todo.extend(imports(current))
    return seen


def _relative(modules: set[str], root: Path | None = None) -> list[str]:
    """Source files relative to ``root`` (default: the project the package is in, ``src/segbench/...``)."""
    root = root or SRC.parent
    return sorted(str(module_file(m).relative_to(root)) for m in modules)


def _entries(stage_: Stage, params: dict, fields: dict) -> list:
    """The registry entries a job of ``stage_`` builds."""
    from segbench.baselines.catalog import BASELINES
    from segbench.losses import LOSSES
    from segbench.models import MODELS

    found = []
    if "arch" in stage_.entries:
        found.append(MODELS.entry(params["architectures"][fields["arch"]]["family"]))
    if "loss" in stage_.entries:
        found += [LOSSES.entry(term["term"]) for term in params["losses"][fields["loss"]]]
    if "baseline" in stage_.entries:
        found.append(BASELINES.entry(fields["baseline"]))
    return found


def job_code(stage_: Stage, params: dict, fields: dict) -> list[str]:
    """The source files whose edit reruns this job: its stage's module and, for a pair, its architecture's
    and loss terms' modules, each with what it imports. Relative to the working directory when the package
    is inside it (a checkout: ``src/segbench/...``), else absolute."""
    modules = closure(stage_.module)
    for entry in _entries(stage_, params, fields):
        modules |= closure(entry.target.partition(":")[0])
    inside = Path.cwd() in SRC.parents
    return _relative(modules, Path.cwd()) if inside else [str(module_file(m)) for m in sorted(modules)]


def sweep_code(params: dict) -> list[str]:
    """Every source file a job of the sweep in ``params`` runs, relative to the project (``src/segbench/...``):
    the code its results depend on, for a recorded figure to say when it went stale."""
    sweep, modules = params["sweep"], set()
    for stage_ in STAGES:
        if not _is_set(params, stage_.when):
            continue
        if "baseline" in stage_.fields:
            jobs = [{"baseline": b} for b in sweep["baselines"]]
        else:
            jobs = [{"arch": a, "loss": l} for a in (sweep["architectures"] if "arch" in stage_.fields else [None])
                    for l in (sweep["losses"] if "loss" in stage_.fields else [None])]
        for fields in jobs:
            modules |= closure(stage_.module)
            for entry in _entries(stage_, params, fields):
                modules |= closure(entry.target.partition(":")[0])
    return _relative(modules)


def job_entries(stage_: Stage, params: dict, fields: dict) -> list[str]:
    """The job's lines of the registry tables, as text: a Snakemake param, so editing one reruns its jobs."""
    return [entry.fingerprint() for entry in _entries(stage_, params, fields)]


def stage_code(stage_: Stage) -> list[str]:
    """What DVC's matrix stage depends on: its module's code and, for pairs, the whole model and loss packages
    (folders are listed as folders)."""
    listed = _relative(closure(stage_.module))
    folders = [f"src/segbench/{package}" for field, package in (("arch", "models"), ("loss", "losses"),
                                                                 ("baseline", "baselines"))
               if field in stage_.entries]
    return sorted([f for f in listed if not any(f.startswith(d + "/") for d in folders)] + folders)


# -- files ------------------------------------------------------------------------------------------------

class _Fields(dict):
    """Format fields; those not given stay ``{field}`` (Snakemake's wildcards)."""

    def __missing__(self, key):
        return "{" + key + "}"


def fill(pattern: str, params: dict, **fields) -> str:
    """``pattern`` with the sweep's name and first dataset and ``fields`` filled in, other fields left as
    ``{field}``."""
    return pattern.format_map(_Fields(fields, sweep=params["sweep"]["name"], first=params["sweep"]["datasets"][0]))


def rung_count(params: dict) -> int:
    """The rungs of sweep.budget's successive halving before the final training (0 without a budget)."""
    from segbench.budget import rungs

    return len(rungs(params))


def candidate_count(params: dict) -> int:
    """The candidates of sweep.tune's grid (0 without tuning)."""
    from segbench.tuning import candidates

    return len(candidates(params))


def _values(params: dict, field: str) -> list:
    """The values of a field in the sweep's params: its list (``AXES``), the rungs' or the candidates' numbers."""
    if field == "rung":
        return list(range(rung_count(params)))
    if field == "candidate":
        return list(range(candidate_count(params)))
    return _get(params, AXES[field])


_WHEN_FIELD = {BUDGET: "rung", TUNE: "candidate"}  # a ``when`` key is set when its field has values


def _is_set(params: dict, key: str | None) -> bool:
    return key is None or bool(_values(params, _WHEN_FIELD[key]))


def outputs(stage_: Stage, params: dict) -> list[Output]:
    """The stage's outputs a sweep of ``params`` writes (those whose ``when`` is set)."""
    return [output for output in stage_.outputs if _is_set(params, output.when)]


def figures(params: dict) -> list[str]:
    """The report figures a sweep of ``params`` draws (``paths.FIGURES``' names), in page order."""
    return [name for name in paths.FIGURES if _is_set(params, _FIGURE_WHEN.get(name))]


def _input_fields(item: Input, params: dict, fields: dict) -> dict | None:
    """The rung fields of an input read under sweep.budget, {} for another input; None when the job does not read
    it (its ``when`` unset, or rung 0's previous rung)."""
    if not _is_set(params, item.when):
        return None
    if item.when != BUDGET:
        return {}
    rung = int(fields.get("rung", 0))
    if "{previous}" in item.pattern and rung == 0:
        return None
    return {"previous": rung - 1, "last": rung_count(params) - 1}


def job_inputs(stage_: Stage, params: dict, fields: dict) -> list[str]:
    """A job's input files: each input pattern expanded over its ``over`` fields' lists in the params (``AXES``)."""
    files = []
    for item in stage_.inputs:
        budget = _input_fields(item, params, fields)
        if budget is None or "dataset" in fields and fields["dataset"] not in _get(params, item.datasets):
            continue
        for values in product(*(_values(params, f) for f in item.over)):
            files.append(fill(item.pattern, params, **fields, **budget, **dict(zip(item.over, values))))
    return files


# -- params -----------------------------------------------------------------------------------------------

def _get(view: dict, key: str):
    value = view
    for part in key.split("."):
        value = value[part]
    return value


FIRST_RUNG_IGNORES = "sweep.budget.eta"  # rung 0 trains to min_epochs whatever eta is: changing eta keeps it


def _reads(stage_: Stage, fields: dict) -> tuple[str, ...]:
    return tuple(k for k in stage_.params if not (k == FIRST_RUNG_IGNORES and str(fields.get("rung")) == "0"))


def job_params(stage_: Stage, view: dict, fields: dict) -> dict:
    """The values of the params a job reads (``view``: the dataset's params): a change to one reruns it."""
    return {(filled := key.format(**fields)): _get(view, filled) for key in _reads(stage_, fields)}


def _dvc_params(stage_: Stage, fixed: dict) -> list[str]:
    keys = []
    for key in _reads(stage_, fixed):
        section = key.split(".")[0]
        if section in PER_DATASET:  # an entry of datasets: holds the dataset section and its overrides
            keys += ["datasets.${item.dataset}"] + ([section] if section != "dataset" else [])
        else:
            keys.append(_dvc_path(key))
    return list(dict.fromkeys(keys))


# -- dvc.yaml ---------------------------------------------------------------------------------------------

def _dvc_field(match: re.Match) -> str:
    return {"sweep": "${sweep.name}", "first": "${sweep.datasets[0]}"}.get(match[1], f"${{item.{match[1]}}}")


def _dvc_path(pattern: str) -> str:
    return re.sub(r"\{(\w+)\}", _dvc_field, pattern)


def _dvc_stages(stage_: Stage, params: dict) -> dict[str, dict]:
    """A stage's entries in dvc.yaml: one, or one per rung of sweep.budget for a rung's stage (a matrix item
    cannot name the rung before its own); none for a stage whose ``when`` is unset."""
    if not _is_set(params, stage_.when):
        return {}
    if stage_.when != BUDGET:
        return {stage_.name: _dvc_stage(stage_, params, {})}
    return {f"{stage_.name}{r}": _dvc_stage(stage_, params, {"rung": r}) for r in range(rung_count(params))}


def _dvc_stage(stage_: Stage, params: dict, fixed: dict) -> dict:
    """A matrix stage over the stage's fields but those ``fixed``, whose values are written in."""
    out: dict = {}
    if stage_.fields:
        out["matrix"] = {field: _values(params, field) if field == "candidate" else  # the grid's, numbered
                         f"${{{stage_.datasets if field == 'dataset' else AXES[field]}}}"
                         for field in stage_.fields if field not in fixed}
    out["cmd"] = stage_.command(lambda field: fixed.get(field, f"${{item.{field}}}"))
    deps = []
    for item in stage_.inputs:
        budget = _input_fields(item, params, fixed)
        if budget is not None:
            deps.append(_dvc_path((item.dvc or item.pattern).format_map(_Fields(fixed, **budget))))
    out["deps"] = list(dict.fromkeys(deps)) + stage_code(stage_)
    out["params"] = _dvc_params(stage_, fixed)
    kinds: dict[str, list] = {"outs": [], "metrics": [], "plots": []}
    # One output kept while the stage reruns (persist): DVC then never restores the stage from its run cache
    # without running its command, which would leave Snakemake's record of the files stale (the command records
    # each run in Snakemake's metadata: apps.stages.record_in_snakemake). Files are written atomically anyway.
    persist = next((o for o in stage_.outputs if not o.directory and not o.plot and not o.figure and not o.metric),
                   None)
    for output in outputs(stage_, params):
        path = _dvc_path(output.pattern.format_map(_Fields(fixed)))
        if output is persist:
            kinds["outs"].append({path: {"persist": True, **({} if output.cache else {"cache": False})}})
        elif output.plot:
            kinds["plots"].append({path: {"cache": False, "x": "epoch", "y": "val_dice",
                                          "title": "val Dice per epoch"}})
        elif output.figure:  # `dvc plots show` renders the report's figures
            kinds["plots"].append(path)
        elif output.metric:
            kinds["metrics"].append({path: {"cache": False}})
        else:
            kinds["outs"].append(path if output.cache else {path: {"cache": False}})
    return out | {kind: paths_ for kind, paths_ in kinds.items() if paths_}


HEADER = """\
# Generated from segbench's pipeline definition (src/segbench/pipeline.py) by `segbench dag --write`;
# do not edit: a test checks that this file is what the definition generates. The Snakefile builds its
# rules from the same definition: same stages, same commands, same outputs.
"""


def dvc_yaml(params: dict) -> str:
    """dvc.yaml's text: one matrix stage per stage, iterating over the sweep's lists in params.yaml; its
    sweep.budget's rungs and sweep.tune's candidates written out."""
    stages = {name: entry for s in STAGES for name, entry in _dvc_stages(s, params).items()}
    return HEADER + yaml.safe_dump({"stages": stages}, sort_keys=False, width=120)


def check_dvc_yaml(params: dict, path: Path = Path("dvc.yaml"), source: str = "params.yaml") -> None:
    """Raises: SegbenchError when ``path`` is not what the pipeline definition generates for ``params``."""
    if not path.exists() or path.read_text() != dvc_yaml(params):
        raise SegbenchError(f"{path}: not what the pipeline definition generates for {source} (sweep.budget's rungs, "
                            "sweep.tune's candidates, or the code changed); run `segbench dag --write`")


def summary() -> str:
    """Every stage with its fields, params and code, for `segbench dag` (JSON)."""
    return json.dumps({s.name: {"fields": list(s.fields), "params": list(s.params), "command": s.command(),
                                "code": stage_code(s)} for s in STAGES}, indent=2)
