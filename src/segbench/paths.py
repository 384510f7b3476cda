"""The data contract: where each stage leaves its outputs (relative to the project root)."""

from pathlib import Path

from segbench.config import run_name


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


def run_dir(arch: str, loss: str) -> Path:
    return Path("results/runs") / run_name(arch, loss)


REPORT_DIR = Path("results/report")
