"""Which differences between pairs are real: confidence intervals, paired tests, rankings.

Every function takes ``scores``: one row per test image, one column per pair, each value the
image's Dice averaged over the pair's replicates (seeds). The libraries do the maths: scipy
(bootstrap, Wilcoxon, Friedman, studentized range), statsmodels (Holm), scikit-posthocs
(Nemenyi). Each result names its test and its correction beside the number.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05


def bootstrap_ci(scores: pd.DataFrame, n_resamples: int = 2000, seed: int = 0,
                 confidence: float = 0.95) -> pd.DataFrame:
    """Per pair: mean Dice over test images and its bootstrap confidence interval (BCa; percentile
    where BCa is degenerate).

    Paired resampling: every pair's ``scipy.stats.bootstrap`` gets a generator with the same seed,
    and all columns have the same length, so each resample draws the same images for every pair.
    """
    rows = []
    for pair, values in scores.items():
        values = values.to_numpy(float)
        low = high = float(values.mean())
        if len(values) > 1 and np.ptp(values) > 0:
            for method in ("BCa", "percentile"):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ci = stats.bootstrap((values,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                                         method=method, rng=np.random.default_rng(seed)).confidence_interval
                if np.isfinite(ci.low) and np.isfinite(ci.high):
                    low, high = float(ci.low), float(ci.high)
                    break
        rows.append({"pair": pair, "mean": float(values.mean()), "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows).set_index("pair")


def versus_best(scores: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """Two-sided paired Wilcoxon signed-rank test of every pair against the pair with the best mean,
    scipy's default zero handling ("wilcox"); p-values Holm-corrected over the comparisons.

    ``not_worse``: the best itself, and every pair whose corrected p is at least ``alpha``.
    """
    from statsmodels.stats.multitest import multipletests

    best = scores.mean().idxmax()
    others = [p for p in scores.columns if p != best]
    raw = []
    for pair in others:
        differences = scores[best] - scores[pair]
        raw.append(1.0 if not differences.any() else float(stats.wilcoxon(scores[best], scores[pair]).pvalue))
    corrected = multipletests(raw, method="holm")[1] if raw else []
    table = pd.DataFrame({"pair": others, "p_value": raw, "p_holm": corrected}).set_index("pair")
    table.loc[best] = [np.nan, np.nan]
    table["not_worse"] = table["p_holm"].isna() | (table["p_holm"] >= alpha)
    table.attrs.update(best=best, test="Wilcoxon signed-rank, two-sided, paired by image, zero_method='wilcox'",
                       correction="Holm", alpha=alpha)
    return table.loc[scores.columns]


def mean_ranks(scores: pd.DataFrame) -> pd.Series:
    """Each pair's rank averaged over images (1 = best Dice; ties share the mean rank)."""
    return pd.Series(stats.rankdata(-scores.to_numpy(float), axis=1).mean(0), index=scores.columns)


def friedman_nemenyi(scores: pd.DataFrame, alpha: float = ALPHA) -> dict:
    """Friedman's test over all pairs, Nemenyi's post-hoc p-values, and the critical-difference
    diagram's data (Demsar, 2006): mean ranks and CD = q_alpha * sqrt(k (k + 1) / (6 N))."""
    import scikit_posthocs as sp

    k, n = scores.shape[1], scores.shape[0]
    ranks = mean_ranks(scores)
    out = {"test": "Friedman", "post_hoc": "Nemenyi (scikit-posthocs)", "alpha": alpha,
           "mean_ranks": ranks.to_dict(), "n_images": n}
    if k < 3 or n < 2:
        out.update(statistic=None, p_value=None, note="Friedman's test needs at least 3 pairs and 2 images")
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        friedman = stats.friedmanchisquare(*(scores[c].to_numpy(float) for c in scores.columns))
    if not np.isfinite(friedman.statistic):
        out.update(statistic=None, p_value=None, note="every pair ties on every image: nothing to rank")
        return out
    q = stats.studentized_range.ppf(1 - alpha, k, np.inf) / np.sqrt(2)
    nemenyi = sp.posthoc_nemenyi_friedman(scores.to_numpy(float))
    nemenyi.index = nemenyi.columns = scores.columns
    out.update(statistic=float(friedman.statistic), p_value=float(friedman.pvalue),
               critical_difference=float(q * np.sqrt(k * (k + 1) / (6 * n))), nemenyi_p=nemenyi.to_dict())
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


def kendall_w(ranks: pd.DataFrame) -> dict:
    """Kendall's coefficient of concordance of the rows' rankings (rows: judges, columns: objects),
    with the tie correction, and its chi-square test, chi2 = m (n - 1) W with n - 1 degrees of freedom.
    Written here: scipy has no Kendall's W."""
    m, n = ranks.shape
    if m < 2 or n < 2:
        return {"W": None, "note": "needs at least 2 architectures and 2 losses"}
    totals = ranks.sum(0).to_numpy(float)
    s = float(((totals - totals.mean()) ** 2).sum())
    ties = sum(float((c ** 3 - c).sum()) for c in (np.unique(r, return_counts=True)[1] for r in ranks.to_numpy()))
    denominator = m ** 2 * (n ** 3 - n) - m * ties
    w = 12 * s / denominator if denominator else 1.0
    chi2 = m * (n - 1) * w
    return {"W": float(w), "chi2": float(chi2), "df": n - 1, "p_value": float(stats.chi2.sf(chi2, n - 1)),
            "test": "Kendall's W (tie-corrected) with its chi-square test"}


def loss_rankings(pair_means: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The factorial view: for each architecture (rows) the rank of each loss (columns, 1 = best mean
    Dice), and how well those rankings agree across architectures (Kendall's W)."""
    ranks = pair_means.rank(axis=1, ascending=False)
    return ranks, kendall_w(ranks)
