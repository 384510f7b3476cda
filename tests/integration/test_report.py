"""The report: figures from tiny tables, every part of a real sweep's report, the verdict's words, failed runs,
the workbook, and a report of many pairs."""

import json
import re

import numpy as np
import pandas as pd
from openpyxl import load_workbook
from PIL import Image

from segbench import paths, pipeline
from segbench.report import figures
from support import PAIRS, SWEEP, TINY
from support.results import fabricate


def png(figure, path):
    figures.save(figure, path, "png", dpi=60)
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 10  # something was drawn
    return image


def test_every_figure_draws_from_a_tiny_table(tmp_path):
    palette = figures.Palette(["a", "b", "c"])
    matrix = pd.DataFrame([[0.8, 0.7], [0.6, 0.5]], index=["unet", "attention_unet"], columns=["dice", "focal"])
    ci = {(a, l): (v - 0.05, v + 0.05) for a in matrix.index for l in matrix.columns for v in [matrix.loc[a, l]]}
    png(figures.plot_dice_matrix(matrix, ci), tmp_path / "m.png")
    scores = pd.DataFrame(np.random.default_rng(0).uniform(0, 1, (10, 3)), columns=["a", "b", "c"])
    png(figures.plot_distributions(scores, palette), tmp_path / "d.png")
    costs = pd.DataFrame({"pair": ["a", "b", "c"], "Dice": [0.8, 0.7, 0.75], "GFLOPs": [3.0, 1.0, 5.0],
                          "GFLOPs IQR": [0.1, 0.1, 0.1]})
    png(figures.plot_pareto(costs, {"GFLOPs": "GFLOPs"}, palette), tmp_path / "p.png")
    history = pd.DataFrame({"pair": ["a"] * 3 + ["b"] * 3, "epoch": [1, 2, 3] * 2, "train_loss": np.linspace(1, 0, 6),
                            "val_loss": np.linspace(1, 0.2, 6), "val_dice": np.linspace(0, 0.8, 6)})
    png(figures.plot_learning_curves(history, palette), tmp_path / "l.png")
    ranks = pd.Series({"a": 1.2, "b": 2.0, "c": 2.8})
    nemenyi = pd.DataFrame(0.5, index=ranks.index, columns=ranks.index)
    png(figures.plot_critical_difference(ranks, nemenyi, palette, friedman_p=0.01), tmp_path / "c.png")
    png(figures.plot_critical_difference(ranks, None, palette), tmp_path / "c2.png")
    stability = pd.DataFrame({"median_rank": [1, 2], "rank_low": [1, 1], "rank_high": [2, 3]}, index=["a", "b"])
    png(figures.plot_rank_stability(stability, palette), tmp_path / "r.png")
    strata = pd.DataFrame({"pair": ["a", "a", "b", "b"], "stratum": ["bone"] * 4, "value": ["femur", "tibia"] * 2,
                           "n": [3, 4, 3, 4], "dice": [0.5, 0.6, 0.7, 0.0]})
    png(figures.plot_strata(strata, palette), tmp_path / "s.png")
    image = np.zeros((20, 30), np.uint8)
    png(figures.plot_cases([("a: best", [image, image, image, image, image])]), tmp_path / "q.png")
    noise = np.random.default_rng(0).integers(0, 255, (20, 30), np.uint8)
    shown = png(figures.plot_leakage([("x (train)\ny (test)\n3 bits", noise, noise)] * 4), tmp_path / "k.png")
    assert shown.shape[0] > 2 * figures.plot_leakage([]).get_size_inches()[1] * 60  # two rows; "none found": a line


def test_the_tuning_figure_rings_each_pairs_choice_and_draws_a_pruned_candidate_hollow(tmp_path):
    candidates = pd.DataFrame({"pair": ["a"] * 3 + ["b"] * 3, "candidate": ["lr 0.001", "lr 0.01", "lr 0.1"] * 2,
                               "val_dice": [0.5, 0.7, 0.2, 0.6, 0.4, 0.3],
                               "chosen": [False, True, False, True, False, False],
                               "pruned": [False, False, True, False, True, True]})
    figure = figures.plot_tuning(candidates, figures.Palette(["a", "b"]))
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["lr 0.001", "lr 0.01", "lr 0.1"]
    rings = [(line.get_xdata()[0], line.get_ydata()[0]) for line in ax.lines if line.get_markersize() == 11]
    assert sorted(rings) == [(0, 0.6), (1, 0.7)]  # the "chosen" flags, at their candidates
    hollow = [(line.get_xdata()[0], line.get_ydata()[0]) for line in ax.lines
              if line.get_markersize() == 5 and line.get_markerfacecolor() == "white"]
    assert sorted(hollow) == [(1, 0.4), (2, 0.2), (2, 0.3)]
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["a", "b", "chosen", "pruned early (sweep.budget)"]
    png(figure, tmp_path / "t.png")


def test_every_figure_stays_readable_at_440_pairs(tmp_path):
    """The thesis's 22 architectures x 20 losses: top pairs coloured, the rest folded, figures of a page's size."""
    rng = np.random.default_rng(0)
    archs, losses = [f"arch{i:02d}" for i in range(22)], [f"loss{j:02d}" for j in range(20)]
    order = [f"{a}__{l}" for a in archs for l in losses]
    palette = figures.Palette(order)
    matrix = pd.DataFrame(rng.uniform(0, 1, (22, 20)), index=archs, columns=losses)
    history = pd.DataFrame([{"pair": p, "epoch": e, "train_loss": 1 / e, "val_loss": 1 / e, "val_dice": 1 - 1 / e}
                            for p in order for e in (1, 2)])
    strata = pd.DataFrame([{"pair": p, "stratum": "bone", "value": v, "n": 5, "dice": 0.5}
                           for p in order for v in ("femur", "tibia")])
    drawn = {
        "matrix": figures.plot_dice_matrix(matrix, {(a, l): (0.1, 0.9) for a in archs for l in losses}),
        "distributions": figures.plot_distributions(pd.DataFrame(rng.uniform(0, 1, (30, 440)), columns=order),
                                                    palette),
        "pareto": figures.plot_pareto(pd.DataFrame({"pair": order, "Dice": rng.uniform(0, 1, 440),
                                                    "GFLOPs": np.repeat(rng.uniform(1, 50, 22), 20),
                                                    "GFLOPs IQR": 0.1}), {"GFLOPs": "GFLOPs"}, palette),
        "curves": figures.plot_learning_curves(history, palette),
        "cd": figures.plot_critical_difference(pd.Series(np.linspace(1, 440, 440), index=order), None, palette),
        "stability": figures.plot_rank_stability(pd.DataFrame({"median_rank": np.arange(1, 441),
                                                               "rank_low": np.arange(1, 441),
                                                               "rank_high": np.arange(6, 446)}, index=order), palette),
        "strata": figures.plot_strata(strata, palette),
    }
    for name, figure in drawn.items():
        width, height = figure.get_size_inches()
        assert width <= figures.WIDTH and height <= 9, (name, width, height)  # one page, one column or two
        texts = [t for t in figure.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
                 if t.get_text().strip()]
        assert len(texts) < 400, (name, len(texts))  # no label per pair: the rest is folded
        assert min(t.get_fontsize() for t in texts) >= 8, (name, min(t.get_fontsize() for t in texts))
        png(figure, tmp_path / f"{name}.png")


def test_one_colour_per_pair_in_rank_order_the_rest_grey():
    palette = figures.Palette([f"p{i}" for i in range(18)])
    assert [palette(f"p{i}") for i in range(8)] == list(figures.OKABE_ITO)
    assert {palette(f"p{i}") for i in range(8, 18)} == {figures.GREY} and palette.shown() == [f"p{i}" for i in range(8)]


def test_the_pareto_front_keeps_what_nothing_beats_and_ties_within_the_spread():
    cost, quality = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, 0.4, 0.8, 0.7])
    assert list(figures.pareto_front(cost, quality)) == [0, 2]
    noisy = np.array([1.0, 1.1, 3.0])  # 1.0 and 1.1 differ by less than their spread: a tie, the better wins
    assert list(figures.pareto_front(noisy, np.array([0.5, 0.6, 0.9]), np.array([0.2, 0.2, 0.1]))) == [1, 2]


def test_the_report_has_every_part(swept):
    report = swept / SWEEP.report
    page = (report / "report.html").read_text()
    for section in ("Comparison", "Metrics", "Detection", "Statistics", "Accuracy against cost", "Training",
                    "Cases", "Set-up and definitions", "Split", "Leakage", "imagehash phash", "Provenance",
                    "data checksum", "params hash",
                    "dice_focal</dt><dd>0.7·dice + 0.3·focal", "HD95 (px)", "HD95 matched (px)", "penalised",
                    "Lesion sensitivity", "FP / image", "Read with care", "One training seed",
                    "different power", "Hodges-Lehmann"):
        assert section in page, section
    drawn = pipeline.figures(TINY)
    assert page.count("data:image/png;base64,") == len(drawn) == len(paths.FIGURES) - 1  # all but sweep.tune's
    assert not re.search(r"""(src|href)=["']?https?:|url\(""", page)
    for figure in drawn:
        assert (report / "figures" / f"{figure}.png").stat().st_size > 1000
        assert (report / "figures" / f"{figure}.svg").read_text().startswith("<?xml")
        assert (report / "figures" / f"{figure}.pdf").read_bytes().startswith(b"%PDF")
    statistics = json.loads((report / "statistics.json").read_text())
    assert "Holm" in statistics["versus_best"]["correction"] and statistics["friedman"]["test"] == "Friedman"
    assert statistics["ranking"][0] == statistics["best"] or statistics["per_pair"][statistics["best"]]["failed"]
    assert all(r["ci_method"] for r in statistics["per_pair"].values())
    md = (report / "comparison.md").read_text()
    assert "## Statistics" in md and "Kendall's W" in md and "one forward pass of one 32x32 image" in md
    assert not re.search(r"\b(True|False|nan|NaN|None)\b", md)
    budgets = re.findall(r"\| (\d+) × (\d+) × (\d+); [\d,]+ CPU-s", md)  # epochs x iterations x batch, per pair
    assert len(budgets) == len(PAIRS) and all(b[0] == "2" and int(b[1]) > 0 and b[2] == "8" for b in budgets), md
    tex = (report / "comparison.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and "|" not in tex.split("tabular}{")[1].split("}")[0]


def test_the_verdict_says_when_mean_and_paired_test_disagree(swept, tmp_path, monkeypatch):
    """The issue's 40-image reproduction, through the whole report: statistics.json, the page and the workbook."""
    from segbench.report import build_report

    ids = pd.read_csv(swept / "data/processed/synthetic/meta.csv").astype({"sample_id": str})["sample_id"][:40]
    rng = np.random.default_rng(1)
    a = rng.uniform(0.6, 0.9, 40)
    b = a + np.r_[rng.uniform(0.01, 0.03, 35), -a[35:]]  # better on 35 images, lesions missed on 5
    monkeypatch.chdir(tmp_path)
    view, where = fabricate(swept, tmp_path, pd.DataFrame({"arch_a__dice": a, "arch_b__dice": b}, index=ids))
    build_report(view, where)
    words = "higher than the mean-best on the paired test (mean and paired test disagree)"
    statistics = json.loads((where.report / "statistics.json").read_text())
    assert statistics["best"] == "arch_a__dice"
    assert statistics["versus_best"]["pairs"]["arch_b__dice"]["verdict"] == words
    assert "worse" not in json.dumps(statistics["versus_best"])
    assert (f"{words[0].upper()}{words[1:]} (two-sided Wilcoxon, Holm over 1 pairwise comparison, alpha 0.05): "
            "arch_b__dice") in (where.report / "report.html").read_text()
    sheet = load_workbook(where.report / "comparison.xlsx")["comparison"]
    header = [c.value for c in sheet[3]]
    assert sheet.cell(5, header.index("verdict") + 1).value == words


def test_a_loss_that_cannot_learn_is_marked_never_best_and_out_of_every_ranking(swept, tmp_path, monkeypatch):
    """2 architectures x 3 losses, one loss that never learned (it predicts everything: Dice 0.9 on these images,
    the best mean): not best, and absent from Friedman, the critical-difference diagram, the bootstrap ranks,
    Kendall's W and the cross-dataset ranking, listed apart in each with its reason."""
    from segbench.report import build_report
    from segbench.report.cross_dataset import build_summary

    ids = pd.read_csv(swept / "data/processed/synthetic/meta.csv").astype({"sample_id": str})["sample_id"][:20]
    rng = np.random.default_rng(0)
    dice = pd.DataFrame({f"{a}__{l}": np.clip(base + rng.normal(0, 0.05, 20), 0, 1) for a, shift in (("a1", 0),
                         ("a2", 0.1)) for l, base in (("all_fg", np.full(20, 0.9)), ("l1", np.linspace(0.4, 0.6, 20)
                                                      + shift), ("l2", np.linspace(0.3, 0.5, 20) + shift))}, index=ids)
    reason = ["predicts (nearly) the whole image as lesion on 100% of the test images"]
    failed = {"a1__all_fg": reason, "a2__all_fg": reason}
    monkeypatch.chdir(tmp_path)
    view, where = fabricate(swept, tmp_path, dice, failed=failed)
    build_report(view, where)
    statistics = json.loads((where.report / "statistics.json").read_text())
    assert statistics["best"] == "a2__l1" and set(statistics["ranking"][-2:]) == set(failed)
    assert statistics["failed"] == failed and statistics["versus_best"]["comparisons"] == 6  # 4 pairs: 6, not 15
    for place in (statistics["friedman"]["mean_ranks"], statistics["rank_stability"],
                  statistics["loss_rankings"]["ranks"]["a1"]):
        assert not set(place) & set(failed), place
    assert statistics["loss_rankings"]["kendall_w"]["left_out"] == ["loss all_fg"]
    page = (where.report / "report.html").read_text()
    assert re.search(r"Did not learn the task, so left out of every test and ranking: a[12]__all_fg \(predicts "
                     r"\(nearly\)[^.]*; a[12]__all_fg \(predicts", page)
    assert '<tr class="failed">' in page and "Left out of every test and ranking: did not learn the task" in page
    md = (where.report / "comparison.md").read_text()
    assert re.search(r"\|\s*–\s*\| a1\s+\|.*failed: predicts \(nearly\) the whole image", md)
    assert "left out, as they hold a pair that did not learn: loss all_fg" in md
    assert r"$^\ast$" in (where.report / "comparison.tex").read_text()
    summary = build_summary(view["sweep"])
    found = json.loads((summary.parent / paths.CROSS_JSON).read_text())
    assert {row["pair"] for row in found["table"]} == {"a1__l1", "a1__l2", "a2__l1", "a2__l2"}
    assert {row["pair"] for row in found["failed"]} == set(failed) and "Left out of the ranking" in found["verdict"]
    assert "did not learn the task" in summary.read_text()


def test_a_budgeted_sweep_whose_survivor_did_not_learn_never_ranks_the_pruned_against_it(swept, tmp_path,
                                                                                           monkeypatch):
    from segbench.io import read_json, write_json
    from segbench.report import build_report

    ids = pd.read_csv(swept / "data/processed/synthetic/meta.csv").astype({"sample_id": str})["sample_id"][:20]
    dice = pd.DataFrame({"a__dice": np.full(20, 0.05), "b__dice": np.linspace(0.3, 0.6, 20),
                         "c__dice": np.linspace(0.2, 0.5, 20)}, index=ids)
    monkeypatch.chdir(tmp_path)
    view, where = fabricate(swept, tmp_path, dice, failed={"a__dice": ["predicts no lesion"]})
    for arch in ("b", "c"):  # pruned at rung 0: their higher test Dice is of fewer epochs
        path = where.fold(arch, "dice", 0, 0) / paths.TRAINED
        write_json(path, {**read_json(path), "pruned": {"rung": 0, "epochs": 1, "val_dice": 0.1}})
    build_report(view, where)
    statistics = json.loads((where.report / "statistics.json").read_text())
    assert statistics["ranked"] == ["a__dice"] and set(statistics["pruned"]) == {"b__dice", "c__dice"}
    assert statistics["versus_best"]["comparisons"] == 0 and set(statistics["rank_stability"]) == {"a__dice"}


def test_a_report_of_eighteen_pairs_is_ordered_and_readable(swept, tmp_path, monkeypatch):
    """6 architectures x 3 losses: every table and figure in rank order, the best 8 in their own colours."""
    from segbench.report import build_report

    ids = pd.read_csv(swept / "data/processed/synthetic/meta.csv").astype({"sample_id": str})["sample_id"][:30]
    rng = np.random.default_rng(0)
    pairs = [f"arch{a}__loss{l}" for a in range(6) for l in range(3)]
    dice = pd.DataFrame({p: np.clip(rng.uniform(0.3, 0.9) + rng.normal(0, 0.1, 30), 0, 1) for p in pairs}, index=ids)
    monkeypatch.chdir(tmp_path)
    view, where = fabricate(swept, tmp_path, dice)
    build_report(view, where)
    statistics = json.loads((where.report / "statistics.json").read_text())
    assert statistics["ranking"] == list(dice.mean().sort_values(ascending=False).index)
    book = load_workbook(where.report / "comparison.xlsx")
    ranks = [c.value for c in book["comparison"]["A"][3:]]
    assert ranks == list(range(1, 19))
    for sheet in book.worksheets:
        assert sheet.freeze_panes and sheet.auto_filter.ref and sheet.page_setup.fitToWidth == 1
        assert sheet.page_setup.orientation == "landscape" and sheet.print_title_rows
    for name in ("distributions", "strata", "learning_curves", "rank_stability", "critical_difference"):
        width, height = Image.open(where.figure(name)).size
        assert width <= 7.2 * 150 and height < 12 * 150, name  # a page's width, not a poster


def test_gpu_latency_and_memory_appear_beside_the_cpu_figures(swept, tmp_path, monkeypatch):
    """The latency stage's GPU numbers (on a GPU machine) reach the cost table and name the device."""
    from segbench.report import build_report

    ids = pd.read_csv(swept / "data/processed/synthetic/meta.csv").astype({"sample_id": str})["sample_id"][:20]
    monkeypatch.chdir(tmp_path)
    view, where = fabricate(swept, tmp_path, pd.DataFrame({"arch_a__dice": np.linspace(0.5, 0.8, 20)}, index=ids))
    latency = json.loads(where.latency("arch_a").read_text())
    where.latency("arch_a").write_text(json.dumps({**latency, "latency_ms_gpu": 3.25, "latency_ms_gpu_iqr": 0.1,
                                                   "weights_mb_gpu": 7.5, "activations_mb_gpu": 120.0,
                                                   "gpu": "NVIDIA A100-SXM4-40GB"}))
    build_report(view, where)
    md = (where.report / "comparison.md").read_text()
    cost = md.split("## Cost")[1].split("##")[0]
    for column in ("CPU latency (ms)", "GPU latency (ms)", "GPU weights (MB)", "GPU activations (MB)"):
        assert column in cost, column
    assert "3.250" in cost and "GPU columns: on NVIDIA A100-SXM4-40GB" in md
