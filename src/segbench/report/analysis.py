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
from segbench.paths import run_name
from segbench.report.collect import Results
from segbench.report.tables import count, dice_matrix, pruned_at


def ranking(means: pd.Series, failed: set[str], pruned=frozenset()) -> list[str]:
    """The pairs best mean first, then the pruned ones (sweep.budget), then the ones that failed to learn (each in
    the same order among themselves)."""
    order = means.sort_values(ascending=False, kind="stable").index
    return ([p for p in order if p not in failed and p not in pruned] + [p for p in order if p in pruned
                                                                            and p not in failed]
            + [p for p in order if p in failed])


def _num(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


def leakage_effect(results: Results, leaked: list[str], order: list[str]) -> dict:
    """Each pair's mean test Dice with and without the test images the audit found leaked into training."""
    scores = results.image_scores("dice")
    clean = scores.drop(index=[s for s in leaked if s in scores.index])
    return {"leaked_test_images": len([s for s in leaked if s in scores.index]),
            "per_pair": {p: {"dice": float(scores[p].mean()), "dice_without_leaked": float(clean[p].mean())
                             if len(clean) else None, "n_without_leaked": int(len(clean))} for p in order}}


PRUNED = "not compared: pruned early (sweep.budget)"


def _versus(table, order: list[str], alpha: float, margin, pruned=()) -> dict:
    """``statistics.versus_best``'s table as statistics.json holds it, pairs in rank order (a ``pruned`` pair's verdict
    says so)."""
    return {"best": table.attrs["best"], "tied": table.attrs["tied"], "test": table.attrs["test"],
            "effect": table.attrs["effect"], "correction": table.attrs["correction"],
            "comparisons": table.attrs["comparisons"], "smallest_holm_p": table.attrs["smallest_holm_p"],
            "alpha": alpha, "margin": margin,
            "pairs": {p: {**{k: _num(v) for k, v in row.items() if k not in ("verdict", "note")},
                          "verdict": PRUNED if p in pruned else row["verdict"], "note": row["note"]}
                      for p, row in table.loc[order].iterrows()}}


def ranked_matrix(matrix: pd.DataFrame, failed: set[str]) -> tuple[pd.DataFrame, list[str]]:
    """The architectures x losses matrix without the pairs that failed: the losses (or, where that keeps more
    cells, the architectures) with a failed pair are left out whole, since Kendall's W needs complete rankings.
    Returns the matrix and what was left out, in words."""
    bad = pd.DataFrame([[run_name(a, l) in failed for l in matrix.columns] for a in matrix.index],
                       index=matrix.index, columns=matrix.columns)
    if not bad.any().any() or bad.all().all():  # nothing failed, or everything did: rank them all
        return matrix, []
    by_loss = matrix.loc[:, ~bad.any(axis=0)]
    by_arch = matrix.loc[~bad.any(axis=1)]
    if by_loss.size >= by_arch.size:
        return by_loss, [f"loss {l}" for l in matrix.columns if bad[l].any()]
    return by_arch, [f"architecture {a}" for a in matrix.index if bad.loc[a].any()]


def generalisation(results: Results, leaked_in_group: list[str] = ()) -> dict:
    """Per other test set, every pair's generalisation gap in Dice (images with a lesion, averaged over seeds):
    in-group minus held-out group for a group hold-out (``in_group``), in-domain minus out-of-domain for an
    external dataset; with its bootstrap CI (``statistics.gap_ci``). In-group images with a near-duplicate or a
    group mate in train or val (``leaked_in_group``) are left out of the reference: they would flatter it."""
    if results.other_tests.empty:
        return {}
    test, out = results.image_scores("dice"), {}
    for name, rows in results.other_tests[results.other_tests["lesion"]].groupby("test set"):
        held_out = name == paths.IN_GROUP
        left_out = sorted(set(rows["sample_id"]) & set(leaked_in_group)) if held_out else []
        other = rows[~rows["sample_id"].isin(left_out)].pivot_table(index="sample_id", columns="pair",
                                                                    values="dice", aggfunc="mean")
        gaps = {p: st.gap_ci(other[p], test[p]) if held_out else st.gap_ci(test[p], other[p])
                for p in results.pairs if p in other}
        out[name] = {"reference": "in-group test images" if held_out else "this dataset's test images",
                     "other": "held-out group (the test images)" if held_out else f"{name}'s test images",
                     "left_out": left_out,
                     "pairs": {p: {k: _num(v) if isinstance(v, float) else v for k, v in g.items()}
                               for p, g in gaps.items()}}
    return out


SIDES = {"in": "in the held-out group", "out": "on the other groups"}  # the reference trainings, in words


def equal_size(results: Results, leaked: list[str] = ()) -> dict:
    """The generalisation gap at equal training size (``sweep.references``), per pair, on the held-out images
    the in-domain reference never saw (with a lesion; each image's Dice averaged over seeds): the reference trained
    there minus the one trained on as many of the other groups' images, the shift alone; beside it the raw gap, the
    reference trained there minus the sweep's own models (their Dice without post-processing, as the references
    are scored). Both paired (``statistics.gap_ci``). Images with a near-duplicate or group mate among the in-domain
    reference's training images (``leaked``) are left out: they would flatter it. A pair with a reference that did
    not learn is listed apart, with why: its gap would measure that failure, not the shift."""
    if results.references.empty:
        return {}
    rows = results.references[results.references["lesion"]]
    left_out = sorted(set(rows["sample_id"]) & set(leaked))
    scores = rows[~rows["sample_id"].isin(left_out)].pivot_table(index="sample_id", columns=["pair", "model"],
                                                                 values="dice", aggfunc="mean")
    sweep = results.per_image.pivot_table(index="sample_id", columns="pair", values="dice_raw", aggfunc="mean")
    failed: dict[str, list[str]] = {}
    for (pair, seed), found in results.reference.items():
        for side, why in found["failed"].items():
            failed.setdefault(pair, []).append(f"seed {seed}, trained {SIDES[side]}: {'; '.join(why)}")
    out = {}
    for pair in dict.fromkeys(results.references["pair"]):
        if pair in failed:
            continue
        shifted = st.gap_ci(scores[(pair, "in")], scores[(pair, "out")])
        raw = st.gap_ci(scores[(pair, "in")], sweep[pair].loc[scores.index])
        out[pair] = {"in": shifted["reference"], "out": shifted["other"], "sweep": raw["other"],
                     "n": shifted["n_reference"], **{k: _num(shifted[k]) for k in ("gap", "gap_low", "gap_high")},
                     **{f"raw_{k}": _num(raw[k]) for k in ("gap", "gap_low", "gap_high")}}
    return {"sizes": next(iter(results.reference.values()))["sizes"], "left_out": left_out, "pairs": out,
            "failed": failed}


def labels(results: Results) -> dict[str, str]:
    """Each baseline's name with its schedule (its train.json's ``baseline_settings.label``), by pair."""
    rows = results.training[results.training["pair"].isin(results.baselines)]
    return {p: s["label"] for p, s in zip(rows["pair"], rows.get("baseline_settings", []))
            if isinstance(s, dict) and s.get("label")}


def analyse(results: Results, options: dict, leaked: list[str] = (), leaked_in_group: list[str] = (),
            leaked_reference: list[str] = ()) -> dict:
    """statistics.json from the results, ``params.yaml: statistics`` and the leakage audit's leaked test (and
    in-group test, and reference test) images.

    Pairs that did not learn the task (``results.failed``) are listed apart (``failed``) and left out of every
    test and ranking: the comparisons, Friedman, Nemenyi, the critical difference, the bootstrap ranks and
    Kendall's W; unless every pair failed. So are the pairs sweep.budget pruned (``pruned``): they trained
    fewer epochs than the others.
    """
    scores = results.image_scores("dice")
    alpha, margin = options["alpha"], options["noninferiority_margin"]
    ci = st.bootstrap_ci(scores, options["bootstrap_resamples"], options["seed"])
    pruned = {p: pruned_at(r) for p, r in results.pruned.items()}  # not learned in a few epochs says little
    not_learned = {p: why for p, why in results.failed.items() if p not in pruned}
    order = ranking(ci["mean"], set(not_learned), set(pruned))
    failed = set(not_learned) | set(pruned)  # left out of every test and ranking
    # unless every pair failed: then the pairs that trained in full are ranked, never a pruned one against them
    ranked = [p for p in order if p not in failed] or [p for p in order if p not in pruned] or order
    versus = st.versus_best(scores, alpha, margin, set(order) - set(ranked))
    best = versus.attrs["best"]
    stability = st.rank_stability(scores[ranked], seed=options["seed"])
    matrix, left_out = ranked_matrix(dice_matrix(results), failed)
    ranks, kendall = st.loss_rankings(matrix)
    if left_out:
        kendall["left_out"] = left_out
    seeds = sorted(results.replicates["seed"].unique().tolist())
    sd_seeds = results.replicates.groupby("pair", sort=False)["dice"].std()
    friedman = st.friedman_nemenyi(scores[ranked], alpha)
    return {
        "metric": "Dice per test image with a lesion, averaged over the pair's seeds",
        "n_images": int(len(scores)), "seeds": seeds, "best": best, "tied_best": versus.attrs["tied"],
        "labels": labels(results),
        "ranking": order, "ranked": ranked,
        "failed": {p: not_learned[p] for p in order if p in not_learned},
        "pruned": {p: pruned[p] for p in order if p in pruned},
        "tuning": {p: results.tuning[p] for p in order if p in results.tuning},
        "per_pair": {p: {"mean": float(ci.loc[p, "mean"]), "ci_low": float(ci.loc[p, "ci_low"]),
                         "ci_high": float(ci.loc[p, "ci_high"]), "ci_method": ci.loc[p, "ci_method"],
                         "sd_across_seeds": _num(float(sd_seeds.get(p, np.nan))),
                         "failed": not_learned.get(p, []), "pruned": pruned.get(p)} for p in order},
        "ci": "95% bootstrap confidence interval of the mean (scipy.stats.bootstrap, "
              f"{options['bootstrap_resamples']:,} resamples of the test images, the same ones for every pair; "
              "BCa, percentile where BCa is degenerate, as each pair's ci_method says). It covers the sampling of "
              "test images only: not the variance between training seeds, nor the selection of the best pair out "
              "of all of them.",
        "versus_best": _versus(versus, order, alpha, margin, pruned),
        "versus_baselines": {b: _versus(st.versus_best(scores, alpha, margin, failed, reference=b), order, alpha,
                                        margin, pruned) for b in results.baselines},  # one family per baseline
        "friedman": friedman,
        "generalisation": generalisation(results, leaked_in_group),
        "equal_size": equal_size(results, leaked_reference),
        "rank_stability": stability.loc[ranked].to_dict(orient="index"),
        "rank_stability_method": "ranks by mean Dice on 1,000 bootstrap resamples of the test images",
        "loss_rankings": {"ranks": ranks.to_dict(orient="index"), "kendall_w": kendall},
        "caveats": st.caveats(len(scores), len(seeds), len(ranked),
                              (float(stability.loc[best, "rank_low"]), float(stability.loc[best, "rank_high"])))
        + ([f"Leakage: {count(len(leaked), 'test image')} with a near-duplicate or a group mate outside the test set "
            "(in train or val); the Leakage section gives every pair's Dice without them."] if leaked else []),
        "leakage": leakage_effect(results, list(leaked), order),
    }


def left_out(row: dict) -> bool:
    """Whether a pair (its ``per_pair`` entry) is left out of the tests and ranking: it failed, or was pruned."""
    return bool(row["failed"] or row.get("pruned"))


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def verdict(statistics: dict) -> str:
    """The report's opening paragraph: the best pair (or the pairs tied for it), then every other pair by what the
    tests say, then the pairs that did not learn."""
    versus, per_pair, labels = statistics["versus_best"], statistics["per_pair"], statistics.get("labels", {})

    def named(pairs: list[str]) -> list[str]:  # a baseline with its schedule: "nnunet__default (nnU-Net 2d, ...)"
        return [f"{p} ({labels[p]})" if p in labels else p for p in pairs]

    best, tied = versus["best"], versus.get("tied", [versus["best"]])
    ci, stability = per_pair[best], statistics["rank_stability"][best]
    groups: dict[str, list[str]] = {}
    for pair, row in versus["pairs"].items():
        if pair not in tied and not left_out(per_pair[pair]):
            groups.setdefault(row["verdict"], []).append(pair)
    images = f"{statistics['n_images']} image{'s' if statistics['n_images'] != 1 else ''}"
    if len(tied) > 1:
        text = [f"Tied for the best mean: {_and(named(tied))}, each with mean test Dice {ci['mean']:.3f} "
                f"({images}); no single pair is best."]
    else:
        lead = "No pair learned the task; the highest mean" if ci["failed"] else "Best pair"
        text = [f"{lead}: {named([best])[0]}, mean test Dice {ci['mean']:.3f} (95% {ci['ci_method']} CI "
                f"{ci['ci_low']:.3f}–{ci['ci_high']:.3f}, {images}; rank {stability['rank_low']:g}–"
                f"{stability['rank_high']:g} over bootstrap resamples)."]
    m = versus.get("comparisons")
    how = f"two-sided Wilcoxon, Holm over {m} pairwise comparison{'s' if m != 1 else ''}, alpha {versus['alpha']}"
    for words, pairs in groups.items():
        text.append(f"{words[0].upper()}{words[1:]} ({how}): {', '.join(named(pairs))}.")
    for baseline, tests in statistics.get("versus_baselines", {}).items():
        against: dict[str, list[str]] = {}
        for pair, row in tests["pairs"].items():
            if pair != baseline and not left_out(per_pair[pair]):
                against.setdefault(row["verdict"].removesuffix(" than the baseline").removesuffix(" from the baseline"),
                                   []).append(pair)
        if against:  # none when every other pair failed: they are listed below
            text.append(f"Against the baseline {named([baseline])[0]} (mean {per_pair[baseline]['mean']:.3f}): "
                        + "; ".join(f"{words}: {', '.join(pairs)}" for words, pairs in against.items()) + ".")
    pruned = {p: r["pruned"] for p, r in per_pair.items() if r.get("pruned")}
    if pruned:
        text.append("Pruned early (sweep.budget), so not ranked: "
                    + "; ".join(f"{p} ({why})" for p, why in pruned.items()) + ".")
    failed = {p: r["failed"] for p, r in per_pair.items() if r["failed"]}
    if failed:
        text.append(("Did not learn the task, so left out of every test and ranking: " if len(failed) < len(per_pair)
                     else "Why none learned: ") + "; ".join(
            f"{p} ({', '.join(reasons)})" for p, reasons in failed.items()) + ".")
    return " ".join(text)
