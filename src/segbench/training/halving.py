"""A run through successive halving's rungs (``sweep.budget``; the schedule and decisions: ``segbench.budget``).

Each rung resumes the run where the previous one left it; the schedule is that of ``train.epochs`` from the first
epoch, so a run that survives every rung ends with exactly the model an unpruned sweep trains.

A rung's run folder (``paths.RUNG``; under ``sweep.tune``, one per candidate in it) holds what a fold folder holds,
with resume.pt; a run pruned before the rung leaves only its train.json, marked ``pruned``. Each rung's decision is
``paths.SELECTION``, a small file kept in git. The jobs of every rung exist for every pair (a static DAG for
Snakemake and DVC alike): a pruned run's finish at once.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from segbench import paths
from segbench.budget import entrant, pruned_record, rungs
from segbench.io import atomic_path, read_json, write_json
from segbench.tuning import candidates, with_candidate

log = logging.getLogger(__name__)


def fate(where: paths.Sweep, rung: int, arch: str, loss: str, seed: int, fold: int,
         candidate: int | None = None) -> tuple[Path | None, dict | None]:
    """Where run (``arch``, ``loss``, ``seed``, ``fold``; under ``sweep.tune``, of candidate ``candidate``) stands
    before rung ``rung`` (``len(rungs)``: the final training): the rung folder to resume from (None at rung 0), and
    the pruning that stopped it (None while it is in the race). Reads the previous rung's decision and folder only."""
    if rung == 0:
        return None, None
    decision, before = read_json(where.selection(rung - 1)), where.rung(rung - 1, arch, loss, seed, fold, candidate)
    name = entrant(arch, loss, candidate)
    if name in decision["promoted"]:
        return before, None
    if name in decision["pruned"]:
        return before, pruned_record(decision, name)
    pruned = read_json(before / paths.TRAINED)["pruned"]  # pruned earlier: the rung that did it says where
    return where.rung(pruned["rung"], arch, loss, seed, fold, candidate), pruned


def start_from(folder: Path | None, out_dir: Path) -> None:
    """Put the state a rung left in ``folder`` into ``out_dir``, where ``trainer.train_pair`` resumes it (unless
    ``out_dir`` already holds a resume.pt: a killed job's, further on). model_best.pt is the state's best, never
    a file an earlier run left there."""
    if folder is None or (out_dir / paths.RESUME).exists():
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in (paths.RESUME_BEST, paths.CHECKPOINT, paths.RESUME):  # resume.pt last: it makes the folder resumable
        with atomic_path(out_dir / name) as tmp:
            shutil.copyfile(folder / paths.RESUME_BEST if name == paths.CHECKPOINT else folder / name, tmp)


def train_rung(params: dict, where: paths.Sweep, rung: int, arch: str, loss: str, seed: int, fold: int,
               **train) -> list[dict]:
    """Rung ``rung`` of one run (under ``sweep.tune``: of each of its candidates, one after the other): trained on
    to the rung's epochs (``train``: ``trainer.train_pair``'s other arguments), or, if pruned before it, only its
    pruned train.json."""
    count = len(candidates(params))
    return [_rung_run(params, where, rung, arch, loss, seed, fold, candidate, **train)
            for candidate in (range(count) if count else [None])]


def _rung_run(params: dict, where: paths.Sweep, rung: int, arch: str, loss: str, seed: int, fold: int,
              candidate: int | None, **train) -> dict:
    out_dir = where.rung(rung, arch, loss, seed, fold, candidate)
    folder, pruned = fate(where, rung, arch, loss, seed, fold, candidate)
    if pruned:  # the record the rung before left (its declared input), marked
        record = {**read_json(where.rung(rung - 1, arch, loss, seed, fold, candidate) / paths.TRAINED),
                  "pruned": pruned}
        out_dir.mkdir(parents=True, exist_ok=True)
        write_json(out_dir / paths.TRAINED, record)
        log.info("%s: pruned at rung %d; nothing to train", entrant(arch, loss, candidate), pruned["rung"])
        return record
    start_from(folder, out_dir)
    return _train(params, where, arch, loss, seed, fold, candidate, out_dir, until=rungs(params)[rung], pause=True,
                  **train)


def train_run(params: dict, where: paths.Sweep, arch: str, loss: str, seed: int, fold: int,
              candidate: int | None = None, **train) -> dict:
    """A run to ``train.epochs``: the ``train`` stage's, or the ``tune`` stage's of candidate ``candidate``. Under
    ``sweep.budget`` a survivor resumes its last rung, and a pruned run's folder gets the model of the rung that
    pruned it (no epoch more), marked pruned."""
    out_dir = where.fold(arch, loss, seed, fold) if candidate is None else where.tune(arch, loss, candidate, seed,
                                                                                       fold)
    folder, pruned = fate(where, len(rungs(params)), arch, loss, seed, fold, candidate)
    start_from(folder, out_dir)
    return _train(params, where, arch, loss, seed, fold, candidate, out_dir,
                  until=pruned["epochs"] if pruned else None, pruned=pruned, **train)


def _train(params: dict, where: paths.Sweep, arch: str, loss: str, seed: int, fold: int, candidate: int | None,
           out_dir: Path, **options) -> dict:
    from segbench.training.trainer import train_pair

    if candidate is not None:
        params, options["tracked_as"] = with_candidate(params, candidate), f"{fold}/candidate{candidate}"
    return train_pair(arch, loss, params, paths.processed_dir(where.dataset), paths.split_csv(where.dataset),
                      out_dir, seed, fold, **options)
