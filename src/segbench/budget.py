"""Successive halving's schedule (``sweep.budget``; Jamieson & Talwalkar, AISTATS 2016, the inner loop of
Hyperband, Li et al., JMLR 2018): the rungs' epochs, who races whom, and what a pruned run records.

Rung r trains every pair still in the race to ``min_epochs * eta**r`` epochs (``rungs``); after it, the best
``ceil(n / eta)`` pairs by mean val Dice over their seeds and folds (the best epoch so far; test images are never
read) go on, the rest are pruned (``segbench.evaluation.selection``). The final rung is the ``train`` stage
itself, to ``train.epochs``.
Under ``sweep.tune`` the race is within each pair, among its candidates (``races``): the same budget per pair, and
the final rung is the ``tune`` stage.

``strategy: race`` keeps the rungs but not the fraction: after each rung, an entrant is dropped only when the
report's own test says it is worse than the leader on the val images (Maron & Moore's racing, NIPS 1993, with a
paired test in place of Hoeffding bounds), so a pair the data cannot yet tell apart goes on.
How a run trains through the rungs: ``segbench.training.halving``.
"""

from __future__ import annotations

from segbench import paths
from segbench.paths import run_name
from segbench.tuning import candidates


def rungs(params: dict) -> list[int]:
    """The epochs each rung trains to, before the final one (``train.epochs``); [] without ``sweep.budget``."""
    budget, epochs, out = params["sweep"]["budget"], params["train"]["epochs"], []
    if budget:
        reach = budget["min_epochs"]
        while reach < epochs:
            out.append(reach)
            reach *= budget["eta"]
    return out


def entrant(arch: str, loss: str, candidate: int | None = None) -> str:
    """A name in a rung's decision: the pair, or under ``sweep.tune`` its candidate ("unet__dice/candidate1")."""
    pair = run_name(arch, loss)
    return pair if candidate is None else f"{pair}/{paths.CANDIDATE.format(candidate=candidate)}"


def races(params: dict) -> list[list[tuple[str, str, int | None]]]:
    """Who races against whom, as (arch, loss, candidate): every pair in one race; under ``sweep.tune``, each
    pair's candidates in a race of their own (the pairs themselves are all compared in full)."""
    sweep, count = params["sweep"], len(candidates(params))
    pairs = [(a, l) for a in sweep["architectures"] for l in sweep["losses"]]
    if not count:
        return [[(a, l, None) for a, l in pairs]]
    return [[(a, l, k) for k in range(count)] for a, l in pairs]


def pruned_record(decision: dict, name: str) -> dict:
    """What train.json records of an entrant (``entrant``) ``decision`` pruned (in a race, with its p)."""
    return {"rung": decision["rung"], "epochs": decision["epochs"], "val_dice": decision["val_dice"][name],
            **({"p_holm": decision["p_holm"][name]} if "p_holm" in decision else {})}
