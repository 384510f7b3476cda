import logging

import pandas as pd
import pytest

from segbench import SegbenchError
from segbench.data.split import split

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
    first, _ = split(meta, 1, 0.1, 0.2, "tumor_type")
    again, _ = split(meta, 1, 0.1, 0.2, "tumor_type")
    other, _ = split(meta, 2, 0.1, 0.2, "tumor_type")
    assert first.equals(again) and not first.equals(other)
    assert first["sample_id"].is_unique and first["subset"].notna().all()


def test_tiny_class_falls_back_to_random(caplog):
    with caplog.at_level(logging.WARNING):
        assignment, _ = split(meta_with({"a": 30, "b": 1}), 0, 0.1, 0.2, "tumor_type")
    assert "falling back to a random split" in caplog.text
    assert len(assignment) == 31


def test_unknown_stratify_column_is_named():
    with pytest.raises(SegbenchError, match="split.stratify: 'breed'"):
        split(meta_with({"a": 10}), 0, 0.1, 0.2, "breed")
