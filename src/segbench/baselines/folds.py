"""Segbench's folds as a baseline must train on them, and the check that it will, which the baseline_train stage
runs before any baseline trains (nnU-Net's trainer is checked once more, on the split it actually reads)."""

from __future__ import annotations

from segbench import SegbenchError


def cases(data, fold: int) -> dict[str, list[str]]:
    """The train and val sample ids of segbench's run that validates on ``fold`` (``data``: ``Processed``),
    sorted."""
    ids = data.meta["sample_id"].astype(str).to_numpy()
    train, val = data.fold_indices(fold)
    return {"train": sorted(ids[train]), "val": sorted(ids[val])}


def check(planned: dict[str, list[str]] | None, expected: dict[str, list[str]], fold: int, who: str) -> None:
    """``planned`` (the cases ``who`` will train fold ``fold`` on, None for a split of its own) is ``expected``.

    Raises:
        SegbenchError: they differ, with both sides' counts and a case on one side only.
    """
    if planned is None:
        raise SegbenchError(f"{who} has no split for fold {fold} and would make one of its own; segbench's has "
                            f"{len(expected['train'])} train, {len(expected['val'])} val cases: rerun "
                            "`segbench baseline_prepare`")
    planned = {side: sorted(map(str, planned[side])) for side in ("train", "val")}
    if planned != expected:
        side = next(k for k in planned if planned[k] != expected[k])
        odd = sorted(set(planned[side]) ^ set(expected[side]))
        raise SegbenchError(f"{who}'s split for fold {fold} ({len(planned['train'])} train, {len(planned['val'])} "
                            f"val cases) is not segbench's ({len(expected['train'])} train, "
                            f"{len(expected['val'])} val): {side} differs, e.g. {odd[:3]}; rerun "
                            "`segbench baseline_prepare`")
