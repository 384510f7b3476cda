"""The ``train`` stage's run: a pair's own training (``segbench.training.halving``), or under ``sweep.tune`` its
chosen candidate's run (the grid and the choice: ``segbench.tuning``)."""

from __future__ import annotations

import shutil

from segbench import paths
from segbench.io import atomic_path, read_json, write_json
from segbench.training.halving import train_run
from segbench.tuning import candidates


def train_final(params: dict, where: paths.Sweep, arch: str, loss: str, seed: int, fold: int, **train) -> dict:
    """The pair's run for the comparison (``train``: ``trainer.train_pair``'s other arguments)."""
    if candidates(params):
        return use_chosen(where, arch, loss, seed, fold)
    return train_run(params, where, arch, loss, seed, fold, **train)


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
