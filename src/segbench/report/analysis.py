"""statistics.json: what the report concludes, computed once and read by every table, figure and page.

The maths is in ``segbench.evaluation.statistics``; this module decides what is compared with what: the
Dice of the test images with a lesion, averaged over a pair's seeds; the best pair chosen among the pairs
that learned; the ranking in which every table and figure lists the pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from segbench import paths
from segbench.evaluation import statistics as st
from segbench.report.collect import Results
from segbench.report.tables import dice_matrix


def ranking(means: pd.Series, failed: set[str]) -> list[str]:
    """The pairs best mean first, the ones that failed to learn last (in the same order among themselves)."""
    order = means.sort_values(ascending=False, kind="stable").index
    return [p for p in order if p not in failed] + [p for p in order if p in failed]


def _num(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def leakage_effect(results: Results, leaked: list[str], order: list[str]) -> dict:
    """Each pair's mean test Dice with and without the test images the audit found leaked into training."""
    scores = results.image_scores("dice")
    clean = scores.drop(index=[s for s in leaked if s in scores.index])
    return {"leaked_test_images": len([s for s in leaked if s in scores.index]),
            "per_pair": {p: {"dice": float(scores[p].mean()), "dice_without_leaked": float(clean[p].mean())
                             if len(clean) else None, "n_without_leaked": int(len(clean))} for p in order}}


def _versus(table, order: list[str], alpha: float, margin) -> dict:
    """``statistics.versus_best``'s table as statistics.json holds it, pairs in rank order."""
    return {"best": table.attrs["best"], "test": table.attrs["test"], "effect": table.attrs["effect"],
            "correction": table.attrs["correction"], "alpha": alpha, "margin": margin,
            "pairs": {p: {**{k: _num(v) for k, v in row.items() if k != "verdict"}, "verdict": row["verdict"]}
                      for p, row in table.loc[order].iterrows()}}


def generalisation(results: Results, options: dict) -> dict:
    """Per other test set, every pair's generalisation gap in Dice (images with a lesion, averaged over seeds):
    in-group minus held-out group for a group hold-out (``in_group``), in-domain minus out-of-domain for an
    external dataset; with its bootstrap CI (``statistics.gap_ci``)."""
    if results.other_tests.empty:
        return {}
    test, out = results.image_scores("dice"), {}
    for name, rows in results.other_tests[results.other_tests["lesion"]].groupby("test set"):
        other = rows.pivot_table(index="sample_id", columns="pair", values="dice", aggfunc="mean")
        held_out = name == paths.IN_GROUP
        gaps = {p: st.gap_ci(other[p], test[p]) if held_out else st.gap_ci(test[p], other[p])
                for p in results.pairs if p in other}
        out[name] = {"reference": "in-group test images" if held_out else "this dataset's test images",
                     "other": "held-out group (the test images)" if held_out else f"{name}'s test images",
                     "pairs": {p: {k: _num(v) if isinstance(v, float) else v for k, v in g.items()}
                               for p, g in gaps.items()}}
    return out


def analyse(results: Results, options: dict, leaked: list[str] = ()) -> dict:
    """statistics.json from the results, ``params.yaml: statistics`` and the leakage audit's leaked test images."""
    scores = results.image_scores("dice")
    alpha, margin = options["alpha"], options["noninferiority_margin"]
    ci = st.bootstrap_ci(scores, options["bootstrap_resamples"], options["seed"])
    failed = set(results.failed)
    versus = st.versus_best(scores, alpha, margin, failed)
    best = versus.attrs["best"]
    stability = st.rank_stability(scores, seed=options["seed"])
    ranks, kendall = st.loss_rankings(dice_matrix(results))
    seeds = sorted(results.replicates["seed"].unique().tolist())
    sd_seeds = results.replicates.groupby("pair", sort=False)["dice"].std()
    order = ranking(ci["mean"], failed)
    return {
        "metric": "Dice per test image with a lesion, averaged over the pair's seeds",
        "n_images": int(len(scores)), "seeds": seeds, "best": best, "ranking": order,
        "per_pair": {p: {"mean": float(ci.loc[p, "mean"]), "ci_low": float(ci.loc[p, "ci_low"]),
                         "ci_high": float(ci.loc[p, "ci_high"]), "ci_method": ci.loc[p, "ci_method"],
                         "sd_across_seeds": _num(float(sd_seeds.get(p, np.nan))),
                         "failed": results.failed.get(p, [])} for p in order},
        "ci": "95% bootstrap confidence interval of the mean (scipy.stats.bootstrap, "
              f"{options['bootstrap_resamples']:,} resamples of the test images, the same ones for every pair; "
              "BCa, percentile where BCa is degenerate, as each pair's ci_method says). It covers the sampling of "
              "test images only: not the variance between training seeds, nor the selection of the best pair out "
              "of all of them.",
        "versus_best": _versus(versus, order, alpha, margin),
        **({"versus_baseline": _versus(st.versus_best(scores, alpha, margin, failed, reference=results.baselines[0]),
                                       order, alpha, margin)} if results.baselines else {}),
        "friedman": st.friedman_nemenyi(scores, alpha),
        "generalisation": generalisation(results, options),
        "rank_stability": stability.loc[order].to_dict(orient="index"),
        "rank_stability_method": "ranks by mean Dice on 1,000 bootstrap resamples of the test images",
        "loss_rankings": {"ranks": ranks.to_dict(orient="index"), "kendall_w": kendall},
        "caveats": st.caveats(len(scores), len(seeds), len(scores.columns),
                              (float(stability.loc[best, "rank_low"]), float(stability.loc[best, "rank_high"])))
        + ([f"Leakage: {len(leaked)} test images have a near-duplicate or a group mate in training; the Leakage "
            "section gives every pair's Dice without them."] if leaked else []),
        "leakage": leakage_effect(results, list(leaked), order),
    }


def verdict(statistics: dict) -> str:
    """The report's opening paragraph: the best pair, then every other pair by what the tests say."""
    versus, per_pair = statistics["versus_best"], statistics["per_pair"]
    best = versus["best"]
    ci, stability = per_pair[best], statistics["rank_stability"][best]
    groups: dict[str, list[str]] = {}
    for pair, row in versus["pairs"].items():
        if pair != best and not per_pair[pair]["failed"]:
            groups.setdefault(row["verdict"], []).append(pair)
    lead = "No pair learned the task; the highest mean" if ci["failed"] else "Best pair"
    text = [f"{lead}: {best}, mean test Dice {ci['mean']:.3f} (95% {ci['ci_method']} CI {ci['ci_low']:.3f}–"
            f"{ci['ci_high']:.3f}, {statistics['n_images']} images; rank {stability['rank_low']:g}–"
            f"{stability['rank_high']:g} over bootstrap resamples)."]
    for words, pairs in groups.items():
        text.append(f"{words[0].upper()}{words[1:]} (one-sided Wilcoxon, Holm, alpha {versus['alpha']}): "
                    f"{', '.join(pairs)}.")
    if "versus_baseline" in statistics:
        baseline, against = statistics["versus_baseline"]["best"], {}
        for pair, row in statistics["versus_baseline"]["pairs"].items():
            if pair != baseline and not per_pair[pair]["failed"]:
                against.setdefault(row["verdict"].removesuffix(" than the baseline").removesuffix(" from the baseline"),
                                   []).append(pair)
        text.append(f"Against the baseline {baseline} (mean {per_pair[baseline]['mean']:.3f}): " + "; ".join(
            f"{words}: {', '.join(pairs)}" for words, pairs in against.items()) + ".")
    failed = {p: r["failed"] for p, r in per_pair.items() if r["failed"]}
    if failed:
        text.append("Did not learn the task, so not ranked: " + "; ".join(
            f"{p} ({', '.join(reasons)})" for p, reasons in failed.items()) + ".")
    return " ".join(text)
