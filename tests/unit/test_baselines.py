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
    assert nnunet.splits(_data([3, 0], [5]), [0]) == [{"train": ["IMG000", "IMG003"], "val": ["IMG005"]}]
    assert nnunet.dataset_name("btxrd") == "Dataset501_Btxrd"


def test_nnunet_imported_before_its_folders_are_set_is_an_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "nnunetv2.paths", object())
    with pytest.raises(SegbenchError, match="in its own process"):
        with nnunet.folders():
            pass
