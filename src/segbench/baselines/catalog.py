"""The baseline registry's table: one entry per reference method a sweep can run beside its pairs
(``sweep.baselines``), its module and its paper. The module provides the baseline's stages: ``prepare`` (its own
data from segbench's split), ``planned_cases`` (the train and val ids it will train a fold on, which the stage
checks against segbench's before training), ``train`` (one fold), ``member`` (a trained fold as a predictor
member) and ``class_names`` (from its train.json). ``prepare`` and ``train`` also take the entry's ``bind`` (the
nnU-Net entries: their planner). Adding a baseline is one module plus one entry here.

As the other tables, it is tracked per entry: a baseline's jobs depend on its own module, and no other job does.
"""

from __future__ import annotations

from segbench.registry import Registry

BASELINES = Registry("baseline")

BASELINES.add("nnunet", "segbench.baselines.nnunet", "Isensee et al., Nature Methods 2021",
              "nnU-Net v2: its own planner, preprocessing, 2d network, loss and trainer, on segbench's split",
              requires=("nnunetv2",), bind={"planner": "ExperimentPlanner"})
BASELINES.add("nnunet_resenc_m", "segbench.baselines.nnunet", "Isensee et al., MICCAI 2024 (nnU-Net Revisited)",
              "nnU-Net v2 with its residual-encoder M preset (nnUNetPlannerResEncM), the recommended configuration",
              requires=("nnunetv2",), bind={"planner": "nnUNetPlannerResEncM"})
