"""segbench: a reproducible architecture x loss benchmark for 2D segmentation."""

__version__ = "0.1.0"


class SegbenchError(Exception):
    """A user-facing error: bad params, bad input file, missing stage output."""
