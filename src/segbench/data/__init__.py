"""Datasets: download, parsing, preprocessing, splitting and the torch Dataset."""
