"""The report: figures from tiny tables, the workbook, and what a person sees (LibreOffice, Chromium)."""

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook
from PIL import Image

from segbench.report import figures
from support import SWEEP

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


def png(figure, path):
    figure.savefig(path, dpi=60)
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 10  # something was drawn
    return image


def test_every_figure_draws_from_a_tiny_table(tmp_path):
    matrix = pd.DataFrame([[0.8, 0.7], [0.6, 0.5]], index=["unet", "attention_unet"], columns=["dice", "focal"])
    ci = {(a, l): (v - 0.05, v + 0.05) for a in matrix.index for l in matrix.columns for v in [matrix.loc[a, l]]}
    png(figures.plot_dice_matrix(matrix, ci), tmp_path / "m.png")
    scores = pd.DataFrame(np.random.default_rng(0).uniform(0, 1, (10, 3)), columns=["a", "b", "c"])
    png(figures.plot_distributions(scores), tmp_path / "d.png")
    costs = pd.DataFrame({"pair": ["a", "b", "c"], "Dice": [0.8, 0.7, 0.75], "GFLOPs": [3.0, 1.0, 5.0]})
    png(figures.plot_pareto(costs, {"GFLOPs": "GFLOPs"}), tmp_path / "p.png")
    history = pd.DataFrame({"pair": ["a"] * 3 + ["b"] * 3, "epoch": [1, 2, 3] * 2, "train_loss": np.linspace(1, 0, 6),
                            "val_loss": np.linspace(1, 0.2, 6), "val_dice": np.linspace(0, 0.8, 6)})
    png(figures.plot_learning_curves(history), tmp_path / "l.png")
    ranks = pd.Series({"a": 1.2, "b": 2.0, "c": 2.8})
    nemenyi = pd.DataFrame(0.5, index=ranks.index, columns=ranks.index)
    png(figures.plot_critical_difference(ranks, nemenyi), tmp_path / "c.png")
    png(figures.plot_critical_difference(ranks, None), tmp_path / "c2.png")
    stability = pd.DataFrame({"median_rank": [1, 2], "rank_low": [1, 1], "rank_high": [2, 3]}, index=["a", "b"])
    png(figures.plot_rank_stability(stability), tmp_path / "r.png")
    strata = pd.DataFrame({"pair": ["a", "a", "b", "b"], "stratum": ["bone"] * 4, "value": ["femur", "tibia"] * 2,
                           "n": [3, 4, 3, 4], "dice": [0.5, 0.6, 0.7, 0.2]})
    png(figures.plot_strata(strata, ["a", "b"]), tmp_path / "s.png")
    image = np.zeros((20, 30), np.uint8)
    png(figures.plot_cases([("a: best", [image, image, image, image, image])]), tmp_path / "q.png")


def test_pareto_front_keeps_the_points_nothing_beats():
    cost, quality = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.5, 0.4, 0.8, 0.7])
    assert sorted(figures.pareto_front(cost, quality)) == [0, 2]


def test_the_report_has_every_part(swept):
    report = swept / SWEEP.report
    page = (report / "report.html").read_text()
    for section in ("Comparison", "Statistics", "Accuracy against cost", "Training", "Cases", "Strata",
                    "Set-up and definitions", "Split", "Provenance", "Best pair:", "not worse than best",
                    "Leakage report", "data checksum", "params hash", "dice_focal</dt><dd>0.7·dice + 0.3·focal"):
        assert section in page, section
    assert page.count("data:image/png;base64,") == 8 and not re.search(r"""(src|href)=["']?https?:|url\(""", page)
    for figure in ("dice_matrix", "distributions", "pareto", "learning_curves", "critical_difference",
                   "rank_stability", "strata", "cases"):
        assert (report / "figures" / f"{figure}.png").stat().st_size > 1000
        assert (report / "figures" / f"{figure}.svg").read_text().startswith("<?xml")
    statistics = json.loads((report / "statistics.json").read_text())
    assert "Holm" in statistics["versus_best"]["correction"] and statistics["friedman"]["test"] == "Friedman"
    md = (report / "comparison.md").read_text()
    assert "## Statistics" in md and "Kendall's W" in md and "one forward pass of one 32x32 image" in md


def test_the_workbook_is_formatted(swept):
    book = load_workbook(swept / SWEEP.report / "comparison.xlsx")
    assert book.sheetnames == ["summary", "comparison", "dice matrix", "strata", "statistics", "per image",
                               "split counts", "runs"]
    comparison = book["comparison"]
    assert comparison.freeze_panes == "A4" and comparison.auto_filter.ref.startswith("A3:")
    header = [c.value for c in comparison[3]]
    assert header[:4] == ["rank", "architecture", "loss", "Dice"]
    assert comparison.cell(4, 4).number_format == "0.0000"
    rules = book["dice matrix"].conditional_formatting
    assert any(r.type == "colorScale" for cf in rules for r in cf.rules)
    runs = book["runs"]
    assert [c.value for c in runs[3]][-1] == "mlflow_run_id" and runs.max_row == 3 + 4


@pytest.mark.skipif(not SOFFICE, reason="LibreOffice (Debian's libreoffice-calc) is not installed")
def test_libreoffice_opens_the_workbook(swept, tmp_path):
    done = subprocess.run([SOFFICE, "--headless", f"-env:UserInstallation=file://{tmp_path}/profile",
                           "--convert-to", "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,"
                           "false,2", "--outdir", str(tmp_path), str(swept / SWEEP.report / "comparison.xlsx")],
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    comparison = (tmp_path / "comparison-comparison.csv").read_text()
    assert "rank,architecture,loss,Dice" in comparison and "smp_unet" in comparison


@pytest.mark.skipif(not BROWSER, reason="Chromium (Debian's chromium) is not installed")
def test_the_page_renders_in_a_real_browser(swept, tmp_path):
    from support.browser import open_page

    with open_page((swept / SWEEP.report / "report.html").as_uri()) as page:
        images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
        assert len(images) == 8 and all(done and width > 100 for done, width in images)
        assert page.locator("p.verdict").inner_text().startswith("Best pair:")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=False)
    assert Image.open(tmp_path / "report.png").size[0] >= 1000
