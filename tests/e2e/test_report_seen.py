"""The report as a person sees it: the page in a real Chromium at 1,280 px, the workbook printed by LibreOffice,
the LaTeX table compiled by pdflatex. Each skips, saying why, where its program is missing."""

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from segbench import pipeline
from support import SWEEP, TINY
from support.browser import BROWSER, SCREENSHOTS
from support.results import fabricate

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
PDFLATEX = shutil.which("pdflatex")
POPPLER = shutil.which("pdftotext") and shutil.which("pdfinfo")


@pytest.fixture(scope="module")
def eighteen(swept, tmp_path_factory):
    """A report of 18 pairs (6 architectures x 3 losses) made from made-up results, one of them failed."""
    from segbench.report import build_report

    root = tmp_path_factory.mktemp("eighteen")
    ids = pd.read_csv(swept / "data/processed/synthetic/meta.csv").astype({"sample_id": str})["sample_id"][:30]
    rng = np.random.default_rng(0)
    pairs = [f"{a}__{l}" for a in ("unet", "attention_unet", "unet_plusplus", "smp_fpn", "smp_linknet", "transunet")
             for l in ("dice", "dice_focal", "focal_tversky")]
    dice = pd.DataFrame({p: np.clip(rng.uniform(0.3, 0.9) + rng.normal(0, 0.1, 30), 0, 1) for p in pairs}, index=ids)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        view, where = fabricate(swept, root, dice, failed={"transunet__focal_tversky": ["predicts nothing"]})
        build_report(view, where)
    return root / where.report


def pages(pdf) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return text.split("\f")[:-1]


@pytest.mark.skipif(not BROWSER, reason="Chromium (Debian's chromium) is not installed")
@pytest.mark.parametrize("which", ["tiny sweep", "18 pairs"])
def test_the_page_fits_1280_pixels_with_every_figure(swept, eighteen, which):
    from support.browser import open_page

    report = swept / SWEEP.report if which == "tiny sweep" else eighteen
    with open_page((report / "report.html").as_uri(), width=1280, height=900) as page:
        width, visible = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width <= visible, f"the page scrolls sideways: {width} px in a {visible} px window"
        images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
        assert len(images) == len(pipeline.figures(TINY)) and all(done and width > 100 for done, width in images)
        assert page.locator("p.verdict").inner_text().split(":")[0] in ("Best pair", "No pair learned the task; the "
                                                                                     "highest mean")
        first = page.locator("#comparison table tbody tr td:nth-child(2)").first.inner_text()
        page.locator("#comparison table th", has_text="Dice").first.click()  # sort by Dice, ascending
        assert page.locator("#comparison table tbody tr td:nth-child(2)").first.inner_text() != first or \
            page.locator("#comparison table tbody tr").count() == 1
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"report-{which.replace(' ', '-')}.png"), full_page=False)


@pytest.mark.skipif(not PDFLATEX or not POPPLER, reason="pdflatex (texlive-latex-base, -recommended) or poppler-utils "
                                                        "is not installed")
@pytest.mark.parametrize("which", ["tiny sweep", "18 pairs"])
def test_the_latex_table_compiles_into_one_page(swept, eighteen, tmp_path, which):
    report = swept / SWEEP.report if which == "tiny sweep" else eighteen
    shutil.copy(report / "comparison.tex", tmp_path)
    done = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "comparison.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]
    info = subprocess.run(["pdfinfo", str(tmp_path / "comparison.pdf")], capture_output=True, text=True).stdout
    assert re.search(r"Pages:\s+1\b", info), info
    text = pages(tmp_path / "comparison.pdf")[0]
    assert "Rank" in text and "Hodges" in text and "Holm" in text
    assert "Overfull" not in done.stdout  # nothing runs into the margin


@pytest.mark.skipif(not PDFLATEX or not POPPLER, reason="pdflatex (texlive-latex-base, -recommended) or poppler-utils "
                                                        "is not installed")
def test_a_baselines_long_name_and_every_budget_fit_the_page(swept, tmp_path):
    """The tiny sweep's table with an nnU-Net ResEnc M row, named with its schedule: its name wraps in its cell,
    and every row's budget is printed, with nothing running into the margin."""
    import json

    from segbench.report import latex
    from segbench.report.tables import BUDGET

    md = (swept / SWEEP.report / "comparison.md").read_text()
    statistics = json.loads((swept / SWEEP.report / "statistics.json").read_text())
    rows = [{"rank": 1, "architecture": "nnU-Net ResEnc M 2d, 10 × 100 it. (0.4 % of default) (baseline)",
             "loss": "default", "Dice": 0.8, "95% CI": (0.7, 0.85), "Δ Dice vs best (median)": None,
             "verdict": "best mean", BUDGET: "10 × 100 × 12; 1,234 GPU-s", "status": "ok"},
            {"rank": 2, "architecture": "smp_unet", "loss": "dice_focal", "Dice": 0.7, "95% CI": (0.6, 0.8),
             "Δ Dice vs best (median)": -0.1, "verdict": "significantly lower than the best",
             BUDGET: "12 × 19 × 8; 72 CPU-s", "status": "ok"}]
    metrics = pd.DataFrame({"HD95 (px)": [10.0, 12.0], "NSD": [0.6, 0.5]})
    (tmp_path / "t.tex").write_text(latex.table(pd.DataFrame(rows), metrics, "px", statistics, "synthetic"))
    done = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Overfull" not in done.stdout, done.stdout[-3000:]
    text = " ".join(pages(tmp_path / "t.pdf")[0].split())
    assert all(word in text for word in ("ResEnc", "(0.4 % of", "(baseline)", "72 CPU-s", "1,234", "GPU-s")), text
    assert "budget: epochs × it. × batch; device-s" in md  # the sweep's own table has the column too


@pytest.mark.skipif(not SOFFICE or not POPPLER, reason="LibreOffice (Debian's libreoffice-calc) or poppler-utils "
                                                       "is not installed")
def test_libreoffice_prints_every_sheet_one_page_wide(eighteen, tmp_path):
    from openpyxl import load_workbook

    done = subprocess.run([SOFFICE, "--headless", f"-env:UserInstallation=file://{tmp_path}/profile", "--convert-to",
                           "pdf", "--outdir", str(tmp_path), str(eighteen / "comparison.xlsx")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    book = load_workbook(eighteen / "comparison.xlsx")
    firsts = {str(sheet.cell(1 if sheet.freeze_panes == "A2" else 3, 1).value) for sheet in book.worksheets}
    # a sheet cut across the width prints its right-hand columns on pages whose rows start elsewhere
    for number, text in enumerate(pages(tmp_path / "comparison.pdf"), start=1):
        starts = {line.split()[0] for line in text.splitlines() if line.strip()}
        assert starts & firsts, f"page {number}: no row starts with a sheet's first column {sorted(firsts)}"
