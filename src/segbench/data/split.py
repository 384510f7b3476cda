"""The `split` stage: the thesis's two-stage stratified train / val / test split.

Section 3.3.2 of the thesis: test first (10 %), then val = 20 % of the rest, both
stratified by tumour subtype; a stage falls back to a random split when only one class
is left or a class has fewer than 2 samples. On BTXRD this gives 1,344 / 336 / 187.
"""

from __future__ import annotations

import logging

import pandas as pd
from sklearn.model_selection import train_test_split

from segbench import SegbenchError

log = logging.getLogger(__name__)
SUBSETS = ["train", "val", "test"]


def _stratified(ids: pd.Series, labels: pd.Series | None, fraction: float, seed: int, stage: str):
    """Split ``ids`` into (rest, held_out), stratified on ``labels`` unless a class is too small."""
    stratify = labels
    if labels is not None:
        counts = labels.value_counts()
        if len(counts) < 2 or counts.min() < 2:
            log.warning("%s: falling back to a random split (classes: %s)", stage, counts.to_dict())
            stratify = None
    return train_test_split(ids, test_size=fraction, random_state=seed, stratify=stratify)


def split(meta: pd.DataFrame, seed: int, test_fraction: float, val_fraction: float,
          stratify: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assign every sample to train, val or test.

    Returns:
        (assignment with columns sample_id, subset; count table of ``stratify`` x subset).

    Raises:
        SegbenchError: ``stratify`` names no column of ``meta``, or too few samples.
    """
    if stratify is not None and stratify not in meta.columns:
        raise SegbenchError(f"split.stratify: {stratify!r} is not a meta.csv column ({list(meta.columns)})")
    if len(meta) < 3:
        raise SegbenchError(f"split: need at least 3 samples, got {len(meta)}")
    labels = meta.set_index("sample_id")[stratify] if stratify else None
    ids = meta["sample_id"]
    rest, test = _stratified(ids, labels, test_fraction, seed, "test split")
    train, val = _stratified(rest, labels.loc[rest] if labels is not None else None, val_fraction, seed, "val split")
    subset_of = {**dict.fromkeys(train, "train"), **dict.fromkeys(val, "val"), **dict.fromkeys(test, "test")}
    assignment = pd.DataFrame({"sample_id": ids, "subset": ids.map(subset_of)})
    group = meta[stratify] if stratify else pd.Series("all", index=meta.index, name="all")
    counts = pd.crosstab(group, assignment["subset"]).reindex(columns=SUBSETS, fill_value=0)
    counts["total"] = counts.sum(axis=1)
    counts.loc["total"] = counts.sum()
    return assignment, counts.reset_index()
