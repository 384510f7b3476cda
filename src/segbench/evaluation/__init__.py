"""Metrics and the `evaluate` stage."""
