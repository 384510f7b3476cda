"""Statistics on made-up per-image tables whose answer is known."""

import gc
import itertools

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


def disagreeing() -> pd.DataFrame:
    """The issue's reproduction: 40 images; B beats A by 0.01-0.03 on 35 and scores 0 on 5 (missed lesions)."""
    rng = np.random.default_rng(1)
    a = rng.uniform(0.6, 0.9, 40)
    b = a + np.r_[rng.uniform(0.01, 0.03, 35), -a[35:]]
    return pd.DataFrame({"A": a, "B": b})


def test_a_pair_lower_than_the_best_is_found_corrected_by_holm_over_every_pair_and_described():
    scores = table({"good": 0.15, "same_as_good": 0.15, "bad": 0.0, "worse": -0.1})
    versus = st.versus_best(scores)
    best = versus.attrs["best"]
    assert best in ("good", "same_as_good") and versus.loc[best, "verdict"] == "best mean"
    assert versus.loc["bad", "p_holm"] < 0.001 and versus.attrs["comparisons"] == 6
    assert versus.loc["bad", "verdict"] == versus.loc["worse", "verdict"] == "significantly lower than the best"
    other = "same_as_good" if best == "good" else "good"
    assert versus.loc[other, "verdict"] == "not significantly different from the best"
    family = st.all_pairs(scores)  # Holm over all 6: the k-th smallest p times (m - k + 1), monotone
    raw = family["p"].sort_values()
    expected = np.maximum.accumulate(np.minimum(1, raw.to_numpy() * np.arange(len(raw), 0, -1)))
    assert family.loc[raw.index, "p_holm"].to_numpy() == pytest.approx(expected)
    assert gc.get_freeze_count() == 0  # the objects frozen around statsmodels' gc.collect() are collectable again
    p = stats.wilcoxon(scores["bad"], scores[best], zero_method="zsplit").pvalue  # scipy's, two-sided
    assert versus.loc["bad", "p"] == pytest.approx(p)
    assert versus.loc["bad", "difference_low"] < versus.loc["bad", "median_difference"] < \
        versus.loc["bad", "difference_high"] < 0 and versus.loc["bad", "direction"] == -1


def test_holm_leaves_a_freeze_the_process_made_itself():
    gc.freeze()
    try:
        assert st.versus_best(table({"a": 0.1, "b": 0.0, "c": -0.1}))["p_holm"].notna().any()
        assert gc.get_freeze_count() > 0  # still frozen (unfreezing would empty it)
    finally:
        gc.unfreeze()


def test_when_mean_and_paired_test_disagree_the_verdict_says_so():
    scores = disagreeing()
    assert scores["A"].mean() > scores["B"].mean()
    versus = st.versus_best(scores)
    assert versus.attrs["best"] == "A"
    assert versus.loc["B", "p_holm"] < 0.01 and versus.loc["B", "median_difference"] > 0
    assert versus.loc["B", "verdict"] == ("higher than the mean-best on the paired test (mean and paired test "
                                          "disagree)")


def test_identical_pairs_are_a_tie_for_the_best_never_significantly_different():
    scores = table({"a": 0.0, "b": 0.0, "c": 0.0})
    scores["b"] = scores["c"] = scores["a"]
    versus = st.versus_best(scores)
    assert (versus["verdict"] == "tied for the best mean").all() and versus.attrs["tied"] == ["a", "b", "c"]
    friedman = st.friedman_nemenyi(scores)
    assert friedman["statistic"] is None and "ties" in friedman["note"]


def test_a_non_inferiority_margin_is_tested_one_sided():
    scores = table({"best": 0.02, "close": 0.0, "far": -0.2})
    versus = st.versus_best(scores, margin=0.05)
    assert versus.loc["close", "p_noninferior_holm"] < 0.05 and versus.loc["close", "verdict"].endswith(
        "non-inferior within 0.05")
    assert versus.loc["far", "verdict"] == "significantly lower than the best; not shown non-inferior within 0.05"


def test_a_failed_pair_is_not_the_best_unless_all_failed():
    scores = table({"broken": 0.3, "fine": 0.1})
    assert st.versus_best(scores, excluded={"broken"}).attrs["best"] == "fine"
    assert st.pick_best(scores, {"broken", "fine"}) == "broken"


def test_the_hodges_lehmann_interval_is_the_signed_rank_one():
    """Against the definition: the median of the Walsh averages, and the interval of values d0 that a two-sided
    signed-rank test of d - d0 does not reject (scipy's exact test)."""
    d = np.random.default_rng(3).normal(0.1, 0.2, 15)
    estimate, low, high, _ = st.hodges_lehmann(d, 0.95)
    walsh = sorted((d[i] + d[j]) / 2 for i in range(15) for j in range(i, 15))
    assert estimate == pytest.approx(np.median(walsh))
    inside = [w for w in walsh if stats.wilcoxon(d - w, method="exact").pvalue >= 0.05]
    assert low == pytest.approx(min(inside)) and high == pytest.approx(max(inside))
    assert 0.95 <= st.hodges_lehmann(d, 0.95)[3] < 0.96  # its true coverage: at least 95 %, discrete


def test_bootstrap_ci_covers_the_mean_names_its_method_and_resamples_the_same_images_for_every_pair():
    scores = table({"a": 0.0, "b": 0.1})
    ci = st.bootstrap_ci(scores, n_resamples=999)
    for pair in scores:
        assert ci.loc[pair, "ci_low"] < scores[pair].mean() < ci.loc[pair, "ci_high"]
        assert ci.loc[pair, "mean"] == pytest.approx(scores[pair].mean()) and ci.loc[pair, "ci_method"] == "BCa"
    shifted = scores.assign(b=scores["a"] + 0.1)  # b is a + 0.1 exactly: paired resamples shift the CI exactly
    ci = st.bootstrap_ci(shifted, n_resamples=999)
    assert ci.loc["b", "ci_low"] - ci.loc["a", "ci_low"] == pytest.approx(0.1, abs=1e-9)
    constant = st.bootstrap_ci(pd.DataFrame({"x": [0.5] * 10}))
    assert constant.loc["x", "ci_low"] == constant.loc["x", "ci_high"] == 0.5
    assert constant.loc["x", "ci_method"].startswith("none")


def test_friedman_nemenyi_and_the_critical_difference():
    scores = table({"a": 0.2, "b": 0.1, "c": 0.0, "d": 0.0}, n=50)
    result = st.friedman_nemenyi(scores)
    assert result["p_value"] < 1e-6 and result["significant"]
    assert result["mean_ranks"]["a"] < result["mean_ranks"]["b"] < result["mean_ranks"]["c"]
    k, n = 4, 50  # Demsar 2006, table 5: q_0.05 = 2.569 for k = 4
    assert result["critical_difference"] == pytest.approx(2.569 * np.sqrt(k * (k + 1) / (6 * n)), rel=1e-3)
    assert result["nemenyi_p"]["a"]["c"] < 0.05 and "different power" in result["versus_wilcoxon"]
    assert st.friedman_nemenyi(scores[["a", "b"]])["statistic"] is None  # needs 3 pairs
    noise = table({"x": 0.0, "y": 0.0, "z": 0.0}, seed=5)
    assert not st.friedman_nemenyi(noise)["significant"] and "not read" in st.friedman_nemenyi(noise)["note"]


def test_rank_stability_is_certain_for_a_clear_winner():
    scores = table({"clear": 0.3, "x": 0.0, "y": 0.0})
    stability = st.rank_stability(scores)
    assert stability.loc["clear"].tolist() == [1, 1, 1]
    assert stability.loc["x", "rank_high"] == 3 and stability.loc["x", "rank_low"] == 2


def permutation_count(ranks: np.ndarray) -> float:
    """Kendall's W's p by brute force, independently: every judge's every ordering, W from its textbook formula."""
    m, n = ranks.shape

    def w(matrix):
        totals = matrix.sum(0)
        ties = sum((c ** 3 - c).sum() for c in (np.unique(r, return_counts=True)[1] for r in matrix))
        return 12 * ((totals - totals.mean()) ** 2).sum() / (m ** 2 * (n ** 3 - n) - m * ties)

    observed = w(ranks)
    orders = [list(itertools.permutations(row)) for row in ranks]
    hits = [w(np.array(combo)) >= observed - 1e-9 for combo in itertools.product(*orders)]
    return sum(hits) / len(hits)


@pytest.mark.parametrize("ranks", [
    [[1, 2], [1, 2]],                                  # 2 x 2, agreeing
    [[1, 2], [1, 2], [1, 2], [1, 2], [1, 2]],          # 5 x 2: the 0.0625
    [[1, 2], [2, 1], [1, 2], [1, 2], [2, 1]],          # 5 x 2, mixed
    [[1, 2, 3], [1, 3, 2], [2, 1, 3]],                 # 3 x 3
    [[1, 2.5, 2.5], [1, 2, 3], [3, 1, 2]],             # 3 x 3 with a tie
])
def test_kendalls_w_p_value_is_the_exact_permutation_count(ranks):
    ranks = np.array(ranks, float)
    result = st.kendall_w(pd.DataFrame(ranks))
    assert result["p_value"] == pytest.approx(permutation_count(ranks)) and result["p_method"].startswith("exact")


def test_kendalls_w_agreement_disagreement_and_undefined():
    agree = pd.DataFrame([[1, 2, 3], [1, 2, 3], [1, 2, 3]], index=["u1", "u2", "u3"], columns=["l1", "l2", "l3"])
    assert st.kendall_w(agree)["W"] == pytest.approx(1.0)
    assert st.kendall_w(pd.DataFrame([[1, 2], [1, 2], [1, 2], [1, 2], [1, 2]]))["p_value"] == pytest.approx(0.0625)
    opposite = pd.DataFrame([[1, 2, 3], [3, 2, 1]], columns=["l1", "l2", "l3"])
    assert st.kendall_w(opposite)["W"] == pytest.approx(0.0)
    tied = pd.DataFrame([[1.5, 1.5], [1.5, 1.5]])
    assert st.kendall_w(tied)["W"] is None and "undefined" in st.kendall_w(tied)["note"]
    means = pd.DataFrame({"dice": [0.8, 0.7], "focal": [0.6, 0.5]}, index=["unet", "attention_unet"])
    ranks, w = st.loss_rankings(means)
    assert ranks.loc["unet"].tolist() == [1, 2] and w["W"] == pytest.approx(1.0)
    assert st.kendall_w(means.iloc[:1])["W"] is None
    large = pd.DataFrame(np.argsort(np.random.default_rng(0).random((12, 6)), 1) + 1.0)
    result = st.kendall_w(large)
    assert result["p_method"].startswith("Monte Carlo") and 0 < result["p_standard_error"] < 0.01


def test_caveats_for_a_small_test_set_one_seed_and_the_winners_selection():
    text = " ".join(st.caveats(2, 1, 4, (1.0, 3.0)))
    assert "Small test set: 2 images" in text and "One training seed" in text and "from 1 to 3" in text
    assert st.caveats(200, 3, 1, (1.0, 1.0)) == []


def test_ties_read_consistently_the_effect_and_the_test_both_keep_zero_differences():
    """10 images tied at 0 and 5 images 0.1 lower: dropping the zeros made it "significantly lower (p 0.013)"
    beside an interval [-0.05, 0.00] that holds 0."""
    best = np.linspace(0.5, 0.9, 15)
    scores = pd.DataFrame({"best": best, "pair": best - np.r_[np.zeros(10), np.full(5, 0.1)]})
    row = st.versus_best(scores).loc["pair"]
    assert (row["difference_low"], row["median_difference"], row["difference_high"]) == pytest.approx((-0.05, -0.05,
                                                                                                        0.0))
    assert row["p"] >= 0.05 and row["verdict"] == "not significantly different from the best" and row["note"] == ""
    assert row["p"] == pytest.approx(stats.wilcoxon(scores["pair"], scores["best"], zero_method="zsplit").pvalue)


def test_with_5_images_and_3_comparisons_the_table_says_rejection_was_impossible():
    scores = pd.DataFrame({"a": [0.9, 0.8, 0.85, 0.7, 0.95], "b": [0.5, 0.4, 0.45, 0.3, 0.55],
                           "c": [0.2, 0.1, 0.15, 0.05, 0.25]})  # b and c lower than a on every image
    versus = st.versus_best(scores)
    assert versus.attrs["comparisons"] == 3 and versus.attrs["smallest_holm_p"] == pytest.approx(3 * 2 / 32)
    assert versus.loc["b", "verdict"] == ("cannot be significant with 5 images and 3 comparisons (the smallest p "
                                          "Holm's correction can reach is 0.19)")
    assert versus.loc["b", "coverage"] == pytest.approx(0.9375)  # the widest finite interval: 93.75 %, said so
    assert "covers 93.75%: 95% is not attainable" in versus.loc["b", "note"]


def test_a_pair_that_did_not_learn_is_never_compared_and_leaves_the_family():
    scores = table({"good": 0.1, "fine": 0.05, "broken": -0.4})
    versus = st.versus_best(scores, excluded={"broken"})
    assert versus.attrs["comparisons"] == 1 and np.isnan(versus.loc["broken", "p"])
    assert versus.loc["broken", "verdict"] == "not compared: did not learn the task"


def test_friedman_over_few_blocks_is_exact():
    scores = pd.DataFrame({"a": [0.9, 0.8, 0.7], "b": [0.6, 0.5, 0.4], "c": [0.3, 0.2, 0.1]})  # 3 datasets
    result = st.friedman_nemenyi(scores, blocks="datasets")
    assert result["p_value"] == pytest.approx(1 / 36) and result["p_method"].startswith("exact (36 permutations")
    assert result["p_value"] != pytest.approx(stats.friedmanchisquare(*scores.T.to_numpy()).pvalue)


def test_the_verdict_says_nothing_against_the_baseline_when_every_other_pair_failed():
    from segbench.report.analysis import verdict

    pair = {"mean": 0.02, "ci_method": "BCa", "ci_low": 0.0, "ci_high": 0.05, "failed": ["predicts no lesion"]}
    statistics = {
        "n_images": 20, "labels": {"nnunet__default": "nnU-Net 2d"},
        "per_pair": {"nnunet__default": {**pair, "mean": 0.5, "failed": []}, "a__dice": pair},
        "rank_stability": {"nnunet__default": {"rank_low": 1, "rank_high": 1}},
        "versus_best": {"best": "nnunet__default", "tied": ["nnunet__default"], "comparisons": 0, "alpha": 0.05,
                        "pairs": {"nnunet__default": {"verdict": "best"}, "a__dice": {"verdict": "failed"}}},
        "versus_baselines": {"nnunet__default": {"best": "nnunet__default",
                                                 "pairs": {"a__dice": {"verdict": "failed"}}}}}
    text = verdict(statistics)
    assert text.startswith("Best pair: nnunet__default (nnU-Net 2d)") and "Against the baseline" not in text
    assert text.endswith("Did not learn the task, so left out of every test and ranking: a__dice (predicts no "
                         "lesion).")


def test_the_verdict_names_the_pruned_pairs_apart_from_those_that_did_not_learn():
    from segbench.report.analysis import verdict

    pair = {"mean": 0.3, "ci_method": "BCa", "ci_low": 0.2, "ci_high": 0.4, "failed": [], "pruned": None}
    statistics = {
        "n_images": 20, "per_pair": {"a__dice": pair, "b__dice": {**pair, "pruned": "pruned at rung 0 (1 epoch, val "
                                                                                  "Dice 0.100)"},
                                     "c__dice": {**pair, "failed": ["predicts no lesion"]}},
        "rank_stability": {"a__dice": {"rank_low": 1, "rank_high": 1}},
        "versus_best": {"best": "a__dice", "tied": ["a__dice"], "comparisons": 0, "alpha": 0.05,
                        "pairs": {"a__dice": {"verdict": "best mean"}, "b__dice": {"verdict": "not compared"},
                                  "c__dice": {"verdict": "not compared"}}}}
    text = verdict(statistics)
    assert "Pruned early (sweep.budget), so not ranked: b__dice (pruned at rung 0 (1 epoch, val " \
           "Dice 0.100))." in text
    assert text.endswith("Did not learn the task, so left out of every test and ranking: c__dice (predicts no "
                         "lesion).")


def test_a_number_that_rounds_to_zero_shows_without_a_sign():
    from segbench.report.tables import display

    shown = display(pd.DataFrame({"gap": [-0.0004, -0.02], "gap 95% CI": [(-0.0002, 0.005), (-0.03, -0.01)]}))
    assert shown.to_dict("list") == {"gap": ["0.000", "-0.020"], "gap 95% CI": ["0.000–0.005", "-0.030 to -0.010"]}


def test_the_gap_at_equal_training_size_pairs_the_images_and_leaves_out_a_reference_that_did_not_learn():
    from segbench.report.analysis import equal_size
    from segbench.report.collect import Results

    rng = np.random.default_rng(0)
    ids = [f"img{i}" for i in range(30)]
    scores = {"in": rng.uniform(0.5, 0.9, 30), "out": rng.uniform(0.2, 0.6, 30)}
    references = pd.concat([pd.DataFrame({"pair": pair, "seed": 0, "sample_id": ids, "lesion": True, "model": side,
                                          "dice": scores[side]}) for pair in ("a__dice", "b__dice")
                            for side in ("in", "out")])
    per_image = pd.concat([pd.DataFrame({"pair": pair, "seed": 0, "sample_id": ids, "lesion": True,
                                         "dice_raw": np.full(30, 0.4)}) for pair in ("a__dice", "b__dice")])
    sizes = {"in": {"train": 31, "val": 8}, "out": {"train": 31, "val": 8}, "sweep": {"train": 84, "val": 22}}
    reference = {("a__dice", 0): {"sizes": sizes, "failed": {}},
                 ("b__dice", 0): {"sizes": sizes, "failed": {"in": ["predicts nothing on 95% of the test images"]}}}
    results = Results(["a__dice", "b__dice"], pd.DataFrame(), per_image, pd.DataFrame(), pd.DataFrame(), {}, {},
                      references=references, reference=reference)
    found = equal_size(results, leaked=["img0"])
    a = found["pairs"]["a__dice"]
    assert a["n"] == 29 and found["left_out"] == ["img0"] and found["sizes"] == sizes
    assert a["gap"] == pytest.approx(np.mean(scores["in"][1:] - scores["out"][1:]))
    assert a["raw_gap"] == pytest.approx(np.mean(scores["in"][1:]) - 0.4) and a["gap_low"] < a["gap"] < a["gap_high"]
    assert "b__dice" not in found["pairs"]
    assert found["failed"] == {"b__dice": ["seed 0, trained in the held-out group: predicts nothing on 95% of the "
                                           "test images"]}
