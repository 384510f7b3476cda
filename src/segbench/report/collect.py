"""Every run folder of a sweep, read into tidy tables the report's tables, statistics and figures share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from segbench import SegbenchError, paths
from segbench.io import read_json
from segbench.paths import run_name


@dataclass
class Results:
    """A sweep's results on one dataset.

    pairs:      every pair, in the sweep's order.
    replicates: one row per (pair, seed): its metrics.json's numbers (flattened) and its architecture's
                latency (latency/<arch>.json).
    per_image:  one row per (pair, seed, test image): per_image.csv.
    training:   one row per (pair, seed, fold): train.json.
    history:    one row per (pair, seed, fold, epoch): history.csv joined with timing.csv.
    metrics:    (pair, seed) -> its metrics.json.
    failed:     pair -> why it did not learn the task (metrics.json's ``degenerate``, over its seeds); only
                pairs that failed.
    baselines:  the rows that are baselines (``<baseline>__default``), last in ``pairs``.
    other_tests: one row per (pair, seed, other test set, image): the seed folder's generalisation/*.csv
                (``test set``: in_group, or an external dataset's key).
    references: one row per (pair, seed, reference model, image): the seed's reference/scores.csv
                (split.holdout.reference), with ``model`` in and out.
    reference:  a pair's reference.json (sizes, failed trainings) by (pair, seed); empty without references.
    pruned:     pair -> the rung of sweep.budget that stopped it (train.json's ``pruned``);
                only pruned pairs.
    tuning:     pair -> its tuning.json (sweep.tune: its candidates' val Dice, the chosen one); empty without.
    """

    pairs: list[str]
    replicates: pd.DataFrame
    per_image: pd.DataFrame
    training: pd.DataFrame
    history: pd.DataFrame
    metrics: dict[tuple[str, int], dict]
    failed: dict[str, list[str]]
    baselines: list[str] = field(default_factory=list)
    other_tests: pd.DataFrame = field(default_factory=pd.DataFrame)
    references: pd.DataFrame = field(default_factory=pd.DataFrame)
    reference: dict[tuple[str, int], dict] = field(default_factory=dict)
    pruned: dict[str, dict] = field(default_factory=dict)
    tuning: dict[str, dict] = field(default_factory=dict)

    def image_scores(self, metric: str = "dice") -> pd.DataFrame:
        """(test images with a lesion x pairs): each image's ``metric`` averaged over the pair's seeds."""
        lesion = self.per_image[self.per_image["lesion"]] if self.per_image["lesion"].any() else self.per_image
        return lesion.pivot_table(index="sample_id", columns="pair", values=metric, aggfunc="mean")[self.pairs]


class Inputs:
    """The files the report stage declares (``pipeline.job_inputs``, which the command passes in): the one list of
    what it reads. Reading any other file is an error, so a file the report reads can never go stale unseen by
    Snakemake and DVC. Without a list (a library call), nothing is checked."""

    def __init__(self, declared: list[str] | None = None):
        self.files = None if declared is None else {Path(f) for f in declared}

    def check(self, path: Path) -> Path:
        """``path``, a declared input (or inside one).

        Raises:
            SegbenchError: ``path`` is not a declared input (a bug: declare it in ``pipeline.py``).
        """
        if self.files is not None and not any(p == path or p in path.parents for p in self.files):
            raise SegbenchError(f"the report read {path}, which the report stage does not declare as an input "
                                "(segbench.pipeline): declare it, or Snakemake and DVC cannot see it change")
        return path

    def read(self, path: Path, what: str, kind=read_json):
        """``kind(path)`` of a declared input, or a SegbenchError naming a missing file and the command that makes
        it."""
        if not self.check(path).exists():
            raise SegbenchError(f"{path}: missing; run `segbench {what}` for it first")
        return kind(path)


def _flat(metrics: dict) -> dict:
    out = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool)) or v is None}
    out.update({f"raw_{k}": v for k, v in metrics.get("raw", {}).items()})
    out.update({f"detection_{k}": v for k, v in metrics.get("detection", {}).items()
                if isinstance(v, (int, float)) or v is None})
    out.update({f"empty_{k}": v for k, v in metrics.get("empty", {}).items()})
    out["postprocessing"] = metrics.get("postprocessing", {}).get("name")
    out.update({f"dice {name}": scores["dice"] for name, scores in metrics.get("per_class", {}).items()})
    return out


def load_results(params: dict, where: paths.Sweep, inputs: Inputs | None = None) -> Results:
    """Read every (pair, seed, fold) of the sweep ``params`` describes, from ``where`` (declared ``inputs``).

    Raises:
        SegbenchError: a missing file, naming it and the stage that makes it.
    """
    sweep = params["sweep"]
    _read = (inputs or Inputs()).read
    replicates, per_image, training, history, metrics, failed, other_tests = [], [], [], [], {}, {}, []
    references, reference, pruned, tuning = [], {}, {}, {}
    members = paths.members(sweep)
    latency = {arch: {k: v for k, v in _read(where.latency(arch), f"latency --arch {arch}").items()
                      if k.startswith(("latency_", "memory_", "weights_", "activations_")) or k == "gpu"}
               for arch in dict.fromkeys(a for a, _, _ in members)}
    pairs = [run_name(a, l) for a, l, _ in members]
    baselines = [run_name(b, paths.BASELINE_LOSS) for b in sweep["baselines"]]
    with_references = where.dataset in sweep["references"]
    for arch, loss, seeds in members:
        pair = run_name(arch, loss)
        if sweep["tune"] and pair not in baselines:
            tuning[pair] = _read(where.tuning(arch, loss), f"choose --arch {arch} --loss {loss}")
        for seed in seeds:
            seed_dir = where.seed(arch, loss, seed)
            keys = {"pair": pair, "architecture": arch, "loss": loss, "seed": seed}
            evaluate = f"evaluate --arch {arch} --loss {loss} --seed {seed}"
            m = _read(seed_dir / paths.METRICS, evaluate)
            metrics[(pair, seed)] = m
            for reason in m.get("degenerate", []):
                failed.setdefault(pair, []).append(f"seed {seed}: {reason}" if len(seeds) > 1 else reason)
            replicates.append({**keys, **_flat(m), **latency[arch]})
            per_image.append(_read(seed_dir / paths.PER_IMAGE, evaluate, pd.read_csv).assign(**keys))
            other_tests += [_read(f, evaluate, pd.read_csv).assign(**keys, **{"test set": f.stem})
                            for f in sorted((seed_dir / paths.GENERALISATION).glob("*.csv"))]
            if with_references and pair not in baselines:
                folder, what = where.reference(arch, loss, seed), f"reference --arch {arch} --loss {loss} --seed {seed}"
                reference[(pair, seed)] = _read(folder / paths.REFERENCE_SUMMARY, what)
                references.append(_read(folder / paths.REFERENCE_SCORES, what, pd.read_csv).assign(**keys))
            for fold in sweep["folds"]:
                fold_dir = where.fold(arch, loss, seed, fold)
                what = f"train --arch {arch} --loss {loss} --seed {seed} --fold {fold}"
                training.append({**keys, "fold": fold, **(record := _read(fold_dir / paths.TRAINED, what))})
                if record.get("pruned"):
                    pruned[pair] = record["pruned"]
                history.append(_read(fold_dir / paths.HISTORY, what, pd.read_csv).merge(
                    _read(fold_dir / paths.TIMING, what, pd.read_csv), on="epoch").assign(**keys, fold=fold))
    images = pd.concat(per_image, ignore_index=True).astype({"sample_id": str})
    return Results(pairs, pd.DataFrame(replicates), images, pd.DataFrame(training),
                   pd.concat(history, ignore_index=True), metrics, failed,
                   baselines, _frame(other_tests), _frame(references), reference, pruned, tuning)


def _frame(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Per-image tables in one, sample ids as text; empty when there are none."""
    return pd.concat(tables, ignore_index=True).astype({"sample_id": str}) if tables else pd.DataFrame()


def pair_summary(results: Results, metric_names: list[str]) -> pd.DataFrame:
    """One row per pair: each metric's mean over seeds of the test means, and its SD across seeds."""
    grouped = results.replicates.groupby("pair", sort=False)
    out = grouped[["architecture", "loss"]].first()
    several = results.replicates["seed"].nunique() > 1
    for name in metric_names:
        if name in results.replicates:
            out[name] = grouped[name].mean()
            out[f"{name}_sd_seeds"] = grouped[name].std(ddof=1) if several else np.nan
    training = results.training.groupby("pair", sort=False)
    out["parameters"] = training["n_params"].first()
    out["gflops"] = training["gflops"].first()
    out["epochs"] = training["epochs"].mean()
    out["train_seconds"] = training["train_seconds"].sum()
    for column in ("iterations_per_epoch", "batch_size"):  # absent from train.json files older than them
        out[column] = training[column].mean() if column in results.training else np.nan
    out["on_gpu"] = training["device"].agg(lambda d: d.astype(str).str.startswith("cuda").any())
    for column in [c for c in results.replicates if c.startswith(("latency_", "memory_", "weights_", "activations_"))]:
        out[column] = grouped[column].first()  # the architecture's, measured once
    return out.loc[results.pairs]
