"""The dataset readers, by ``dataset.name``.

Each reader module offers ``describe(extracted, options) -> Listing`` (the samples, the class names,
the colour mode, the strata and the default stratification), ``load_mask(sample, height, width,
options)`` and ``SKIP_UNREADABLE``.
"""

from __future__ import annotations

from types import ModuleType

from segbench.data import btxrd, folder, nnunet, pets

READERS = {"btxrd": btxrd, "synthetic": btxrd, "oxford_pets": pets, "folder": folder, "nnunet": nnunet}


def reader(dataset: dict) -> ModuleType:
    """The reader of ``dataset.name`` (the synthetic demo is in BTXRD's format)."""
    return READERS[dataset["name"]]
