"""segbench: a reproducible architecture x loss benchmark for 2D segmentation."""

import difflib

__version__ = "0.1.0"


class SegbenchError(Exception):
    """A user-facing error: bad params, bad input file, missing stage output."""


def look_up(name: str, table: dict, what: str):
    """``table[name]``, or a SegbenchError naming the ``what`` and listing the known names (MONAI-style)."""
    if name not in table:
        hint = difflib.get_close_matches(name, table, n=1)
        raise SegbenchError(f"unknown {what} {name!r}; available: {sorted(table)}"
                            + (f"; did you mean {hint[0]!r}?" if hint else ""))
    return table[name]
