"""Which differences between pairs are real: confidence intervals, paired tests, rankings.

Every function takes ``scores``: one row per test image, one column per pair, each value the image's
Dice averaged over the pair's replicates (seeds). The libraries do the maths: scipy (bootstrap, Wilcoxon,
Friedman, studentized range), statsmodels (Holm), scikit-posthocs (Nemenyi). Each result names its test,
its direction and its correction beside the number.
"""

from __future__ import annotations

import gc
import itertools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
SMALL_TEST_SET = 20       # fewer images with a lesion than this: say the intervals are wide
EXACT_KENDALL = 200_000   # up to this many permutations Kendall's W is tested exactly, else by Monte Carlo
MONTE_CARLO = 20_000


def bootstrap_ci(scores: pd.DataFrame, n_resamples: int = 2000, seed: int = 0,
                 confidence: float = 0.95) -> pd.DataFrame:
    """Per pair: mean Dice over test images, its bootstrap confidence interval and the method that made it:
    "BCa", "percentile" where BCa is degenerate, or "none (every image scores the same)".

    Paired resampling: every pair's ``scipy.stats.bootstrap`` gets a generator with the same seed,
    and all columns have the same length, so each resample draws the same images for every pair. The
    interval covers the sampling of test images only, not the variance between training seeds.
    """
    rows = []
    for pair, values in scores.items():
        values = values.to_numpy(float)
        low = high = float(values.mean())
        method = "none (every image scores the same)" if len(values) > 1 else "none (one image)"
        if len(values) > 1 and np.ptp(values) > 0:
            for candidate in ("BCa", "percentile"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ci = stats.bootstrap((values,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                                         method=candidate, rng=np.random.default_rng(seed)).confidence_interval
                if np.isfinite(ci.low) and np.isfinite(ci.high):
                    low, high, method = float(ci.low), float(ci.high), candidate
                    break
        rows.append({"pair": pair, "mean": float(values.mean()), "ci_low": low, "ci_high": high,
                     "ci_method": method})
    return pd.DataFrame(rows).set_index("pair")


def gap_ci(reference: pd.Series, other: pd.Series, n_resamples: int = 2000, seed: int = 0,
           confidence: float = 0.95) -> dict:
    """The generalisation gap, mean(reference) - mean(other) (per-image scores indexed by image id), with a
    percentile bootstrap interval: paired when both sets hold the same images, else each set resampled on its
    own (``scipy.stats.bootstrap``)."""
    paired = set(reference.index) == set(other.index)
    a = reference.to_numpy(float)
    b = other.loc[reference.index].to_numpy(float) if paired else other.to_numpy(float)
    out = {"reference": float(a.mean()), "other": float(b.mean()), "gap": float(a.mean() - b.mean()),
           "n_reference": len(a), "n_other": len(b), "paired": paired, "gap_low": None, "gap_high": None}
    if min(len(a), len(b)) > 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ci = stats.bootstrap((a, b), lambda x, y, axis: x.mean(axis) - y.mean(axis), paired=paired,
                                 vectorized=True, n_resamples=n_resamples, confidence_level=confidence,
                                 method="percentile", rng=np.random.default_rng(seed)).confidence_interval
        out.update(gap_low=float(ci.low), gap_high=float(ci.high))
    return out


def _signed_rank_cdf(n: int) -> np.ndarray:
    """P(T+ <= t), t = 0 .. n(n+1)/2, under the null: Wilcoxon's signed-rank statistic of n non-zero differences
    (exact counts of the 2^n sign patterns)."""
    counts = np.zeros(n * (n + 1) // 2 + 1)  # how many sign patterns give each T+
    counts[0] = 1
    for rank in range(1, n + 1):
        counts[rank:] = counts[rank:] + counts[:-rank].copy()
    return np.cumsum(counts) / 2.0 ** n


def hodges_lehmann(differences: np.ndarray, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """(estimate, low, high, coverage): the Hodges-Lehmann estimate of the median paired difference, the median
    of the Walsh averages (d_i + d_j) / 2, i <= j, with its distribution-free interval: the c-th smallest and
    the c-th largest Walsh average, c the largest with P(T+ <= c - 1) <= (1 - confidence) / 2 (Hollander & Wolfe,
    1999, section 3.3; exact up to n = 100, normal beyond). ``coverage`` is the interval's true confidence,
    at least ``confidence`` except where n is too small to reach it (n = 5: 93.75 %, the widest finite
    interval, [min, max] of the Walsh averages). Zero differences are kept, as the signed-rank test here keeps
    them (``signed_rank``). Written here: scipy and statsmodels have none."""
    d = np.asarray(differences, float)
    n = len(d)
    i, j = np.triu_indices(n)
    walsh = np.sort((d[i] + d[j]) / 2)
    alpha = 1 - confidence
    if n > 100:
        c = n * (n + 1) / 4 - stats.norm.ppf(1 - alpha / 2) * math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
        c, coverage = max(1, int(math.floor(c))), confidence
    else:
        cdf = _signed_rank_cdf(n)
        c = max(1, int(np.searchsorted(cdf, alpha / 2, side="right")))
        coverage = float(1 - 2 * cdf[c - 1])
    c = min(c, len(walsh))
    return float(np.median(walsh)), float(walsh[c - 1]), float(walsh[len(walsh) - c]), coverage


def signed_rank(differences: np.ndarray, alternative: str = "two-sided") -> np.ndarray:
    """(n, m) paired differences -> m p-values of Wilcoxon's signed-rank test, one per column (scipy).

    Zero differences are kept and their ranks split between the signs (``zero_method="zsplit"``), as the
    Hodges-Lehmann estimate keeps them: 10 ties and 5 losses are not "5 losses out of 5". scipy's
    ``method="auto"`` chooses per column: exact up to 50 images without ties, exact permutations up to 13 with
    them, the normal approximation beyond; columns are tested in groups that share that choice (one vectorised
    call each, the same p-values as a call per column). A column of zeros gives p = 1.
    """
    d = np.asarray(differences, float)
    if d.ndim == 1:
        return signed_rank(d[:, None], alternative)
    p = np.ones(d.shape[1])
    magnitude = np.sort(np.abs(d), axis=0)
    plain = (magnitude[0] > 0) & ((np.diff(magnitude, axis=0) > 0).all(0) if len(d) > 1 else True)
    for group in (plain & d.any(0), ~plain & d.any(0)):
        if group.any():
            p[group] = stats.wilcoxon(d[:, group], zero_method="zsplit", alternative=alternative, axis=0).pvalue
    return p


def smallest_p(n: int) -> float:
    """The smallest two-sided p-value the signed-rank test can give with n images (all differences of one sign
    and distinct): 2 / 2^n where scipy's test is exact (n <= 50), the normal approximation's beyond."""
    if n <= 50:
        return 2 * 0.5 ** n
    return float(2 * stats.norm.sf(math.sqrt(3 * n * (n + 1) / (2 * n + 1))))


def _direction(d: np.ndarray) -> float:
    """+1 when the signed ranks favour the pair (d = pair - best), -1 when they favour the best, 0 on a tie."""
    ranks = stats.rankdata(np.abs(d))
    return float(np.sign((np.sign(d) * ranks).sum()))


def _holm(p: list[float]) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels). Its Holm branch calls gc.collect(), which walks every object the
    process holds (1.3 s a call in a report job): objects made before are frozen out of that walk, unless the
    process froze some itself (its freeze is not ours to undo)."""
    from statsmodels.stats.multitest import multipletests

    if not len(p):
        return np.array([])
    ours = not gc.get_freeze_count()
    if ours:
        gc.freeze()
    try:
        return multipletests(p, method="holm")[1]
    finally:
        if ours:
            gc.unfreeze()


TIE = 1e-12  # means this close are a tie for the best


def pick_best(scores: pd.DataFrame, excluded: set[str] = frozenset()) -> str:
    """The pair with the highest mean, among those not ``excluded`` (degenerate runs) unless all are; the first in
    column order among exact ties (``tied_best`` lists them)."""
    return tied_best(scores, excluded)[0]


def tied_best(scores: pd.DataFrame, excluded: set[str] = frozenset()) -> list[str]:
    """Every pair whose mean ties the highest, among those not ``excluded`` unless all are."""
    means = scores.mean()
    eligible = means.drop(index=[p for p in excluded if p in means.index], errors="ignore")
    eligible = eligible if len(eligible) else means
    return list(eligible.index[eligible >= eligible.max() - TIE])


def all_pairs(scores: pd.DataFrame) -> pd.DataFrame:
    """The family of every comparison between two columns (a, b), a before b: two-sided signed-rank p of
    d = a - b (``signed_rank``) and its Holm-adjusted p over all k (k - 1) / 2 of them. Testing every pair,
    not only the others against the best, is what keeps the chance of any false "significantly lower" at
    alpha when the best is chosen on the same images (``benchmarks/verdict_calibration.py`` measures it)."""
    a, b = (list(x) for x in zip(*itertools.combinations(scores.columns, 2))) if scores.shape[1] > 1 else ([], [])
    values = scores.to_numpy(float)
    index = {c: i for i, c in enumerate(scores.columns)}
    d = values[:, [index[x] for x in a]] - values[:, [index[x] for x in b]]
    p = signed_rank(d) if a else np.array([])
    return pd.DataFrame({"a": a, "b": b, "p": p, "p_holm": _holm(p)})


def versus_best(scores: pd.DataFrame, alpha: float = ALPHA, margin: float | None = None,
                excluded: set[str] = frozenset(), confidence: float = 0.95,
                reference: str | None = None) -> pd.DataFrame:
    """Every pair against the pair with the best mean (``pick_best``), or against ``reference`` (a baseline such as
    nnU-Net), image by image: d = pair - best. Pairs in ``excluded`` (runs that did not learn) are not compared.

    - ``median_difference``, ``difference_low`` / ``difference_high``, ``coverage``: the Hodges-Lehmann estimate
      of d with its interval and that interval's true confidence;
    - ``p``: the two-sided signed-rank test of d; ``p_holm``: Holm-adjusted over the family, which is every pair
      of compared pairs against the best (``all_pairs``: the best is chosen on these images), or the pairs
      against a fixed ``reference``; ``direction``: -1 lower than the best, +1 higher;
    - with ``margin`` delta: ``p_noninferior`` (Holm over the pairs), the one-sided test of "pair > best - delta";
    - ``verdict``: the words that follow from them; ``note``: where the interval and the test disagree, why.
    """
    compared = [p for p in scores.columns if p not in excluded] or list(scores.columns)
    if reference is not None and reference not in compared:
        compared.append(reference)
    best = reference or pick_best(scores[compared])
    others = [p for p in compared if p != best]
    if reference is None:
        family = all_pairs(scores[compared])
        vs = family[(family["a"] == best) | (family["b"] == best)]
        p_holm = {(r.b if r.a == best else r.a): r.p_holm for r in vs.itertuples()}
    else:
        p_holm = dict(zip(others, _holm([float(signed_rank(scores[o] - scores[best])[0]) for o in others])))
    m = len(compared) * (len(compared) - 1) // 2 if reference is None else len(others)
    n = len(scores)
    rows = {}
    for pair in others:
        d = (scores[pair] - scores[best]).to_numpy(float)
        estimate, low, high, coverage = hodges_lehmann(d, confidence)
        rows[pair] = {"median_difference": estimate, "difference_low": low, "difference_high": high,
                      "coverage": coverage, "p": float(signed_rank(d)[0]), "p_holm": float(p_holm[pair]),
                      "direction": _direction(d)}
        if margin is not None:
            rows[pair]["p_noninferior"] = float(signed_rank(d + margin, "greater")[0])
    columns = ["median_difference", "difference_low", "difference_high", "coverage", "p", "p_holm", "direction",
               *(["p_noninferior"] if margin is not None else [])]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    if margin is not None:
        table["p_noninferior_holm"] = _holm(table["p_noninferior"].tolist())
    table = table.reindex(scores.columns)
    reachable = min(1.0, m * smallest_p(n))
    tied = tied_best(scores[compared]) if reference is None else [best]
    table["verdict"] = [_verdict(table.loc[p], p, best, tied, set(scores.columns) - set(compared), alpha, margin,
                                 reference, reachable, n, m) for p in table.index]
    table["note"] = [_note(table.loc[p], alpha, confidence, m) if p in others else "" for p in table.index]
    family_words = (f"every pair against every other ({m} comparisons)" if reference is None
                    else f"every pair against the baseline ({m} comparisons)")
    table.attrs.update(best=best, tied=tied, alpha=alpha, margin=margin, comparisons=m, smallest_holm_p=reachable,
                       correction=f"Holm over {family_words}",
                       test="Wilcoxon signed-rank, paired by image, two-sided, zero differences kept "
                            "(zero_method='zsplit')",
                       effect="Hodges-Lehmann estimate of the median per-image difference (pair - best), "
                              f"{confidence:.0%} interval from the signed-rank distribution, for that comparison "
                              "alone (not adjusted for the others)")
    return table


def _verdict(row: pd.Series, pair: str, best: str, tied: list[str], excluded: set[str], alpha: float,
             margin: float | None, reference: str | None, reachable: float, n: int, m: int) -> str:
    if pair in excluded:
        return "not compared: did not learn the task"
    if pair == best:
        return "the baseline" if reference else "tied for the best mean" if len(tied) > 1 else "best mean"
    against = "the baseline" if reference else "the best"
    if row["p_holm"] < alpha:
        words = (f"significantly lower than {against}" if row["direction"] < 0 else
                 f"significantly higher than {against}" if reference else
                 "higher than the mean-best on the paired test (mean and paired test disagree)")
    elif pair in tied:
        words = "tied for the best mean"
    elif reachable >= alpha:
        words = (f"cannot be significant with {n} images and {m} comparisons (the smallest p Holm's correction "
                 f"can reach is {reachable:.2g})")
    else:
        words = f"not significantly different from {against}"
    if margin is not None:  # a real difference can still be smaller than the margin
        words += (f"; non-inferior within {margin:g}" if row["p_noninferior_holm"] < alpha
                  else f"; not shown non-inferior within {margin:g}")
    return words


def _note(row: pd.Series, alpha: float, confidence: float, m: int) -> str:
    """Why the effect's interval and the test's decision read differently, if they do."""
    excludes_zero = row["difference_low"] > 0 or row["difference_high"] < 0
    notes = []
    if row["coverage"] < confidence - 1e-9:
        notes.append(f"the interval covers {row['coverage']:.2%}: {confidence:.0%} is not attainable with so few "
                     "images")
    if excludes_zero != (row["p"] < alpha) and abs(1 - confidence - alpha) < 1e-9:
        notes.append("the interval and the test disagree at the boundary (ties or zero differences change the "
                     "test's null distribution, not the interval's)")
    elif excludes_zero and row["p_holm"] >= alpha:
        notes.append(f"the interval excludes 0 for this comparison alone; after Holm's correction over {m} "
                     "comparisons the difference is not significant")
    return "; ".join(notes)


def mean_ranks(scores: pd.DataFrame) -> pd.Series:
    """Each pair's rank averaged over images (1 = best Dice; ties share the mean rank)."""
    return pd.Series(stats.rankdata(-scores.to_numpy(float), axis=1).mean(0), index=scores.columns)


DIFFERENT_TESTS = ("Nemenyi's test (every pair against every other, on ranks within each image) and the Wilcoxon "
                   "tests against the best (signed per-image differences, Holm) ask different questions with "
                   "different power: a pair can share a bar with the best in the diagram and still be "
                   "significantly lower on the paired test, or the reverse.")


def friedman_nemenyi(scores: pd.DataFrame, alpha: float = ALPHA, blocks: str = "images") -> dict:
    """Friedman's test over all pairs, Nemenyi's post-hoc p-values, and the critical-difference
    diagram's data (Demsar, 2006): mean ranks and CD = q_alpha * sqrt(k (k + 1) / (6 N)). ``significant``
    says whether Friedman rejects; the post-hoc is read only then. ``scores``: (blocks x pairs), the blocks
    being test images, or datasets."""
    import scikit_posthocs as sp

    k, n = scores.shape[1], scores.shape[0]
    ranks = mean_ranks(scores)
    out = {"test": "Friedman", "post_hoc": "Nemenyi (scikit-posthocs)", "alpha": alpha,
           "mean_ranks": ranks.to_dict(), "n_images": n, "versus_wilcoxon": DIFFERENT_TESTS}
    if k < 3 or n < 2:
        out.update(statistic=None, p_value=None, significant=None,
                   note=f"Friedman's test needs at least 3 pairs and 2 {blocks}")
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        friedman = stats.friedmanchisquare(*(scores[c].to_numpy(float) for c in scores.columns))
    if not np.isfinite(friedman.statistic):
        out.update(statistic=None, p_value=None, significant=None,
                   note=f"every pair ties on every one of the {blocks}: nothing to rank")
        return out
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    nemenyi = sp.posthoc_nemenyi_friedman(scores.to_numpy(float))
    nemenyi.index = nemenyi.columns = scores.columns
    p_value, p_method = float(friedman.pvalue), "chi-square approximation"
    if math.factorial(k) ** (n - 1) <= EXACT_KENDALL:  # few blocks: the approximation is far off; count instead
        exact = kendall_w(pd.DataFrame(stats.rankdata(-scores.to_numpy(float), axis=1)))
        if exact.get("p_value") is not None:
            p_value, p_method = exact["p_value"], exact["p_method"].replace("permutations", "permutations of the "
                                                                               f"ranks within each of the {blocks}")
    significant = bool(p_value < alpha)
    out.update(statistic=float(friedman.statistic), p_value=p_value, p_method=p_method, significant=significant,
               critical_difference=float(q * np.sqrt(k * (k + 1) / (6 * n))), nemenyi_p=nemenyi.to_dict())
    if not significant:
        out["note"] = (f"Friedman's test does not reject equal ranks (p = {p_value:.3g} >= {alpha}): "
                       "Nemenyi's post-hoc is not read")
    elif (nemenyi.to_numpy()[~np.eye(k, dtype=bool)] >= alpha).all():
        out["note"] = (f"Friedman's test rejects equal ranks (p = {p_value:.3g}), yet Nemenyi's post-hoc separates no "
                       "two pairs: the omnibus test has more power than the pairwise one. Read it as 'the pairs differ "
                       "somewhere', not as which pair beats which.")
    return out


def rank_stability(scores: pd.DataFrame, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Each pair's rank (by mean Dice) over bootstrap resamples of the test images, challengeR-style
    (Wiesenfarth et al., 2021): the median and the 95% interval. Every pair is ranked on the same
    resample. Written here because no library ranks over shared resamples."""
    values = scores.to_numpy(float)
    draws = np.random.default_rng(seed).integers(0, len(values), (n_resamples, len(values)))
    ranks = stats.rankdata(-values[draws].mean(1), axis=1)  # (resamples, pairs)
    return pd.DataFrame({"median_rank": np.median(ranks, 0), "rank_low": np.percentile(ranks, 2.5, 0),
                         "rank_high": np.percentile(ranks, 97.5, 0)}, index=scores.columns)


def kendall_w(ranks: pd.DataFrame, seed: int = 0) -> dict:
    """Kendall's coefficient of concordance of the rows' rankings (rows: judges, columns: objects), tie
    corrected, with its permutation p-value: each judge's ranking permuted independently, the first held
    fixed; exact over every permutation when there are at most EXACT_KENDALL, else a seeded Monte Carlo
    estimate with its standard error. (The chi-square approximation is far off for few objects: with 2
    losses it gave 0.025 where the exact p is 0.0625.) Written here: scipy has no Kendall's W.

    W = 12 S / (m^2 (n^3 - n) - m T), S the squared deviations of the objects' rank totals, T the tie
    correction; permuting a judge's ranks keeps its ties, so only S varies.
    """
    m, n = ranks.shape
    if m < 2 or n < 2:
        return {"W": None, "note": "needs at least 2 architectures and 2 losses"}
    values = ranks.to_numpy(float)
    ties = sum(float((c ** 3 - c).sum()) for c in (np.unique(r, return_counts=True)[1] for r in values))
    denominator = m ** 2 * (n ** 3 - n) - m * ties
    if denominator <= 0:
        return {"W": None, "note": "every architecture ties every loss: W is undefined (0 / 0)"}

    def spread(totals: np.ndarray) -> np.ndarray:  # S of each row of rank totals
        return ((totals - totals.mean(-1, keepdims=True)) ** 2).sum(-1)

    observed = float(spread(values.sum(0)))
    out = {"W": 12 * observed / denominator, "judges": m, "objects": n,
           "test": "Kendall's W (tie-corrected); p by permuting each architecture's ranking of the losses"}
    count = math.factorial(n) ** (m - 1)
    if count <= EXACT_KENDALL:
        totals = values[:1]
        for row in values[1:]:
            orders = np.array(list(itertools.permutations(row)))
            totals = (totals[:, None, :] + orders[None, :, :]).reshape(-1, n)
        out.update(p_value=float((spread(totals) >= observed - 1e-9).mean()),
                   p_method=f"exact ({count:,} permutations)")
    else:
        rng = np.random.default_rng(seed)
        permuted = rng.permuted(np.broadcast_to(values[1:], (MONTE_CARLO, m - 1, n)), axis=-1)
        hits = int((spread(values[0] + permuted.sum(1)) >= observed - 1e-9).sum())
        p = (hits + 1) / (MONTE_CARLO + 1)
        out.update(p_value=p, p_method=f"Monte Carlo ({MONTE_CARLO:,} permutations, seed {seed})",
                   p_standard_error=math.sqrt(p * (1 - p) / MONTE_CARLO))
    return out


def loss_rankings(pair_means: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The factorial view: for each architecture (rows) the rank of each loss (columns, 1 = best mean
    Dice), and how well those rankings agree across architectures (Kendall's W)."""
    ranks = pair_means.rank(axis=1, ascending=False)
    return ranks, kendall_w(ranks)


def caveats(n_lesion_images: int, seeds: int, pairs: int, best_rank: tuple[float, float]) -> list[str]:
    """What the reader should keep in mind, in words: a small test set, one seed, the winner's selection."""
    out = []
    if n_lesion_images < SMALL_TEST_SET:
        out.append(f"Small test set: {n_lesion_images} images with a lesion. Intervals are wide and the tests have "
                   "little power; 'not significantly different' is not evidence of equivalence.")
    if seeds == 1:
        out.append("One training seed: the intervals and tests cover the sampling of test images, not the "
                   "variation between training runs (sweep.seeds: [0, 1, 2] adds it).")
    if pairs > 1:
        out.append(f"The best pair is the highest of {pairs} means on the same images, so its mean is optimistic; "
                   f"its rank over bootstrap resamples of the test images ranges from {best_rank[0]:g} to "
                   f"{best_rank[1]:g} (95% interval).")
    return out
