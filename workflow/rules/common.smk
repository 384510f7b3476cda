# Validated config, the data contract's paths, and helpers shared by the rules.
from pathlib import Path

from snakemake.utils import validate

validate(config, Path(workflow.basedir) / "workflow" / "schemas" / "params.schema.yaml")

DATASET = config["dataset"]["name"]
RAW = f"data/raw/{DATASET}"
PROCESSED = multiext(f"data/processed/{DATASET}/", "images.npy", "masks.npy", "meta.csv")
SPLIT = [f"data/splits/{DATASET}.csv", f"data/splits/{DATASET}_counts.csv", f"data/splits/{DATASET}_leakage.json"]
RUN = "results/runs/{arch}__{loss}"
PAIRS = dict(arch=config["sweep"]["architectures"], loss=config["sweep"]["losses"])
REPORT = ["results/report/comparison.xlsx", "results/report/comparison.md"]


wildcard_constraints:
    arch="|".join(config["sweep"]["architectures"]),
    loss="|".join(config["sweep"]["losses"]),


def code(*parts):
    """A stage's own source (modules or packages under src/segbench), as in dvc.yaml's deps:
    editing it reruns the stage."""
    paths = [Path("src/segbench", part) for part in parts]
    return sorted(str(f) for p in paths for f in (p.glob("*.py") if p.is_dir() else [p]))


def options(section, *keys):
    """A params section (or some of its keys): a change reruns exactly the jobs that use it."""
    return {k: config[section][k] for k in keys} if keys else config[section]
