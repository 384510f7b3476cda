"""statistics.json: what the report concludes, computed once and read by every table, figure and page.

The maths is in ``segbench.evaluation.statistics``; this module decides what is compared with what: the
Dice of the test images with a lesion, averaged over a pair's seeds; the best pair chosen among the pairs
that learned; the ranking in which every table and figure lists the pairs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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
        "ci": f"95% bootstrap confidence interval of the mean (scipy.stats.bootstrap, {options['bootstrap_resamples']:,}"
              " resamples of the test images, the same ones for every pair; BCa, percentile where BCa is "
              "degenerate, as each pair's ci_method says). It covers the sampling of test images only: not the "
              "variance between training seeds, nor the selection of the best pair out of all of them.",
        "versus_best": {"best": best, "test": versus.attrs["test"], "effect": versus.attrs["effect"],
                        "correction": versus.attrs["correction"], "alpha": alpha, "margin": margin,
                        "pairs": {p: {**{k: _num(v) for k, v in row.items() if k != "verdict"},
                                      "verdict": row["verdict"]} for p, row in versus.loc[order].iterrows()}},
        "friedman": st.friedman_nemenyi(scores, alpha),
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
    failed = {p: r["failed"] for p, r in per_pair.items() if r["failed"]}
    if failed:
        text.append("Did not learn the task, so not ranked: " + "; ".join(
            f"{p} ({', '.join(reasons)})" for p, reasons in failed.items()) + ".")
    return " ".join(text)
