"""The cross-dataset summary's table and verdict, and the generalisation gap, from hand-made statistics."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from segbench.evaluation.statistics import friedman_nemenyi, gap_ci
from segbench.report import cross_dataset


def _statistics(means: dict[str, float], best_ci=(0.0, 1.0), lower=()) -> dict:
    best = max(means, key=means.get)
    per_pair = {p: {"mean": m, "ci_low": m - 0.05, "ci_high": m + 0.05, "failed": []} for p, m in means.items()}
    per_pair[best].update(ci_low=best_ci[0], ci_high=best_ci[1])
    return {"best": best, "ranking": sorted(means, key=means.get, reverse=True), "per_pair": per_pair,
            "n_images": 30, "versus_best": {"pairs": {p: {"verdict": "significantly lower than the best"
                                                          if p in lower else "best mean"} for p in means}}}


def test_the_table_ranks_pairs_over_datasets_and_counts_wins_and_ties_with_the_best():
    statistics = {"a": _statistics({"x": 0.9, "y": 0.8, "z": 0.5}, (0.75, 0.95), lower={"z"}),
                  "b": _statistics({"x": 0.6, "y": 0.7, "z": 0.4}, (0.55, 0.8), lower={"z"}),
                  "c": _statistics({"x": 0.8, "y": 0.7, "z": 0.3}, (0.75, 0.85), lower={"y", "z"})}
    scores = cross_dataset.dice_by_dataset(statistics)
    assert scores.loc["b", "y"] == 0.7 and list(scores.index) == ["a", "b", "c"]
    table = cross_dataset.table(statistics, scores).set_index("pair")
    assert list(table.index) == ["x", "y", "z"]
    assert table.loc["x", "mean rank"] == pytest.approx(4 / 3) and table.loc["z", "mean rank"] == 3
    assert table.loc["x", "wins"] == 2 and table.loc["y", "wins"] == 1
    assert table.loc["x", "within best's CI"] == 3 and table.loc["y", "within best's CI"] == 2
    assert table.loc["y", "not significantly lower"] == 2 and table.loc["z", "not significantly lower"] == 0
    friedman = friedman_nemenyi(scores, blocks="datasets")
    exact = stats.permutation_test(  # scipy's own count: every pair's scores permuted within each dataset
        scores.T.to_numpy(), lambda *x: stats.friedmanchisquare(*x).statistic, permutation_type="samples",
        n_resamples=np.inf, alternative="greater").pvalue
    assert friedman["p_value"] == pytest.approx(exact) and friedman["p_method"].startswith("exact")
    assert friedman["p_value"] > stats.friedmanchisquare(*scores.T.to_numpy()).pvalue  # 0.19, not 0.097
    text = cross_dataset.verdict(friedman, cross_dataset.table(statistics, scores), 3, cross_dataset.failures(
        statistics))
    assert text.startswith("Over 3 datasets, x has the best mean rank (1.33): the best pair on 2 of the 3 "
                           "datasets, within the best's CI on 3 of 3.")
    assert "Friedman's test over datasets does not reject" in text


def test_a_tie_at_the_top_is_said():
    ranking = pd.DataFrame({"pair": ["x", "y"], "mean rank": [1.5, 1.5], "wins": [1, 1], "within best's CI": [2, 2]})
    text = cross_dataset.verdict({"p_value": None, "note": "needs 3 pairs"}, ranking, 2, cross_dataset.failures({}))
    assert "x and y share the best mean rank (1.50)" in text and "not computed (needs 3 pairs)" in text


def test_the_gap_is_paired_on_shared_images_and_its_interval_covers_it():
    rng = np.random.default_rng(0)
    ids = [f"i{k}" for k in range(40)]
    base = pd.Series(rng.uniform(0.4, 0.9, 40), index=ids)
    shifted = (base - 0.1 + rng.normal(0, 0.01, 40)).sample(frac=1, random_state=1)  # same images, shuffled
    paired = gap_ci(base, shifted)
    assert paired["paired"] and paired["gap"] == pytest.approx(base.mean() - shifted.mean())
    assert paired["gap_low"] < paired["gap"] < paired["gap_high"] and paired["gap_high"] - paired["gap_low"] < 0.02
    other = pd.Series(rng.uniform(0.3, 0.8, 25), index=[f"o{k}" for k in range(25)])
    unpaired = gap_ci(base, other)
    assert not unpaired["paired"] and (unpaired["n_reference"], unpaired["n_other"]) == (40, 25)
    assert unpaired["gap_low"] < unpaired["gap"] < unpaired["gap_high"]
    assert gap_ci(base.iloc[:1], other.iloc[:1])["gap_low"] is None


def test_a_pair_that_failed_on_every_dataset_is_left_out_of_the_ranking_and_listed():
    statistics = {d: _statistics({"x": 0.5, "y": 0.7, "broken": 0.0}) for d in ("a", "b")}
    for s in statistics.values():  # a failed pair ranks first on every image where nothing is found: make it so
        s["per_pair"]["broken"].update(mean=0.9, failed=["predicts nothing on 95% of the test images"])
    failed = cross_dataset.failures(statistics)
    assert list(failed["pair"]) == ["broken", "broken"] and list(failed["dataset"]) == ["a", "b"]
    scores = cross_dataset.dice_by_dataset(statistics, set(failed["pair"]))
    ranking = cross_dataset.table(statistics, scores)
    assert "broken" not in set(ranking["pair"]) and ranking["pair"].iloc[0] == "y"
    friedman = friedman_nemenyi(scores, blocks="datasets")
    assert "broken" not in friedman["mean_ranks"]
    text = cross_dataset.verdict(friedman, ranking, 2, failed)
    assert "y has the best mean rank" in text and text.endswith("on some dataset: broken.")


def test_the_in_group_reference_leaves_out_images_with_a_near_copy_in_training():
    from segbench.report.analysis import generalisation
    from segbench.report.collect import Results

    def rows(ids, dice):
        return pd.DataFrame({"pair": "p", "seed": 0, "sample_id": ids, "dice": dice, "lesion": True})

    held_out = rows(["h1", "h2", "h3"], [0.4, 0.5, 0.6])
    in_group = rows(["g1", "g2", "g3"], [0.7, 0.8, 1.0]).assign(**{"test set": "in_group"})
    results = Results(["p"], pd.DataFrame(), held_out, pd.DataFrame(), pd.DataFrame(), {}, {},
                      other_tests=in_group)
    found = generalisation(results, leaked_in_group=["g3", "x9"])["in_group"]
    assert found["left_out"] == ["g3"] and found["reference"] == "in-group test images"
    from segbench.report.tables import generalisation_tables

    title = next(iter(generalisation_tables({"generalisation": {"in_group": found}, "ranking": ["p"]})))
    assert title.endswith("(1 in-group image with a near-duplicate or group mate in train or val left out)")
    gap = found["pairs"]["p"]
    assert gap["reference"] == pytest.approx(0.75) and gap["n_reference"] == 2
    assert gap["gap"] == pytest.approx(0.25) and not gap["paired"]
    assert generalisation(results)["in_group"]["pairs"]["p"]["reference"] == pytest.approx(2.5 / 3)
