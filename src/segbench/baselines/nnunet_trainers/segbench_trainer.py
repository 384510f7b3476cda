"""nnU-Net's trainer, unchanged but for two things segbench needs: its latest checkpoint every epoch (nnU-Net's: every
50), copied to ``resume_dir`` outside the fold folder a rerun clears, and its training length, which segbench sets
on the instance (``num_epochs``, ``num_iterations_per_epoch``, ``num_val_iterations_per_epoch``) before training.

Imports nothing of segbench's: nnU-Net loads this file by path (``nnUNet_extTrainer``) to rebuild the network of a
checkpoint, in any process.
"""

import os
import shutil

import torch
from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

LATEST = "checkpoint_latest.pth"


class nnUNetTrainer_segbench(nnUNetTrainer):  # noqa: N801 (nnU-Net's naming of trainer variants)
    def __init__(self, plans: dict, configuration: str, fold: int, dataset_json: dict,
                 device: torch.device = torch.device("cuda")):  # nnU-Net records its init arguments by name
        super().__init__(plans, configuration, fold, dataset_json, device)
        self.save_every = 1
        self.resume_dir: str | None = None

    def save_checkpoint(self, filename: str) -> None:
        super().save_checkpoint(filename)
        if self.resume_dir and os.path.basename(filename) == LATEST and os.path.exists(filename):
            os.makedirs(self.resume_dir, exist_ok=True)
            partial = os.path.join(self.resume_dir, f".{LATEST}.partial")
            shutil.copyfile(filename, partial)
            os.replace(partial, os.path.join(self.resume_dir, LATEST))  # whole, or not there
