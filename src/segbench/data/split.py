"""The `split` stage: the thesis's two-stage stratified train / val / test split, and its variants.

Section 3.3.2 of the thesis: test first (10 %), then val = 20 % of the rest, both
stratified by tumour subtype; a stage falls back to a random split when only one class
is left or a class has fewer than 2 samples. On BTXRD this gives 1,344 / 336 / 187.

Variants: ``official_test`` takes the dataset's own test list (Oxford-IIIT Pet);
``group_by`` keeps images of one group in one subset, with scikit-learn's StratifiedGroupKFold
(``auto``: near-duplicate images and the dataset's own groups, e.g. BTXRD's centre + age + gender +
subtype + bone, a proxy for "same patient, same lesion"); ``folds`` adds a k-fold assignment of the
non-test images, as nnU-Net's 5-fold cross-validation does; ``holdout`` tests on held-out groups of a
metadata column (e.g. BTXRD's centre 3: trained on two hospitals, tested on the third) and keeps an
``in_group`` test subset of the other groups (``test_fraction`` of them), so the report can set in-group
against held-out metrics. Whatever the variant, the split is audited for leakage (``audit``): near-duplicates
and groups on both sides of a boundary.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

from segbench import SegbenchError, paths
from segbench.data.audit import audit, clusters, near_duplicates
from segbench.data.metadata import as_text, group_keys
from segbench.data.metadata import labels as text_labels
from segbench.io import read_json, write_csv, write_json

log = logging.getLogger(__name__)
SUBSETS = ["train", "val", "test"]
IN_GROUP = paths.IN_GROUP  # with split.holdout: test images from the groups the models train on
REFERENCES = paths.REFERENCES  # with split.holdout: split.csv's columns of the two reference trainings


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


def split(meta: pd.DataFrame, seed: int, test_fraction: float, val_fraction: float, stratify: str | None,
          groups: pd.Series | None = None, folds: int | None = None, val_fold: int = 0,
          official_test: bool = False, holdout: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assign every sample to train, val or test (and to a fold with ``folds``); ``groups`` (a label per
    sample id) are never split. ``holdout`` ({by: column, values: [...]}): the test subset is the samples whose
    ``by`` is one of ``values``; ``test_fraction`` of the others become the ``in_group`` subset.

    Returns:
        (assignment: sample_id, subset[, fold]; count table of ``stratify`` x subset).

    Raises:
        SegbenchError: a column that meta.csv lacks, or too few samples.
    """
    for key, columns in (("stratify", [stratify] if stratify else []),
                         ("official_test", ["official_split"] if official_test else []),
                         ("holdout.by", [holdout["by"]] if holdout else [])):
        missing = [c for c in columns if c not in meta.columns]
        if missing:
            raise SegbenchError(f"split.{key}: {missing} not among meta.csv's columns ({list(meta.columns)})")
    if len(meta) < 3:
        raise SegbenchError(f"split: need at least 3 samples, got {len(meta)}")
    if sum(map(bool, (official_test, holdout, isinstance(folds, dict)))) > 1:
        raise SegbenchError("split: official_test, holdout and folds: {by: ...} each choose the test images; set one "
                            "of them")
    indexed = meta.set_index("sample_id")
    labels = text_labels(indexed[stratify]) if stratify else pd.Series("all", index=indexed.index)
    if isinstance(folds, dict):
        return _leave_one_group_out(indexed, labels, groups, folds["by"], seed, test_fraction, val_fraction,
                                    stratify)

    in_group = pd.Index([])
    if official_test or holdout:
        is_test = (indexed["official_split"] == "test").to_numpy() if official_test else _in_holdout(indexed, holdout)
        rest, test = indexed.index[~is_test], indexed.index[is_test]
        if holdout:
            rest, in_group = _held_out(labels.loc[rest], groups.loc[rest] if groups is not None else None,
                                       test_fraction, seed, "in-group test split")
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
    subset.loc[val], subset.loc[test], subset.loc[in_group] = "val", "test", IN_GROUP
    assignment = pd.DataFrame({"sample_id": indexed.index, "subset": subset.to_numpy()})
    if fold is not None:
        assignment["fold"] = assignment["sample_id"].map(fold).fillna(-1).astype(int)  # -1: test
    if holdout and holdout.get("reference"):  # the references' images (the trainings: sweep.references)
        references = _references(labels, groups, subset, holdout["reference"], val_fraction, seed)
        assignment = assignment.join(references, on="sample_id")

    columns = SUBSETS + ([IN_GROUP] if len(in_group) else [])
    counts = pd.crosstab(labels.rename(stratify or "all"), subset).reindex(columns=columns, fill_value=0)
    counts["total"] = counts.sum(axis=1)
    counts.loc["total"] = counts.sum()
    return assignment, counts.reset_index()


def _references(labels: pd.Series, groups: pd.Series | None, subset: pd.Series, share: float, val_fraction: float,
                seed: int) -> pd.DataFrame:
    """``split.holdout.reference``: the two trainings that measure the generalisation gap at equal training size,
    as columns ``reference_in`` and ``reference_out`` (train, val, test or blank, by sample id).

    ``reference_in`` trains inside the held-out groups, on ``share`` of their images (whole groups; val as
    ``val_fraction`` says) and is tested on the rest; ``reference_out`` trains on a stratified subsample of the
    sweep's own train and val images of the same sizes. Neither trains on more than the sweep's models do. Both
    score ``reference_in``'s test images: their difference is the domain shift at equal training size, paired.
    """
    held = subset.index[subset == "test"]
    held_groups = groups.loc[held] if groups is not None else None
    pool, test = _held_out(labels.loc[held], held_groups, 1 - share, seed, "reference test split (split.holdout)")
    train, val = _held_out(labels.loc[pool], held_groups.loc[pool] if held_groups is not None else None,
                           val_fraction, seed, "reference val split (split.holdout)")
    sweep_train, sweep_val = subset.index[subset == "train"], subset.index[subset == "val"]
    train, val = _subsample(train, labels, len(sweep_train), seed), _subsample(val, labels, len(sweep_val), seed)
    out = pd.DataFrame(index=subset.index, columns=list(REFERENCES.values()), dtype=object)
    out.loc[train, REFERENCES["in"]], out.loc[val, REFERENCES["in"]] = "train", "val"
    out.loc[test, REFERENCES["in"]] = "test"
    out.loc[_subsample(sweep_train, labels, len(train), seed), REFERENCES["out"]] = "train"
    out.loc[_subsample(sweep_val, labels, len(val), seed), REFERENCES["out"]] = "val"
    log.info("split.holdout.reference: in the held-out groups, %d train + %d val images, %d tested; the other "
             "groups' subsample of the same sizes, from the sweep's %d + %d", len(train), len(val), len(test),
             len(sweep_train), len(sweep_val))
    return out


def _subsample(ids: pd.Index, labels: pd.Series, size: int, seed: int) -> pd.Index:
    """``size`` of ``ids``, stratified on ``labels`` as far as the counts allow; all of them when they are fewer."""
    if size >= len(ids):
        return ids
    strata = _strata(labels.loc[ids], len(ids) - size, size, "reference subsample (split.holdout)")
    return pd.Index(train_test_split(ids.to_series(), train_size=size, random_state=seed, stratify=strata)[0])


def group_values(column: pd.Series) -> list:
    """A column's values in fold order: numbers numerically, else as text."""
    values = column.dropna().unique().tolist()
    return sorted(values, key=lambda v: (0, float(v), "") if _number(v) else (1, 0.0, str(v)))


def _number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _leave_one_group_out(indexed: pd.DataFrame, labels: pd.Series, groups: pd.Series | None, by: str, seed: int,
                         test_fraction: float, val_fraction: float, stratify: str | None):
    """Leave-one-group-out (``split.folds: {by: column}``): fold k is the k-th value's images. Within each group,
    ``test_fraction`` become in_group test images and ``val_fraction`` of the rest val (stratified, whole
    ``groups``): fold k trains on the other groups' train images, validates on their val images, and is tested
    on its own group, all of it, and on the other groups' in_group images.

    Raises:
        SegbenchError: a column with one value, or a group too small to split, naming them.
    """
    if by not in indexed.columns:
        raise SegbenchError(f"split.folds.by: {by!r} not among meta.csv's columns ({['sample_id', *indexed.columns]})")
    if indexed[by].isna().any():
        raise SegbenchError(f"split.folds.by: {by} is empty for {int(indexed[by].isna().sum())} samples; every "
                            "sample needs a group")
    values = group_values(indexed[by])
    if len(values) < 2:
        raise SegbenchError(f"split.folds.by: {by} has one value ({values}); leaving one group out needs two")
    fold = indexed[by].map({v: i for i, v in enumerate(values)}).astype(int)
    subset = pd.Series("train", index=indexed.index)
    for value in values:
        ids = indexed.index[indexed[by] == value]
        own = groups.loc[ids] if groups is not None else None
        stage = f"{by} {value}"
        rest, in_group = _held_out(labels.loc[ids], own, test_fraction, seed, f"in-group test split ({stage})")
        val = _held_out(labels.loc[rest], own.loc[rest] if own is not None else None, val_fraction, seed,
                        f"val split ({stage})")[1]
        subset.loc[in_group], subset.loc[val] = IN_GROUP, "val"
    assignment = pd.DataFrame({"sample_id": indexed.index, "subset": subset.to_numpy(), "fold": fold.to_numpy()})
    counts = pd.crosstab(indexed[by].rename(f"fold ({by})").map(lambda v: f"{values.index(v)} ({v})"),
                         subset).reindex(columns=["train", "val", IN_GROUP], fill_value=0)
    counts["total"] = counts.sum(axis=1)
    counts.loc["total"] = counts.sum()
    return assignment, counts.reset_index()


def _in_holdout(indexed: pd.DataFrame, holdout: dict) -> np.ndarray:
    """Which samples the held-out groups hold. Raises: SegbenchError: a value the column lacks, or nothing left
    to train on, naming the column and its values."""
    column = as_text(indexed[holdout["by"]])
    values = list(as_text(pd.Series(holdout["values"], dtype=object)))
    absent = [v for v in values if v not in set(column)]
    if absent:
        raise SegbenchError(f"split.holdout: {holdout['by']} has no {absent}; its values: "
                            f"{sorted(set(column.dropna()))}")
    held = column.isin(values).to_numpy()
    if held.all():
        raise SegbenchError(f"split.holdout: {holdout['by']} in {values} holds every sample; nothing left to train on")
    return held


def stratification(option: str | None, info: dict, meta: pd.DataFrame) -> tuple[str | None, str]:
    """The column ``split.stratify`` names (``auto``: the dataset's own) and why, in words. A column with one
    value (a dataset where every image has its lesion) stratifies nothing: lesion-size buckets instead."""
    column = info["stratify"] if option == "auto" else option
    if column and column in meta and meta[column].nunique() == 1 and option == "auto" and "size_bucket" in meta:
        return "size_bucket", (f"stratified by lesion size (size_bucket: tertiles of the lesion's share of the "
                               f"image), since every image has the same {column} ({meta[column].iloc[0]})")
    return column, f"stratified by {column}" if column else "not stratified (random)"


def grouping(group_by, meta: pd.DataFrame, pairs: pd.DataFrame, columns: list[str]) -> pd.Series | None:
    """A group label per sample id, or None. ``group_by``: null, a list of meta.csv columns, or "auto": the
    near-duplicate clusters joined with the dataset's own group columns (``columns``, from info.json). A sample
    with a blank group column is in no metadata group (``metadata.group_keys``): a group of its own, or its
    near-duplicates' cluster."""
    if group_by is None:
        return None
    ids = meta["sample_id"].astype(str)
    if group_by != "auto":
        missing = [c for c in group_by if c not in meta.columns]
        if missing:
            raise SegbenchError(f"split.group_by: {missing} not among meta.csv's columns ({list(meta.columns)})")
        keys = group_keys(meta, group_by)
        return pd.Series(keys.fillna("\x00" + ids).to_numpy(), index=ids)  # blank: a group of its own
    edges = [pairs[["a", "b"]].to_numpy()]
    if columns:  # chain each metadata group's members together
        keys = group_keys(meta, columns)
        for members in keys.groupby(keys).indices.values():  # positions; blank keys (None) are in no group
            edges.append(np.stack([members[:-1], members[1:]], 1))
    both = np.concatenate(edges) if edges else np.zeros((0, 2), int)
    labels = clusters(len(meta), pd.DataFrame(both, columns=["a", "b"]))
    return pd.Series([f"cluster{c}" for c in labels], index=ids)


def parts(assignment: pd.DataFrame) -> pd.Series:
    """Each sample's side of the split's boundaries, by sample id: its subset, or with folds its fold (test
    stays test): what the audit checks for pairs on both sides."""
    part = assignment["subset"].astype(str)
    if "fold" in assignment:
        part = pd.Series(np.where(assignment["fold"] >= 0, "fold" + assignment["fold"].astype(str), "test"))
    return pd.Series(part.to_numpy(), index=assignment["sample_id"].astype(str))


def split_stage(options: dict, processed_dir, split_csv, counts_csv, leakage_json) -> pd.DataFrame:
    """The `split` stage: split the samples of ``processed_dir/meta.csv`` as ``options`` (params' split
    section) say, then audit what the split leaks (``audit``). Writes the assignment, the count table and
    the leakage report."""
    for name in (paths.META, paths.INFO, paths.HASHES):
        if not (processed_dir / name).exists():
            raise SegbenchError(f"{processed_dir / name}: missing; run `segbench preprocess` first")
    meta = pd.read_csv(processed_dir / paths.META).astype({"sample_id": str})
    info = read_json(processed_dir / paths.INFO)
    pairs = near_duplicates(np.load(processed_dir / paths.HASHES))
    stratify, stratified = stratification(options["stratify"], info, meta)
    if isinstance(options["folds"], dict):
        by = options["folds"]["by"]
        stratified += ("; leave-one-group-out by " + by + ": " + ", ".join(
            f"fold {i} holds out {v}" for i, v in enumerate(group_values(meta[by]))) if by in meta else "")
    if options["holdout"]:
        held = options["holdout"]
        stratified += (f"; test: the held-out {held['by']} {held['values']}; in_group: {options['test_fraction']:.0%} "
                       f"of the other groups' images, tested too")
    columns = info.get("groups", [])
    groups = grouping(options["group_by"], meta, pairs, columns)
    kept = {k: options[k] for k in ("seed", "test_fraction", "val_fraction", "folds", "val_fold", "official_test",
                                    "holdout")}
    assignment, counts = split(meta, stratify=stratify, groups=groups, **kept)
    report = {"group_by": options["group_by"], "stratified": stratified, "skipped_images": info.get("skipped", []),
              **audit(meta, pairs, parts(assignment), columns)}
    if groups is not None:  # what grouping prevented: the same split without it
        plain = audit(meta, pairs, parts(split(meta, stratify=stratify, **kept)[0]), columns)
        report["without_grouping"] = {k: plain[k] for k in ("pairs_across_subsets", "groups_across_subsets",
                                                            "leaked_test_images", "leaked_test_images_by_side")
                                      if k in plain}
    if REFERENCES["in"] in assignment:  # reference_in's test images that its own training images flatter
        side = pd.Series(assignment[REFERENCES["in"]].fillna(IN_GROUP).to_numpy(),  # unseen: as if tested
                         index=assignment["sample_id"].astype(str))
        report["reference_leaked_images"] = audit(meta, pairs, side, columns)["leaked_test_images"]
    write_csv(split_csv, assignment)
    write_csv(counts_csv, counts)
    write_json(leakage_json, report)
    crossing = sum(report["pairs_across_subsets"].values())
    log.info("split: %s; %s; %d near-duplicate pairs across subsets, %d test images with a near-duplicate or group "
             "mate in train or val", assignment["subset"].value_counts().to_dict(), stratified, crossing,
             len(report["leaked_test_images"]))
    return assignment
