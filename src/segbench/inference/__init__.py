"""Inference: load a trained run and segment images of any size (shared by evaluation, the CLI, the
web page and the MLflow model)."""
