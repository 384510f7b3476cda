import io
import logging

import pandas as pd
import pytest

from segbench import SegbenchError
from segbench.data.split import split

pytestmark = pytest.mark.data  # the data stages: make test runs them on pandas 2 as well

# BTXRD's real subtype counts (FACTS.md) and the thesis's test counts (its table 3.4).
BTXRD_COUNTS = {"osteochondroma": 754, "osteosarcoma": 297, "multiple osteochondromas": 263,
                "simple bone cyst": 206, "other bt": 115, "giant cell tumor": 93,
                "synovial osteochondroma": 50, "other mt": 45, "osteofibroma": 44}
THESIS_TEST = {"osteochondroma": 76, "osteosarcoma": 30, "multiple osteochondromas": 26, "simple bone cyst": 21,
               "other bt": 12, "giant cell tumor": 9, "synovial osteochondroma": 5, "other mt": 4, "osteofibroma": 4}


def meta_with(counts):
    labels = [name for name, n in counts.items() for _ in range(n)]
    return pd.DataFrame({"sample_id": [f"IMG{i:06d}" for i in range(len(labels))], "tumor_type": labels})


def test_btxrd_counts_give_the_thesis_split():
    assignment, counts = split(meta_with(BTXRD_COUNTS), seed=42, test_fraction=0.10, val_fraction=0.20,
                               stratify="tumor_type")
    assert assignment["subset"].value_counts().to_dict() == {"train": 1344, "val": 336, "test": 187}
    table = counts.set_index("tumor_type")
    assert table["test"].drop("total").to_dict() == THESIS_TEST
    assert table.loc["total", "total"] == 1867


def test_split_is_reproducible_and_disjoint():
    meta = meta_with({"a": 40, "b": 30, "c": 10})
    first = split(meta, 1, 0.1, 0.2, "tumor_type")[0]
    again = split(meta, 1, 0.1, 0.2, "tumor_type")[0]
    other = split(meta, 2, 0.1, 0.2, "tumor_type")[0]
    assert first.equals(again) and not first.equals(other)
    assert first["sample_id"].is_unique and first["subset"].notna().all()


def test_tiny_class_falls_back_to_random(caplog):
    with caplog.at_level(logging.WARNING):
        assignment = split(meta_with({"a": 30, "b": 1}), 0, 0.1, 0.2, "tumor_type")[0]
    assert "falling back to a random split" in caplog.text
    assert len(assignment) == 31


def test_unknown_stratify_column_is_named():
    with pytest.raises(SegbenchError, match=r"split.stratify: \['breed'\] not among meta.csv's columns"):
        split(meta_with({"a": 10}), 0, 0.1, 0.2, "breed")


def btxrd_like(n_groups: int = 60, seed: int = 0):
    """Images in groups of 1-4 sharing centre, age, gender, subtype and bone (BTXRD's lesion proxy)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        subtype = ["osteochondroma", "osteosarcoma", "simple bone cyst"][g % 3]
        for _ in range(rng.integers(1, 5)):
            rows.append({"sample_id": f"IMG{len(rows):06d}", "tumor_type": subtype, "center": g % 3 + 1,
                         "age": 10 + g, "gender": "MF"[g % 2], "bone": "femur"})
    return pd.DataFrame(rows)


GROUP = ["center", "age", "gender", "tumor_type", "bone"]


def groups_of(meta: pd.DataFrame) -> pd.Series:
    return pd.Series(meta[GROUP].astype(str).agg("|".join, axis=1).to_numpy(), index=meta["sample_id"])


def test_groups_stay_in_one_subset_and_the_audit_counts_what_the_plain_split_leaks():
    from segbench.data.audit import audit

    meta = btxrd_like()
    assignment, counts = split(meta, 42, 0.1, 0.2, "tumor_type", groups=groups_of(meta))
    no_pairs = pd.DataFrame(columns=["a", "b", "distance"])
    report = audit(meta, no_pairs, assignment.set_index("sample_id")["subset"], GROUP)
    plain = split(meta, 42, 0.1, 0.2, "tumor_type")[0]
    plain_report = audit(meta, no_pairs, plain.set_index("sample_id")["subset"], GROUP)
    groups = meta[GROUP].astype(str).agg("|".join, axis=1)
    assert (assignment.groupby(groups)["subset"].nunique() == 1).all()
    assert report["groups_across_subsets"] == 0 and report["leaked_test_images"] == []
    assert plain_report["groups_across_subsets"] > 0 and plain_report["leaked_test_images"]  # the plain split leaks
    share = assignment["subset"].value_counts(normalize=True)
    assert 0.03 < share["test"] < 0.2 and 0.1 < share["val"] < 0.3
    assert set(counts.columns) == {"tumor_type", "train", "val", "test", "total"}


def test_folds_partition_the_non_test_images_and_val_is_the_chosen_fold():
    meta = btxrd_like()
    assignment = split(meta, 42, 0.1, 0.2, "tumor_type", folds=5, val_fold=2)[0]
    rest = assignment[assignment["subset"] != "test"]
    assert sorted(rest["fold"].unique()) == [0, 1, 2, 3, 4]
    assert (rest.loc[rest["fold"] == 2, "subset"] == "val").all()
    assert (rest.loc[rest["fold"] != 2, "subset"] == "train").all()
    assert (assignment.loc[assignment["subset"] == "test", "fold"] == -1).all()
    grouped = split(meta, 42, 0.1, 0.2, "tumor_type", groups=groups_of(meta), folds=5)[0]
    assert (grouped.groupby(groups_of(meta).to_numpy())["fold"].nunique() == 1).all()
    with pytest.raises(SegbenchError, match="split.val_fold: must be in 0..4"):
        split(meta, 42, 0.1, 0.2, "tumor_type", folds=5, val_fold=5)


def test_official_test_list_is_the_test_subset():
    meta = pd.DataFrame({"sample_id": [f"cat_{i}" for i in range(40)], "breed": ["a", "b"] * 20,
                         "official_split": ["trainval"] * 30 + ["test"] * 10})
    assignment = split(meta, 0, 0.1, 0.2, "breed", official_test=True)[0].set_index("sample_id")["subset"]
    assert (assignment[meta["sample_id"][30:]] == "test").all()
    assert (assignment[meta["sample_id"][:30]] != "test").all() and (assignment == "val").sum() == 6
    with pytest.raises(SegbenchError, match=r"split.official_test: \['official_split'\]"):
        split(meta.drop(columns="official_split"), 0, 0.1, 0.2, "breed", official_test=True)


def test_a_small_dataset_merges_its_rarest_classes_instead_of_crashing(caplog):
    """54 tumour images in 9 subtypes: the test split holds 6 images, fewer than the classes, where
    scikit-learn alone raises "The test_size = 6 should be greater or equal to the number of classes = 9"."""
    meta = meta_with({name: 6 for name in BTXRD_COUNTS})
    with caplog.at_level(logging.WARNING):
        assignment, counts = split(meta, 42, 0.10, 0.20, "tumor_type")
    assert "test split: cannot stratify on every class (6 images on one side for 9 classes); merged the rarest" \
        in caplog.text
    assert assignment["subset"].value_counts().to_dict() == {"train": 38, "val": 10, "test": 6}
    assert split(meta, 42, 0.10, 0.20, "tumor_type")[0].equals(assignment)


def test_when_merging_leaves_one_stratum_the_split_is_random(caplog):
    with caplog.at_level(logging.WARNING):
        assignment = split(meta_with({f"c{i}": 1 for i in range(4)}), 0, 0.25, 0.3, "tumor_type")[0]
    assert "test split: falling back to a random split (a class has fewer than 2 images" in caplog.text
    assert assignment["subset"].value_counts().to_dict() == {"train": 2, "test": 1, "val": 1}


def test_too_few_groups_for_the_folds_is_named():
    meta = btxrd_like(n_groups=3)
    with pytest.raises(SegbenchError, match="split.group_by: .* too few for"):
        split(meta, 42, 0.1, 0.2, "tumor_type", groups=groups_of(meta), folds=5)


def test_a_held_out_center_is_the_test_subset_and_absent_from_train_and_val():
    meta = btxrd_like()
    meta["center"] = [1, 2, 3] * (len(meta) // 3) + [1] * (len(meta) % 3)
    assignment, counts = split(meta, 42, 0.1, 0.2, "tumor_type", holdout={"by": "center", "values": [3]})
    subset = assignment.set_index("sample_id")["subset"]
    center = meta.set_index("sample_id")["center"]
    assert (subset[center == 3] == "test").all() and (center[subset == "test"] == 3).all()
    assert set(center[subset.isin(["train", "val", "in_group"])]) == {1, 2}
    in_group = (subset == "in_group").sum()
    assert in_group == pytest.approx(0.1 * (center != 3).sum(), abs=1) and "in_group" in counts.columns
    folded = split(meta, 42, 0.1, 0.2, "tumor_type", folds=3, holdout={"by": "center", "values": ["3"]})[0]
    assert (folded.loc[folded["subset"] == "in_group", "fold"] == -1).all()
    with pytest.raises(SegbenchError, match=r"split.holdout: center has no \['4'\]; its values: \['1', '2', '3'\]"):
        split(meta, 42, 0.1, 0.2, "tumor_type", holdout={"by": "center", "values": [4]})
    with pytest.raises(SegbenchError, match="holds every sample"):
        split(meta, 42, 0.1, 0.2, "tumor_type", holdout={"by": "center", "values": [1, 2, 3]})
    with pytest.raises(SegbenchError, match=r"split.holdout.by: \['site'\] not among"):
        split(meta, 42, 0.1, 0.2, "tumor_type", holdout={"by": "site", "values": [1]})


@pytest.mark.parametrize("held, share", [([3], 0.5), ([1], 0.9)], ids=["small-held-out-group", "large-held-out-group"])
def test_the_references_train_as_many_images_in_the_held_out_group_as_elsewhere(held, share):
    """reference_in trains on ``share`` of the held-out group (whole groups) and tests on the rest; reference_out on
    as many of the sweep's own train and val images; neither on more than the sweep's models."""
    meta = btxrd_like(120)
    meta["center"] = [1, 1, 2, 3] * (len(meta) // 4) + [1] * (len(meta) % 4)  # centre 1: half the images
    groups = groups_of(meta)
    assignment = split(meta, 42, 0.1, 0.2, "tumor_type", groups=groups,
                       holdout={"by": "center", "values": held, "reference": share})[0].set_index("sample_id")
    inside, outside, subset = assignment["reference_in"], assignment["reference_out"], assignment["subset"]
    assert set(inside[subset == "test"].dropna()) <= {"train", "val", "test"} and inside[subset != "test"].isna().all()
    assert set(outside.dropna()) == {"train", "val"}
    assert ((subset[outside == "train"] == "train").all() and (subset[outside == "val"] == "val").all())
    for part in ("train", "val"):
        assert (inside == part).sum() == (outside == part).sum() <= (subset == part).sum() > 0
    tested = groups[inside == "test"]
    assert not set(tested) & set(groups[inside.isin(["train", "val"])])  # whole groups on each side
    assert (inside == "test").sum() == pytest.approx((subset == "test").sum() * (1 - share), rel=0.3)
    if held == [1]:  # a held-out group larger than the sweep's training: capped at the sweep's sizes
        assert (inside == "train").sum() == (subset == "train").sum()
    again = split(meta, 42, 0.1, 0.2, "tumor_type", groups=groups,
                  holdout={"by": "center", "values": held, "reference": share})[0].set_index("sample_id")
    assert again.equals(assignment)
    plain = split(meta, 42, 0.1, 0.2, "tumor_type", holdout={"by": "center", "values": held, "reference": None})[0]
    assert "reference_in" not in plain


def test_leave_one_group_out_makes_one_fold_per_group_and_names_what_it_cannot_split():
    meta = btxrd_like()
    meta["site"] = (["b", "a", "c"] * len(meta))[:len(meta)]
    assignment, counts = split(meta, 42, 0.1, 0.2, "tumor_type", folds={"by": "site"})
    fold = assignment.set_index("sample_id")["fold"]
    site = meta.set_index("sample_id")["site"]
    assert (fold[site == "a"] == 0).all() and (fold[site == "c"] == 2).all()  # sorted values
    assert set(assignment["subset"]) == {"train", "val", "in_group"}  # no common test subset: each fold's group
    share = assignment.groupby(fold.to_numpy())["subset"].apply(lambda s: (s == "in_group").mean())
    assert share.between(0.08, 0.12).all() and list(counts.columns)[:2] == ["fold (site)", "train"]
    with pytest.raises(SegbenchError, match=r"split.folds.by: site has one value \(\['a'\]\)"):
        split(meta.assign(site="a"), 42, 0.1, 0.2, "tumor_type", folds={"by": "site"})
    with pytest.raises(SegbenchError, match=r"split.folds.by: 'scanner' not among"):
        split(meta, 42, 0.1, 0.2, "tumor_type", folds={"by": "scanner"})
    with pytest.raises(SegbenchError, match="each choose the test images; set one"):
        split(meta, 42, 0.1, 0.2, "tumor_type", folds={"by": "site"}, holdout={"by": "site", "values": ["a"]})


def with_blanks(meta: pd.DataFrame) -> pd.DataFrame:
    """BTXRD's quirks: blank cells in every metadata column (a numeric column with a blank reads as float)."""
    meta = meta.copy()
    for k, column in enumerate(["center", "age", "gender", "tumor_type", "bone"]):
        meta[column] = meta[column].astype(object)
        meta.loc[meta.index[k::7], column] = None
    return pd.read_csv(io.StringIO(meta.to_csv(index=False)))  # as the stages read meta.csv


def test_two_images_differing_only_in_a_blank_bone_are_not_one_group():
    from segbench.data.audit import audit
    from segbench.data.split import grouping

    meta = pd.DataFrame({"sample_id": ["a", "b", "c", "d"], "center": [1, 1, 1, 1], "age": [30, 30, 30, 30],
                         "gender": ["M"] * 4, "tumor_type": ["osteosarcoma"] * 4,
                         "bone": [None, None, "femur", "femur"]})
    meta = pd.read_csv(io.StringIO(meta.to_csv(index=False)))
    assert meta["bone"].isna().sum() == 2
    part = pd.Series(["train", "test", "train", "test"], index=list("abcd"))
    report = audit(meta, pd.DataFrame(columns=["a", "b", "distance"]), part, GROUP)
    assert report["groups_across_subsets"] == 1  # c and d: the same known lesion
    assert report["leaked_test_images"] == ["d"] and report["unknown_group_fields"] == 2
    no_pairs = pd.DataFrame(columns=["a", "b"])
    for group_by in (GROUP, "auto"):
        groups = grouping(group_by, meta, no_pairs, GROUP)
        assert groups["a"] != groups["b"] and groups["c"] == groups["d"], group_by


def test_blank_stratify_and_group_cells_split_and_audit_without_crashing():
    from segbench.data.audit import audit
    from segbench.data.split import grouping, parts

    meta = with_blanks(btxrd_like())
    assert meta[GROUP].isna().any().all()
    groups = grouping("auto", meta, pd.DataFrame(columns=["a", "b"]), GROUP)
    assignment, counts = split(meta, 42, 0.1, 0.2, "tumor_type", groups=groups, folds=3)
    assert "(blank)" in set(counts["tumor_type"])  # blanks are one stratum, counted
    assert counts.set_index("tumor_type").loc["(blank)", "total"] == meta["tumor_type"].isna().sum()
    report = audit(meta, pd.DataFrame(columns=["a", "b", "distance"]), parts(assignment), GROUP)
    assert report["unknown_group_fields"] == meta[GROUP].isna().any(axis=1).sum()
    assert split(meta, 42, 0.1, 0.2, "tumor_type", groups=groups, folds=3)[0].equals(assignment)


def test_a_held_out_center_read_as_float_because_of_a_blank_still_matches():
    meta = btxrd_like()
    meta["center"] = ([1, 2, 3] * len(meta))[:len(meta)]
    meta = with_blanks(meta)
    assert meta["center"].dtype == float
    subset = split(meta, 42, 0.1, 0.2, "tumor_type", holdout={"by": "center", "values": [3]})[0]["subset"]
    assert (subset[meta["center"].to_numpy() == 3] == "test").all()
    assert (subset[meta["center"].isna().to_numpy()] != "test").all()  # unknown is not the held-out centre


def test_leaked_test_images_are_counted_by_the_side_they_reach_and_never_through_another_test_subset():
    from segbench.data.audit import audit

    meta = pd.DataFrame({"sample_id": list("abcdefgh")})
    part = pd.Series(["test", "train", "test", "val", "test", "in_group", "test", "test"], index=list("abcdefgh"))
    pairs = pd.DataFrame({"a": [0, 2, 4, 6], "b": [1, 3, 5, 7], "distance": [3, 5, 2, 1]})  # a-b, c-d, e-f, g-h
    report = audit(meta, pairs, part, [])
    assert report["leaked_test_images"] == ["a", "c"]  # e's copy is only tested; g and h are both test
    assert report["leaked_test_images_by_side"] == {"train": 1, "val": 1}
    assert report["pairs_across_subsets"] == {"test / train": 1, "test / val": 1, "in_group / test": 1}
    assert "mirrored copy is not found" in report["checked"][0]


def test_an_in_group_image_with_a_near_copy_in_training_is_listed_apart_from_the_leaked_test_images():
    from segbench.data.audit import audit

    meta = pd.DataFrame({"sample_id": list("abcd")})
    part = pd.Series(["in_group", "train", "in_group", "test"], index=list("abcd"))
    pairs = pd.DataFrame({"a": [0, 2], "b": [1, 3], "distance": [2, 4]})  # a-b crosses into training, c-d does not
    report = audit(meta, pairs, part, [])
    assert report["leaked_in_group_images"] == ["a"] and report["leaked_test_images"] == []
    assert report["leaked_test_images_by_side"] == {}
