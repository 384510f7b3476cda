"""The data contract: where each stage leaves its outputs (relative to the project root).

A pair is trained once per (seed, fold): ``results/runs/<arch>__<loss>/seed<s>/folds/fold<f>/``.
Without cross-validation there is one fold, fold 0, whose validation images are the split's
val subset. The pair's evaluation for a seed (the fold ensemble on the test images, the
folds' out-of-fold predictions on their val images) sits one level up, in ``seed<s>/``:
dvc.yaml can then make it depend on the ``folds/`` folder without knowing how many folds there are.
"""

from pathlib import Path


def archive_dir(dataset: str) -> Path:
    """Downloaded archives: kept apart from the extracted tree, which Snakemake clears before a rerun."""
    return Path("data/archives") / dataset


def raw_dir(dataset: str) -> Path:
    return Path("data/raw") / dataset


def processed_dir(dataset: str) -> Path:
    return Path("data/processed") / dataset


def split_csv(dataset: str) -> Path:
    return Path("data/splits") / f"{dataset}.csv"


def split_counts_csv(dataset: str) -> Path:
    return Path("data/splits") / f"{dataset}_counts.csv"


def split_leakage_json(dataset: str) -> Path:
    return Path("data/splits") / f"{dataset}_leakage.json"


RUNS_DIR = Path("results/runs")


def run_name(arch: str, loss: str) -> str:
    """A pair's name, and its folder's under results/runs/."""
    return f"{arch}__{loss}"
REPORT_DIR = Path("results/report")


def pair_dir(arch: str, loss: str) -> Path:
    return RUNS_DIR / run_name(arch, loss)


def seed_dir(arch: str, loss: str, seed: int) -> Path:
    """One replicate of a pair: its evaluation outputs, and its folds under ``folds/``."""
    return pair_dir(arch, loss) / f"seed{seed}"


def fold_dir(arch: str, loss: str, seed: int, fold: int) -> Path:
    """One training run: the model trained with ``seed`` on every fold but ``fold``."""
    return seed_dir(arch, loss, seed) / "folds" / f"fold{fold}"
