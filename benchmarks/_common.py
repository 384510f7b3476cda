"""What every benchmark script shares: ``--quick`` (tiny sizes, seconds: the test suite runs it, so an API change
breaks a test, not a published figure) and the heading of a recorded run (its time, commit and machine)."""

from __future__ import annotations

import argparse
import time

from segbench import usable_cores
from segbench.provenance import git_commit


def parser(doc: str, **quick) -> argparse.ArgumentParser:
    """The script's argument parser, with ``--quick`` setting the options in ``quick`` (parse with ``parse``)."""
    out = argparse.ArgumentParser(description=doc.splitlines()[0])
    out.add_argument("--quick", action="store_true", help=f"tiny sizes, in seconds: {quick or 'as given'}")
    out.set_defaults(_quick=quick)
    return out


def parse(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.quick:
        for key, value in args._quick.items():
            setattr(args, key, value)
    return args


def heading(what: str) -> str:
    """The first line of a recorded run: when, on which code and how many cores, then ``what``."""
    return (f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, code {git_commit(short=True) or 'unknown'}, "
            f"{usable_cores()} CPU cores; {what}")


def minutes(seconds: float) -> str:
    whole, rest = divmod(round(seconds), 60)
    return f"{whole} min {rest:02d} s"
