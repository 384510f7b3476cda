"""The `report` stage: comparison tables, statistics, figures and an HTML page of every pair."""

from segbench.report.build import build_report

__all__ = ["build_report"]
