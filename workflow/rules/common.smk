# Validated config (the same checks as `segbench`), the data contract's paths, and rule helpers.
from segbench.config import validate_params
from segbench.dag import code_dependencies

# fills defaults; a bad key, name or option fails here
validate_params(config, source="params.yaml")

DATASET = config["dataset"]["name"]
SWEEP = config["sweep"]
RAW = f"data/raw/{DATASET}"
PROCESSED = multiext(
    f"data/processed/{DATASET}/",
    "images.npy",
    "masks.npy",
    "meta.csv",
    "masks_original.zip",
    "info.json",
)
SPLIT = multiext(f"data/splits/{DATASET}", ".csv", "_counts.csv", "_leakage.json")
SEED_DIR = "results/runs/{arch}__{loss}/seed{seed}"
FOLD_DIR = "results/runs/{arch}__{loss}/seed{seed}/folds/fold{fold}"
REPLICATES = dict(
    arch=SWEEP["architectures"], loss=SWEEP["losses"], seed=SWEEP["seeds"]
)
FIGURES = [
    "dice_matrix",
    "distributions",
    "pareto",
    "learning_curves",
    "critical_difference",
    "rank_stability",
    "strata",
    "cases",
]


wildcard_constraints:
    arch="|".join(SWEEP["architectures"]),
    loss="|".join(SWEEP["losses"]),
    seed=r"\d+",
    fold=r"\d+",


def code(stage):
    """The stage's source files, from its real imports (segbench.dag): editing one reruns the stage."""
    return code_dependencies(stage)


def options(section, *keys):
    """A params section (or some of its keys): a change reruns exactly the jobs that use it."""
    return {k: config[section][k] for k in keys} if keys else config[section]
