"""The nnU-Net baseline's checks and split export, without nnU-Net running."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from segbench import SegbenchError
from segbench.baselines import nnunet


def _data(train: list[int], val: list[int]) -> SimpleNamespace:
    ids = pd.DataFrame({"sample_id": [f"IMG{i:03d}" for i in range(10)]})
    return SimpleNamespace(meta=ids, fold_indices=lambda fold: (np.array(train), np.array(val)))


def test_too_few_cases_for_nnunets_planner_is_refused_naming_the_fold():
    with pytest.raises(SegbenchError, match="fold 0 has 1 training and 1 validation cases; nnU-Net's planner"):
        nnunet.check(_data([0], [1]), [0])
    with pytest.raises(SegbenchError, match="fold 2 has 3 training and 0 validation"):
        nnunet.check(_data([0, 1, 2], []), [2])


def test_splits_final_holds_segbenchs_fold_by_sample_id():
    assert nnunet.splits(_data([3, 0], [5])) == [{"train": ["IMG000", "IMG003"], "val": ["IMG005"]}]
    assert nnunet.dataset_name("btxrd") == "Dataset501_Btxrd"


def test_splits_final_holds_every_fold_at_its_own_number_and_refuses_a_gap():
    data = _data([0], [1])
    data.meta["fold"] = [2, 0, 1, -1, 2, 0, 1, 1, 0, 2]
    data.fold_indices = lambda fold: (np.flatnonzero((data.meta["fold"] != fold) & (data.meta["fold"] >= 0)),
                                      np.flatnonzero(data.meta["fold"] == fold))
    written = nnunet.splits(data)
    assert [entry["val"] for entry in written] == [["IMG001", "IMG005", "IMG008"], ["IMG002", "IMG006", "IMG007"],
                                                   ["IMG000", "IMG004", "IMG009"]]
    data.meta["fold"] = data.meta["fold"].replace(1, 3)
    with pytest.raises(SegbenchError, match=r"folds are \[0, 2, 3\]; nnU-Net needs them numbered 0 to 2"):
        nnunet.splits(data)


def test_a_split_that_nnunet_would_read_differently_stops_before_training():
    from segbench.baselines import folds

    expected = {"train": ["a", "b"], "val": ["c"]}
    agrees = SimpleNamespace(fold=1, do_split=lambda: (["b", "a"], ["c"]))
    nnunet.check_split(agrees, expected)
    own = SimpleNamespace(fold=2, do_split=lambda: (["a", "c"], ["b"]))  # nnU-Net's own 80:20 fallback
    with pytest.raises(SegbenchError, match=r"nnU-Net's trainer's split for fold 2 \(2 train, 1 val cases\) is not "
                                            r"segbench's \(2 train, 1 val\): train differs, e.g. \['b', 'c'\]"):
        nnunet.check_split(own, expected)
    with pytest.raises(SegbenchError, match=r"mean_mask has no split for fold 3 and would make one of its own"):
        folds.check(None, expected, 3, "mean_mask")


def test_nnunet_imported_before_its_folders_are_set_is_an_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "nnunetv2.paths", object())
    with pytest.raises(SegbenchError, match="in its own process"):
        with nnunet.folders():
            pass
