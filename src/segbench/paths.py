"""The data contract: every file a stage writes, relative to the project root. No other module spells a path.

Patterns are ``str.format`` templates over the pipeline's fields: ``{dataset}`` (a key of ``datasets:``),
``{sweep}`` (``sweep.name``), ``{arch}``, ``{loss}``, ``{seed}`` and ``{fold}``. Results are keyed by
(dataset, sweep), so a second dataset or sweep never touches another's files. A pair is trained once per
(seed, fold) in ``FOLD``; its evaluation for a seed (the fold ensemble on the test images, the folds'
out-of-fold predictions on their val images) sits one level up, in ``SEED``. Without cross-validation there
is one fold, fold 0, whose validation images are the split's val subset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# data/: one folder per dataset, shared by every sweep that uses it
ARCHIVES = "data/archives/{dataset}"  # downloads, kept apart from RAW, which Snakemake clears before a rerun
RAW = "data/raw/{dataset}"
PROCESSED = "data/processed/{dataset}"
IMAGES, MASKS, META, ORIGINAL_MASKS, INFO = "images.npy", "masks.npy", "meta.csv", "masks_original.zip", "info.json"
HASHES = "hashes.npy"  # each image's perceptual hashes: the leakage audit's input
PROCESSED_FILES = (IMAGES, MASKS, META, ORIGINAL_MASKS, HASHES, INFO)
SPLIT = "data/splits/{dataset}.csv"
SPLIT_COUNTS = "data/splits/{dataset}_counts.csv"
SPLIT_LEAKAGE = "data/splits/{dataset}_leakage.json"

# results/: one folder per (dataset, sweep)
SWEEP = "results/{dataset}/{sweep}"
PAIR = SWEEP + "/runs/{arch}__{loss}"
SEED = PAIR + "/seed{seed}"
FOLD_IN_SEED = "folds/fold{fold}"
FOLD = f"{SEED}/{FOLD_IN_SEED}"
REPORT = SWEEP + "/report"
LATENCY = SWEEP + "/latency/{arch}.json"  # an architecture's latency and memory at the dataset's input size
# the latency measurements every dataset and sweep of the same architecture, input and host share (not a stage's
# output: a cache the latency jobs fill; "_" starts no dataset name)
MEASURED_LATENCY = "results/_latency"
BASELINE_DATA = "data/baselines/{baseline}/{dataset}"  # a baseline's own copy of the data (nnU-Net's folders)
BASELINE_LOSS, BASELINE_SEED = "default", 0  # a baseline's row: <baseline>__default, one seed (its own recipe)
# the sweep's summary over its datasets ("_" starts no dataset name), named by the sweep and its first dataset: a
# second sweep of the same name on other data never overwrites it ({first}: sweep.datasets[0])
CROSS_DATASET = "results/_all/{sweep}/{first}"
CROSS_INPUT = CROSS_DATASET + "/datasets/{dataset}.json"  # a dataset's statistics, left there by its report
CROSS_PAGE, CROSS_MARKDOWN, CROSS_WORKBOOK, CROSS_JSON = ("cross_dataset.html", "cross_dataset.md",
                                                          "cross_dataset.xlsx", "cross_dataset.json")
CROSS_FILES = (CROSS_PAGE, CROSS_MARKDOWN, CROSS_WORKBOOK, CROSS_JSON)
CROSS_FIGURE = "cross_dataset"  # its critical-difference diagram over the datasets

# a fold folder: the checkpoints, train.json (the run's summary), history.csv (results per epoch), timing.csv
CHECKPOINT, LAST, TRAINED, HISTORY, TIMING = "model_best.pt", "model_last.pt", "train.json", "history.csv", "timing.csv"
TRAIN_FILES = (CHECKPOINT, LAST, TRAINED, HISTORY, TIMING)
RESUME, RESUME_BEST = "resume.pt", "resume_best.pt"  # a killed training's state; removed when it ends
# a seed folder: the evaluation's results (metrics.json: results only, the same inputs give the same bytes)
PER_IMAGE, METRICS = "per_image.csv", "metrics.json"
TEST_PREDICTIONS, VAL_PREDICTIONS, TEST_PROBABILITIES = ("test_predictions.npz", "val_predictions.npz",
                                                         "test_probabilities.npz")
EVALUATE_FILES = (PER_IMAGE, METRICS, TEST_PREDICTIONS, VAL_PREDICTIONS, TEST_PROBABILITIES)
GENERALISATION = "generalisation"  # a seed folder's other test sets: in_group.csv, <external dataset>.csv
IN_GROUP = "in_group"  # the split's subset of in-group test images, with a group hold-out
# split.holdout.reference: split.csv's columns of the trainings that measure the gap at equal training size (a
# model trained in the held-out groups, one trained on as many of the others' images), and their seed folder
REFERENCES = {"in": "reference_in", "out": "reference_out"}
REFERENCE = SEED + "/reference"
REFERENCE_SCORES, REFERENCE_SUMMARY = "scores.csv", "reference.json"
# sweep.budget (successive halving): a run's state after each rung (its fold folder's files, with resume.pt; under
# sweep.tune, one such folder per candidate in it), and each rung's decision (which pairs go on), kept in git
RUNGS = SWEEP + "/rungs"
RUNG = RUNGS + "/rung{rung}/{arch}__{loss}/seed{seed}/fold{fold}"
CANDIDATE = "candidate{candidate}"
SELECTION = RUNGS + "/selection{rung}.json"
# sweep.tune: a pair's training with each candidate configuration, and the candidate it keeps (kept in git)
TUNE = PAIR + "/tuning/" + CANDIDATE + "/seed{seed}/fold{fold}"
TUNING = PAIR + "/tuning.json"
# the report folder
PAGE, MARKDOWN, LATEX, WORKBOOK = "report.html", "comparison.md", "comparison.tex", "comparison.xlsx"
STATISTICS, SUMMARY = "statistics.json", "summary.json"
REPORT_FILES = (PAGE, MARKDOWN, LATEX, WORKBOOK, STATISTICS, SUMMARY)
# every figure of a report, in page order: name -> the report section it ends (its file figures/<name>.<format>, its
# caption segbench/report/captions/<name>.rst, its builder report.build.make_figures's entry of the name); "tuning"
# only under sweep.tune
FIGURES = {"dice_matrix": "comparison", "distributions": "distributions", "strata": "distributions",
           "critical_difference": "statistics", "rank_stability": "statistics", "tuning": "statistics",
           "pareto": "cost", "learning_curves": "training", "cases": "cases", "leakage": "leakage"}
FIGURE_FORMATS = ("png", "svg", "pdf")  # png for pages, svg and pdf for papers


def at(pattern: str, **fields) -> Path:
    """``pattern`` with its fields filled in."""
    return Path(pattern.format(**fields))


PAIR_SEPARATOR = "__"


def run_name(arch: str, loss: str) -> str:
    """A pair's name, and its folder's under ``runs/``."""
    return str(RunId(arch, loss))


@dataclass(frozen=True)
class RunId:
    """A run's identity within a (dataset, sweep), and its name: ``<arch>__<loss>`` (the pair),
    ``<arch>__<loss>/seed<k>`` (a seed's fold ensemble) or ``<arch>__<loss>/seed<k>/fold<f>`` (one training)."""

    arch: str
    loss: str
    seed: int | None = None
    fold: int | str | None = None  # str: a reference training (a column of REFERENCES)

    def __str__(self) -> str:
        name = f"{self.arch}{PAIR_SEPARATOR}{self.loss}"
        if self.seed is not None:
            name += f"/seed{self.seed}"
        if self.fold is not None:
            name += f"/fold{self.fold}" if isinstance(self.fold, int) else f"/{self.fold}"
        return name

    @property
    def pair(self) -> str:
        return f"{self.arch}{PAIR_SEPARATOR}{self.loss}"

    @classmethod
    def parse(cls, name: str) -> RunId:
        """The run a name names.

        Raises:
            ValueError: a name not of the form above.
        """
        parts = name.split("/")
        pair, seed, fold = parts[0], None, None
        if PAIR_SEPARATOR not in pair or len(parts) > 3 or any(
                not (p.startswith(k) and p[len(k):].isdigit()) for p, k in zip(parts[1:], ("seed", "fold"))):
            raise ValueError(f"{name!r} is not <arch>__<loss>[/seed<k>[/fold<f>]]")
        arch, _, loss = pair.partition(PAIR_SEPARATOR)
        if len(parts) > 1:
            seed = int(parts[1].removeprefix("seed"))
        if len(parts) > 2:
            fold = int(parts[2].removeprefix("fold"))
        return cls(arch, loss, seed, fold)


def archive_dir(dataset: str) -> Path:
    return at(ARCHIVES, dataset=dataset)


def raw_dir(dataset: str) -> Path:
    return at(RAW, dataset=dataset)


def processed_dir(dataset: str) -> Path:
    return at(PROCESSED, dataset=dataset)


def split_csv(dataset: str) -> Path:
    return at(SPLIT, dataset=dataset)


def split_counts_csv(dataset: str) -> Path:
    return at(SPLIT_COUNTS, dataset=dataset)


def split_leakage_json(dataset: str) -> Path:
    return at(SPLIT_LEAKAGE, dataset=dataset)


@dataclass(frozen=True)
class Sweep:
    """Where one sweep on one dataset keeps its runs and its report."""

    dataset: str
    sweep: str

    def _at(self, pattern: str, **fields) -> Path:
        return at(pattern, dataset=self.dataset, sweep=self.sweep, **fields)

    @property
    def root(self) -> Path:
        return self._at(SWEEP)

    @property
    def report(self) -> Path:
        return self._at(REPORT)

    def latency(self, arch: str) -> Path:
        return self._at(LATENCY, arch=arch)

    def figure(self, name: str, suffix: str = "png") -> Path:
        return self.report / "figures" / f"{name}.{suffix}"

    def pair(self, arch: str, loss: str) -> Path:
        return self._at(PAIR, arch=arch, loss=loss)

    def seed(self, arch: str, loss: str, seed: int) -> Path:
        """One replicate of a pair: its evaluation outputs, and its folds under ``folds/``."""
        return self._at(SEED, arch=arch, loss=loss, seed=seed)

    def fold(self, arch: str, loss: str, seed: int, fold: int) -> Path:
        """One training run: the model trained with ``seed`` on every fold but ``fold``."""
        return self._at(FOLD, arch=arch, loss=loss, seed=seed, fold=fold)

    def rung(self, rung: int, arch: str, loss: str, seed: int, fold: int, candidate: int | None = None) -> Path:
        """A run's state after rung ``rung`` of successive halving (``sweep.budget``): the pair's, or under
        ``sweep.tune`` its candidate ``candidate``'s."""
        out = self._at(RUNG, rung=rung, arch=arch, loss=loss, seed=seed, fold=fold)
        return out if candidate is None else out / CANDIDATE.format(candidate=candidate)

    def selection(self, rung: int) -> Path:
        """Which pairs (under ``sweep.tune``: which of each pair's candidates) rung ``rung`` promoted and which it
        pruned."""
        return self._at(SELECTION, rung=rung)

    def tune(self, arch: str, loss: str, candidate: int, seed: int, fold: int) -> Path:
        """One run of a pair's tuning candidate (``sweep.tune``)."""
        return self._at(TUNE, arch=arch, loss=loss, candidate=candidate, seed=seed, fold=fold)

    def tuning(self, arch: str, loss: str) -> Path:
        """The candidates' val Dice and the one the pair keeps."""
        return self._at(TUNING, arch=arch, loss=loss)

    def reference(self, arch: str, loss: str, seed: int) -> Path:
        """The seed's reference trainings (``split.holdout.reference``), one folder per side of ``REFERENCES``."""
        return self._at(REFERENCE, arch=arch, loss=loss, seed=seed)


def trained_folds(seed_dir: Path) -> list[Path]:
    """Every fold folder of a seed folder whose training finished (its train.json is written last), in fold
    order."""
    return sorted(p.parent for p in seed_dir.glob(f"{FOLD_IN_SEED.format(fold='*')}/{TRAINED}"))


def fold_in(seed_dir: Path, fold: int | str) -> Path:
    """A fold folder of a seed folder (``fold``: its number, or ``fold<f>`` as a run name writes it)."""
    return seed_dir / FOLD_IN_SEED.format(fold=str(fold).removeprefix("fold"))


def baseline_data(baseline: str, dataset: str) -> Path:
    return at(BASELINE_DATA, baseline=baseline, dataset=dataset)


def members(sweep: dict) -> list[tuple[str, str, list[int]]]:
    """Every row of a sweep's tables: (architecture, loss, seeds) of each pair, then of each baseline (whose
    architecture is its name)."""
    return ([(a, l, list(sweep["seeds"])) for a in sweep["architectures"] for l in sweep["losses"]]
            + [(b, BASELINE_LOSS, [BASELINE_SEED]) for b in sweep.get("baselines", [])])


def cross_dataset(sweep: dict) -> Path:
    """The summary folder of a sweep (params' ``sweep`` section)."""
    return at(CROSS_DATASET, sweep=sweep["name"], first=sweep["datasets"][0])


def cross_input(sweep: dict, dataset: str) -> Path:
    """Where ``dataset``'s report leaves its statistics for the sweep's summary."""
    return at(CROSS_INPUT, sweep=sweep["name"], first=sweep["datasets"][0], dataset=dataset)
