"""The baseline registry's table: one entry per reference method a sweep can run beside its pairs
(``sweep.baselines``), its module and its paper. The module provides the baseline's stages: ``prepare`` (its own
data from segbench's split), ``cases`` (segbench's train and val ids of a fold), ``train`` (one fold, after
checking that it trains on exactly those), ``member`` (a trained fold as a predictor member) and ``class_names``
(from its train.json). Adding a baseline is one module plus one entry here.

As the other tables, it is tracked per entry: a baseline's jobs depend on its own module, and no other job does.
"""

from __future__ import annotations

from segbench.registry import Registry

BASELINES = Registry("baseline")

BASELINES.add("nnunet", "segbench.baselines.nnunet", "Isensee et al., Nature Methods 2021",
              "nnU-Net v2: its own planner, preprocessing, 2d network, loss and trainer, on segbench's split",
              requires=("nnunetv2",))
