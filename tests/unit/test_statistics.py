"""Statistics on made-up per-image tables whose answer is known."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from segbench.evaluation import statistics as st


def table(differences: dict[str, float], n: int = 40, seed: int = 0) -> pd.DataFrame:
    """Per-image Dice of pairs that differ from a common base by a constant (plus a little noise)."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.4, 0.8, n)
    return pd.DataFrame({pair: np.clip(base + shift + rng.normal(0, 0.02, n), 0, 1)
                         for pair, shift in differences.items()},
                        index=[f"IMG{i:03d}" for i in range(n)])


def test_a_large_difference_is_found_and_corrected_by_holm():
    scores = table({"good": 0.15, "same_as_good": 0.15, "bad": 0.0, "worse": -0.1})
    versus = st.versus_best(scores)
    assert versus.attrs["best"] in ("good", "same_as_good")
    assert versus.loc["bad", "p_holm"] < 0.001 and not versus.loc["bad", "not_worse"]
    assert not versus.loc["worse", "not_worse"]
    other = "same_as_good" if versus.attrs["best"] == "good" else "good"
    assert versus.loc[other, "not_worse"]
    raw = versus["p_value"].dropna().sort_values()  # Holm: the k-th smallest p times (m - k + 1), monotone
    expected = np.maximum.accumulate(np.minimum(1, raw.to_numpy() * np.arange(len(raw), 0, -1)))
    assert versus.loc[raw.index, "p_holm"].to_numpy() == pytest.approx(expected)
    p = stats.wilcoxon(scores[versus.attrs["best"]], scores["bad"]).pvalue
    assert versus.loc["bad", "p_value"] == pytest.approx(p)


def test_identical_pairs_are_never_significantly_different():
    scores = table({"a": 0.0, "b": 0.0, "c": 0.0})
    scores["b"] = scores["c"] = scores["a"]
    versus = st.versus_best(scores)
    assert versus["not_worse"].all()
    friedman = st.friedman_nemenyi(scores)
    assert friedman["statistic"] is None and "ties" in friedman["note"]


def test_bootstrap_ci_covers_the_mean_and_resamples_the_same_images_for_every_pair():
    scores = table({"a": 0.0, "b": 0.1})
    ci = st.bootstrap_ci(scores, n_resamples=999)
    for pair in scores:
        assert ci.loc[pair, "ci_low"] < scores[pair].mean() < ci.loc[pair, "ci_high"]
        assert ci.loc[pair, "mean"] == pytest.approx(scores[pair].mean())
    shifted = scores.assign(b=scores["a"] + 0.1)  # b is a + 0.1 exactly: paired resamples shift the CI exactly
    ci = st.bootstrap_ci(shifted, n_resamples=999)
    assert ci.loc["b", "ci_low"] - ci.loc["a", "ci_low"] == pytest.approx(0.1, abs=1e-9)
    constant = st.bootstrap_ci(pd.DataFrame({"x": [0.5] * 10}))
    assert constant.loc["x", "ci_low"] == constant.loc["x", "ci_high"] == 0.5


def test_friedman_nemenyi_and_the_critical_difference():
    scores = table({"a": 0.2, "b": 0.1, "c": 0.0, "d": 0.0}, n=50)
    result = st.friedman_nemenyi(scores)
    assert result["p_value"] < 1e-6
    assert result["mean_ranks"]["a"] < result["mean_ranks"]["b"] < result["mean_ranks"]["c"]
    k, n = 4, 50  # Demsar 2006, table 5: q_0.05 = 2.569 for k = 4
    assert result["critical_difference"] == pytest.approx(2.569 * np.sqrt(k * (k + 1) / (6 * n)), rel=1e-3)
    assert result["nemenyi_p"]["a"]["c"] < 0.05
    assert st.friedman_nemenyi(scores[["a", "b"]])["statistic"] is None  # needs 3 pairs


def test_rank_stability_is_certain_for_a_clear_winner():
    scores = table({"clear": 0.3, "x": 0.0, "y": 0.0})
    stability = st.rank_stability(scores)
    assert stability.loc["clear"].tolist() == [1, 1, 1]
    assert stability.loc["x", "rank_high"] == 3 and stability.loc["x", "rank_low"] == 2


def test_kendalls_w_agreement_and_disagreement():
    agree = pd.DataFrame([[1, 2, 3], [1, 2, 3], [1, 2, 3]], index=["u1", "u2", "u3"], columns=["l1", "l2", "l3"])
    assert st.kendall_w(agree)["W"] == pytest.approx(1.0)
    opposite = pd.DataFrame([[1, 2, 3], [3, 2, 1]], columns=["l1", "l2", "l3"])
    assert st.kendall_w(opposite)["W"] == pytest.approx(0.0)
    means = pd.DataFrame({"dice": [0.8, 0.7], "focal": [0.6, 0.5]}, index=["unet", "attention_unet"])
    ranks, w = st.loss_rankings(means)
    assert ranks.loc["unet"].tolist() == [1, 2] and w["W"] == pytest.approx(1.0)
    assert st.kendall_w(means.iloc[:1])["W"] is None
