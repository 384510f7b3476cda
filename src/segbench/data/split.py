"""The `split` stage: the thesis's two-stage stratified train / val / test split, and its variants.

Section 3.3.2 of the thesis: test first (10 %), then val = 20 % of the rest, both
stratified by tumour subtype; a stage falls back to a random split when only one class
is left or a class has fewer than 2 samples. On BTXRD this gives 1,344 / 336 / 187.

Variants: ``official_test`` takes the dataset's own test list (Oxford-IIIT Pet);
``group_by`` keeps images of one group (e.g. BTXRD's centre + age + gender + subtype +
bone, a proxy for "same patient, same lesion") in one subset, with scikit-learn's
StratifiedGroupKFold; ``folds`` adds a k-fold assignment of the non-test images, as
nnU-Net's 5-fold cross-validation does.
"""

from __future__ import annotations

import logging
import math

import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from segbench import SegbenchError, paths
from segbench.io import read_json, write_csv, write_json

log = logging.getLogger(__name__)
SUBSETS = ["train", "val", "test"]


def _strata(labels: pd.Series, n_held: int, n_rest: int, stage: str) -> pd.Series | None:
    """Labels scikit-learn can stratify on, merging the rarest classes when it cannot; None: random.

    Stratifying needs every class twice and at least as many images on each side as classes.
    When that fails (a small dataset), the two rarest strata merge into one, again and again; if a
    single stratum is left, the split is random. Each fallback is a warning naming the stage.
    """
    strata, merged, reason = labels.copy(), [], None
    while strata.nunique() > 1:
        counts = strata.value_counts()
        problem = ("a class has fewer than 2 images" if counts.min() < 2 else
                   f"{min(n_held, n_rest)} images on one side for {len(counts)} classes"
                   if len(counts) > min(n_held, n_rest) else None)
        if problem is None:
            break
        reason = reason or problem
        rarest = counts.sort_values(kind="stable").index[:2]
        merged += [str(r) for r in rarest if "+" not in str(r)]
        strata = strata.replace({r: f"{rarest[0]}+{rarest[1]}" for r in rarest})
    if strata.nunique() < 2:
        log.warning("%s: falling back to a random split (%s; classes: %s)", stage, reason or "one class",
                    labels.value_counts().to_dict())
        return None
    if merged:
        log.warning("%s: cannot stratify on every class (%s); merged the rarest into one stratum: %s",
                    stage, reason, sorted(merged))
    return strata


def _stratified(ids: pd.Series, labels: pd.Series | None, fraction: float, seed: int, stage: str):
    """Split ``ids`` into (rest, held_out), stratified on ``labels`` as far as the counts allow."""
    n_held = math.ceil(fraction * len(ids))  # scikit-learn's rounding of a float test_size
    if n_held >= len(ids):
        raise SegbenchError(f"{stage}: {len(ids)} images are too few to hold out {fraction:.0%}")
    stratify = None if labels is None else _strata(labels, n_held, len(ids) - n_held, stage)
    return train_test_split(ids, test_size=n_held, random_state=seed, stratify=stratify)


def _folds(labels: pd.Series, groups: pd.Series | None, k: int, seed: int) -> pd.Series:
    """Fold number (0..k-1) per id: stratified on ``labels`` (unless a class has fewer than k), never
    splitting a group."""
    if k > len(labels):
        raise SegbenchError(f"split: cannot make {k} folds of {len(labels)} images")
    if groups is not None and groups.nunique() < k:
        raise SegbenchError(f"split.group_by: {groups.nunique()} groups are too few for {k} folds; "
                            "group by fewer columns, or hold out a larger fraction")
    if groups is None and labels.value_counts().min() < k:
        log.warning("folds: a class has fewer than %d images; folds are not stratified", k)
        labels = pd.Series(0, index=labels.index)
    splitter = StratifiedGroupKFold(k, shuffle=True, random_state=seed) if groups is not None else \
        StratifiedKFold(k, shuffle=True, random_state=seed)
    folds = pd.Series(-1, index=labels.index)
    for fold, (_, held) in enumerate(splitter.split(labels.index, labels, groups)):
        folds.iloc[held] = fold
    return folds


def _held_out(labels: pd.Series, groups: pd.Series | None, fraction: float, seed: int,
              stage: str) -> tuple[pd.Index, pd.Index]:
    """(rest, held out): about ``fraction`` of the ids held out, stratified, whole groups if ``groups``."""
    if groups is None:
        rest, held = _stratified(labels.index.to_series(), labels, fraction, seed, stage)
        return pd.Index(rest), pd.Index(held)
    folds = _folds(labels, groups, max(2, round(1 / fraction)), seed)
    return folds.index[folds != 0], folds.index[folds == 0]


def leakage(assignment: pd.Series, groups: pd.Series) -> dict:
    """How many groups span several subsets, and how many val/test images share a group with train."""
    subsets_per_group = assignment.groupby(groups).nunique()
    train_groups = set(groups[assignment == "train"])
    shared = groups[assignment != "train"].isin(train_groups)
    return {"groups": int(len(subsets_per_group)), "groups_in_several_subsets": int((subsets_per_group > 1).sum()),
            "val_test_images_sharing_a_group_with_train": int(shared.sum()),
            "val_test_images": int((assignment != "train").sum())}


def split(meta: pd.DataFrame, seed: int, test_fraction: float, val_fraction: float, stratify: str | None,
          group_by: list[str] | None = None, folds: int | None = None, val_fold: int = 0,
          official_test: bool = False) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Assign every sample to train, val or test (and to a fold with ``folds``).

    Returns:
        (assignment: sample_id, subset[, fold]; count table of ``stratify`` x subset;
        leakage report: with ``group_by``, the groups shared between subsets by this split
        and by the plain split).

    Raises:
        SegbenchError: a column that meta.csv lacks, or too few samples.
    """
    for key, columns in (("stratify", [stratify] if stratify else []), ("group_by", group_by or []),
                         ("official_test", ["official_split"] if official_test else [])):
        missing = [c for c in columns if c not in meta.columns]
        if missing:
            raise SegbenchError(f"split.{key}: {missing} not among meta.csv's columns ({list(meta.columns)})")
    if len(meta) < 3:
        raise SegbenchError(f"split: need at least 3 samples, got {len(meta)}")
    indexed = meta.set_index("sample_id")
    labels = indexed[stratify].astype(str) if stratify else pd.Series("all", index=indexed.index)
    groups = indexed[group_by].astype(str).agg("|".join, axis=1) if group_by else None

    if official_test:
        is_test = (indexed["official_split"] == "test").to_numpy()
        rest, test = indexed.index[~is_test], indexed.index[is_test]
    else:
        rest, test = _held_out(labels, groups, test_fraction, seed, "test split")
    rest_groups = groups.loc[rest] if groups is not None else None
    fold = None
    if folds:
        if not 0 <= val_fold < folds:
            raise SegbenchError(f"split.val_fold: must be in 0..{folds - 1}, got {val_fold}")
        fold = _folds(labels.loc[rest], rest_groups, folds, seed)
        val = fold.index[fold == val_fold]
    else:
        val = _held_out(labels.loc[rest], rest_groups, val_fraction, seed, "val split")[1]
    subset = pd.Series("train", index=indexed.index)
    subset.loc[val], subset.loc[test] = "val", "test"
    assignment = pd.DataFrame({"sample_id": indexed.index, "subset": subset.to_numpy()})
    if fold is not None:
        assignment["fold"] = assignment["sample_id"].map(fold).fillna(-1).astype(int)  # -1: test

    counts = pd.crosstab(labels.rename(stratify or "all"), subset).reindex(columns=SUBSETS, fill_value=0)
    counts["total"] = counts.sum(axis=1)
    counts.loc["total"] = counts.sum()
    report = {"group_by": group_by}
    if groups is not None:
        plain = split(meta, seed, test_fraction, val_fraction, stratify, official_test=official_test)[0]
        report["this_split"] = leakage(subset, groups)
        report["plain_split"] = leakage(plain.set_index("sample_id")["subset"], groups)
        log.info("leakage across subsets: %s groups shared by this split, %s by the plain split",
                 report["this_split"]["groups_in_several_subsets"], report["plain_split"]["groups_in_several_subsets"])
    return assignment, counts.reset_index(), report


def split_stage(options: dict, processed_dir, split_csv, counts_csv, leakage_json) -> pd.DataFrame:
    """The `split` stage: split the samples of ``processed_dir/meta.csv`` as ``options`` (params' split
    section) say; ``stratify: auto`` takes the dataset's own choice from info.json. Writes the three files."""
    meta_csv, info_json = processed_dir / paths.META, processed_dir / paths.INFO
    for path in (meta_csv, info_json):
        if not path.exists():
            raise SegbenchError(f"{path}: missing; run `segbench preprocess` first")
    options = dict(options)
    if options["stratify"] == "auto":  # BTXRD: subtype; Pets: breed; your data: the classes present
        options["stratify"] = read_json(info_json)["stratify"]
    assignment, counts, leakage = split(pd.read_csv(meta_csv), **options)
    write_csv(split_csv, assignment)
    write_csv(counts_csv, counts)
    write_json(leakage_json, leakage)
    log.info("split: %s", assignment["subset"].value_counts().to_dict())
    return assignment
