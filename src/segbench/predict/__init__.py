"""Prediction: load a trained run, segment images of any size at their original resolution, average fold
models, post-process. Evaluation, the apps and the MLflow model all predict through it."""
