"""The dataset readers, by ``dataset.name``.

Each reader module offers ``MODE`` ("L" or "RGB"), ``SKIP_UNREADABLE``, ``STRATA`` (meta.csv
columns worth a per-value result), ``list_samples(extracted, options)``,
``load_mask(sample, height, width, options)`` and ``class_names(options)``.
"""

from __future__ import annotations

from types import ModuleType

from segbench.data import btxrd, pets

READERS = {"btxrd": btxrd, "synthetic": btxrd, "oxford_pets": pets}  # the synthetic demo is in BTXRD's format


def reader(dataset: dict) -> ModuleType:
    return READERS[dataset["name"]]


def class_names(dataset: dict) -> list[str]:
    """Names of the mask's classes, background first."""
    return reader(dataset).class_names(dataset)
