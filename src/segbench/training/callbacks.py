"""What the epoch loop (``trainer.fit``) does besides training: each a callback with three hooks.

- ``epoch_end(run, row, last)``: after an epoch is recorded in ``run.history`` (``last``: no epoch follows);
- ``failed(run, error)``: on the way down from a kill, a crash or SIGTERM;
- ``closed(run)``: after train.json is written.

Checkpoints writes model_best.pt and resume.pt, History the CSV files, Tracking mirrors to MLflow, EarlyStopping
decides when to stop; ``sigterm_interrupts`` turns Slurm's SIGTERM at a time limit into a KeyboardInterrupt.
"""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

import pandas as pd
import torch

from segbench import paths
from segbench.io import atomic_path, write_csv
from segbench.training.checkpoint import Checkpointer, link_or_copy, to_cpu

TIMING = ("seconds", "train_seconds", "val_seconds", "peak_memory_mb")  # timing.csv's columns, not history.csv's


class Callback:
    def epoch_end(self, run, row: dict, last: bool) -> None:
        pass

    def failed(self, run, error: BaseException) -> None:
        pass

    def closed(self, run) -> None:
        pass


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs without a better val Dice (None: never)."""

    def __init__(self, patience: int | None):
        self.patience = patience

    def stop(self, run) -> bool:
        return bool(self.patience) and run.stale >= self.patience


class Checkpoints(Callback):
    """model_best.pt when val Dice improves (resume_best.pt its second name, which outlives a failed job),
    resume.pt when ``every_minutes`` have passed and an epoch follows; model_last.pt at the end. Written in the
    background (``Checkpointer``), atomically. ``pause``: a part of a run (a rung of successive halving) whose end
    writes resume.pt and keeps it, for the next part."""

    def __init__(self, out_dir: Path, meta: dict, key: str, every_minutes: float, pause: bool = False):
        self.out_dir, self.meta, self.key, self.every, self.pause = out_dir, meta, key, every_minutes * 60, pause
        self.writer, self.written = Checkpointer(), time.time()

    def epoch_end(self, run, row: dict, last: bool) -> None:
        writes, links = [], []
        if run.best["epoch"] == row["epoch"]:
            writes.append((self.out_dir / paths.CHECKPOINT, {"model": run.best["model"], "epoch": row["epoch"],
                                                             **self.meta}))
            links.append((self.out_dir / paths.CHECKPOINT, self.out_dir / paths.RESUME_BEST))
        if not last and time.time() - self.written >= self.every:  # the last epoch needs no resuming
            writes.append((self.out_dir / paths.RESUME, run.state(self.key)))
            self.written = time.time()
        self.writer.save(writes, links)

    def failed(self, run, error: BaseException) -> None:
        with contextlib.suppress(BaseException):
            self.writer.wait()  # the last complete snapshot stays resumable

    def finish(self, run) -> None:
        """After the loop: the pending writes on disk, then model_last.pt (and model_best.pt if no epoch made one:
        a run that diverged in its first epoch keeps the only weights there are)."""
        self.writer.wait()
        weights = to_cpu(run.net.state_dict())
        if not run.best["epoch"]:
            with atomic_path(self.out_dir / paths.CHECKPOINT) as tmp:
                torch.save({"model": weights, "epoch": 0, **self.meta}, tmp)
        with atomic_path(self.out_dir / paths.LAST) as tmp:
            torch.save({"model": weights, "epoch": len(run.history), **self.meta}, tmp)
        if self.pause:
            with atomic_path(self.out_dir / paths.RESUME) as tmp:
                torch.save(run.state(self.key), tmp)
            if not (self.out_dir / paths.RESUME_BEST).exists():  # no epoch was better than none: the weights above
                link_or_copy(self.out_dir / paths.CHECKPOINT, self.out_dir / paths.RESUME_BEST)

    def closed(self, run) -> None:
        if self.pause:
            return
        (self.out_dir / paths.RESUME).unlink(missing_ok=True)
        (self.out_dir / paths.RESUME_BEST).unlink(missing_ok=True)


class History(Callback):
    """history.csv (losses, val Dice and IoU, learning rate per epoch) and timing.csv (seconds and peak memory:
    apart, because a rerun changes them and history.csv is kept in git), rewritten every epoch."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir

    def epoch_end(self, run, row: dict, last: bool) -> None:
        history = pd.DataFrame(run.history)
        write_csv(self.out_dir / paths.HISTORY, history.drop(columns=list(TIMING)))
        write_csv(self.out_dir / paths.TIMING, history[["epoch", *TIMING]])

    def closed(self, run) -> None:
        """A job that trained no epoch (stopped before its first: out of memory, diverged; or resumed where the
        run had already stopped) still leaves both files: the run's history, or none."""
        if (self.out_dir / paths.HISTORY).exists():
            return
        if run.history:
            self.epoch_end(run, run.history[-1], True)
        else:
            write_csv(self.out_dir / paths.HISTORY, pd.DataFrame(columns=["epoch", "train_loss", "val_loss",
                                                                          "val_dice", "lr"]))
            write_csv(self.out_dir / paths.TIMING, pd.DataFrame(columns=["epoch", *TIMING]))


class Tracking(Callback):
    """The run's MLflow mirror: opened (or reopened on resume), one step per epoch, ended with the job's fate."""

    def __init__(self, tracker):
        self.tracker = tracker

    def open(self, run, names: tuple[str, str, int, int], logged: dict, tags: dict) -> None:
        """Reopen the run a resumed job had (its history logged again: a kill may have lost steps), else start
        one for ``names`` (arch, loss, seed, fold)."""
        run.run_id = self.tracker.resume(run.run_id) if run.run_id else None
        if run.run_id:
            self.tracker.log_history(run.run_id, run.history)
        else:
            run.run_id = self.tracker.start_training(*names, logged, tags)

    def epoch_end(self, run, row: dict, last: bool) -> None:
        self.tracker.log_metrics(run.run_id, {k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])

    def failed(self, run, error: BaseException) -> None:
        if run.run_id:
            self.tracker.end(run.run_id, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")

    def closed(self, run) -> None:
        self.tracker.end(run.run_id)


def _raise_on_sigterm(*_):
    raise KeyboardInterrupt("SIGTERM")


@contextlib.contextmanager
def sigterm_interrupts():
    """SIGTERM (Slurm's at a time limit, before SIGKILL) raises KeyboardInterrupt in the block, so the callbacks'
    ``failed`` hooks run."""
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
