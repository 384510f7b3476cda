"""A tuned pair's trainings (``sweep.tune``; the grid and the choice: ``segbench.tuning``): one run per candidate,
seed and fold, and the pair's own run, which is its chosen candidate's."""

from __future__ import annotations

import shutil

from segbench import paths
from segbench.io import atomic_path, read_json, write_json
from segbench.training.trainer import train_pair
from segbench.tuning import with_candidate


def train_candidate(params: dict, where: paths.Sweep, arch: str, loss: str, candidate: int, seed: int, fold: int,
                    **train) -> dict:
    """One run of a pair's candidate (``train``: ``trainer.train_pair``'s other arguments)."""
    return train_pair(arch, loss, with_candidate(params, candidate), paths.processed_dir(where.dataset),
                      paths.split_csv(where.dataset), where.tune(arch, loss, candidate, seed, fold), seed, fold,
                      tracked_as=f"{fold}/candidate{candidate}", **train)


def use_chosen(where: paths.Sweep, arch: str, loss: str, seed: int, fold: int) -> dict:
    """The ``train`` stage's run of a tuned pair: its chosen candidate's run, copied into the fold folder (train.json
    last, marked ``tuned``). Nothing is trained: the candidate's run is the pair's."""
    decision = read_json(where.tuning(arch, loss))
    chosen = decision["candidates"][decision["chosen"]]
    source, out_dir = where.tune(arch, loss, chosen["candidate"], seed, fold), where.fold(arch, loss, seed, fold)
    for name in (paths.CHECKPOINT, paths.LAST, paths.HISTORY, paths.TIMING):
        with atomic_path(out_dir / name) as tmp:
            shutil.copyfile(source / name, tmp)
    record = {**read_json(source / paths.TRAINED), "tuned": chosen}
    write_json(out_dir / paths.TRAINED, record)
    return record
