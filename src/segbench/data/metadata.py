"""meta.csv's values as text, keys and labels, the same on pandas 2 and 3, with blank cells handled on purpose.

A blank cell is *unknown*, never a value: two images with an unknown ``bone`` are not the same lesion because both
are unknown. So a group key with a blank field is ``None`` (the image is a group of its own), while strata and
tables show blanks as one label, ``BLANK``. Written by hand because pandas has no such helper: ``astype(str)``
turned a missing value into the text "nan" on pandas 2 and keeps it missing on pandas 3.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BLANK = "(blank)"  # a missing value in strata, count tables and figures (as Excel's pivot tables show it)


def as_text(column: pd.Series) -> pd.Series:
    """Each value as text, missing values as None (object dtype).

    Whole numbers lose their ".0": a numeric column with a blank cell reads as float, and its 3.0 is the 3 that
    ``split.holdout: {values: [3]}`` names.
    """
    def text(value) -> str | None:
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            return str(int(value))
        return str(value)

    return pd.Series([text(v) for v in column], index=column.index, dtype=object)


def labels(column: pd.Series) -> pd.Series:
    """Each value as text, blanks as ``BLANK``: a stratum or a table row, never a group."""
    return as_text(column).fillna(BLANK)


def group_keys(meta: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One key per row: its ``columns`` joined, or None where any of them is blank (the row is its own group)."""
    fields = pd.DataFrame({c: as_text(meta[c]) for c in columns}, index=meta.index)
    complete = fields.notna().all(axis=1).to_numpy()
    keys = fields.fillna("").agg("|".join, axis=1) if columns else pd.Series("", index=meta.index)
    return pd.Series(np.where(complete, keys.to_numpy(dtype=object), None), index=meta.index, dtype=object)
