"""comparison.tex: the comparison as a LaTeX table for a paper (booktabs rules, no vertical ones; mean Dice with
its 95% CI in one cell; the best in bold; marks explained in the caption). A complete document that
compiles with pdflatex as it is; the table between its ``% --- table`` lines goes into a paper as it is
(it needs ``\\usepackage{array}`` and ``{booktabs}``, and ``longtable`` for more than ``ONE_PAGE`` pairs)."""

from __future__ import annotations

import math

import pandas as pd

from segbench.report.tables import BUDGET, count

ONE_PAGE = 40  # rows a table float holds; more go in a longtable that breaks across pages
MARKS = {"significantly lower": r"$^\dagger$", "higher than the mean-best": r"$^\ddagger$"}


def escape(text: str) -> str:
    """``text`` safe in LaTeX (underscores, ampersands, percent, ...)."""
    for plain, latex in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                         ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"),
                         ("^", r"\textasciicircum{}"), ("×", r"$\times$")):
        text = text.replace(plain, latex)
    return text


def _number(value, digits: int = 3) -> str:
    return "--" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def table(comparison: pd.DataFrame, metrics: pd.DataFrame, units: str, statistics: dict, dataset: str) -> str:
    """The LaTeX source of a standalone document holding the comparison table."""
    versus = statistics["versus_best"]
    boundary = next((c for c in metrics.columns if c.startswith("HD95 (")), None)
    nsd = "NSD" if "NSD" in metrics.columns else None
    rows = []
    for (_, row), (_, extra) in zip(comparison.iterrows(), metrics.iterrows()):
        mark = next((m for words, m in MARKS.items() if row["verdict"].startswith(words)), "")
        if row["status"] != "ok":
            mark = r"$^\ast$"
        low, high = row["95% CI"]
        dice = f"{row['Dice']:.3f} [{low:.3f}, {high:.3f}]"
        if row["verdict"] in ("best mean", "tied for the best mean"):
            dice = rf"\textbf{{{dice}}}"
        cells = ["--" if row["rank"] is None or (isinstance(row["rank"], float) and math.isnan(row["rank"]))
                 else str(int(row["rank"])), escape(row["architecture"]), escape(row["loss"]), dice + mark,
                 "--" if row["verdict"] == "best mean" else _number(row["Δ Dice vs best (median)"])]
        cells += [_number(extra[boundary], 1)] if boundary else []
        cells += [_number(extra[nsd])] if nsd else []
        cells += [escape(row[BUDGET])]
        rows.append(" & ".join(cells) + r" \\")
    head = ["Rank", "Architecture", "Loss", "Dice [95\\% CI]", r"$\Delta$ vs best"]
    head += [f"HD95 ({units})"] if boundary else []
    head += ["NSD"] if nsd else []
    head += ["Budget"]
    wrapped = r">{\raggedright\arraybackslash}p"  # a long name (a baseline's schedule) wraps in its cell
    columns = f"r{wrapped}{{2.5cm}}l" + "r" * (len(head) - 4) + f"{wrapped}{{2.1cm}}"
    caption = (f"Test results on {escape(dataset)}: mean Dice over the {count(statistics['n_images'], 'test image')}"
               f" with a lesion, with its 95\\% bootstrap confidence interval; best mean in bold. "
               r"$\Delta$: Hodges--Lehmann estimate of the median per-image difference from the best. "
               rf"$^\dagger$ significantly lower than the best, $^\ddagger$ higher than the best on the paired "
               rf"test although its mean is lower (two-sided Wilcoxon signed-rank tests of every pair against "
               rf"every other, Holm-corrected over the {versus['comparisons']} comparisons, "
               rf"$\alpha = {versus['alpha']}$). ")
    caption += r"$^\ast$ did not learn the task, or pruned early by sweep.budget (see the report); not ranked. " if any(
        comparison["status"] != "ok") else ""
    caption += (f"HD95 in {units}; a missed lesion counts as the image diagonal. " if boundary else "")
    caption += (r"Budget: epochs $\times$ iterations per epoch $\times$ batch of one training run, and the "
                r"device-seconds of all its runs.")
    long = len(rows) > ONE_PAGE
    body = [r"\toprule", " & ".join(head) + r" \\", r"\midrule", *rows, r"\bottomrule"]
    if long:
        tabular = [rf"\begin{{longtable}}{{{columns}}}", rf"\caption{{{caption}}}\\", *body[:3], r"\endhead",
                   *body[3:], r"\end{longtable}"]
    else:
        tabular = [r"\begin{table}[ht]", r"\centering", r"\small", rf"\caption{{{caption}}}",
                   rf"\begin{{tabular}}{{{columns}}}", *body, r"\end{tabular}", r"\end{table}"]
    return "\n".join([r"\documentclass{article}", r"\usepackage[margin=2cm]{geometry}", r"\usepackage{array}",
                      r"\usepackage{booktabs}",
                      r"\usepackage{longtable}", r"\pagestyle{empty}", r"\begin{document}", "% --- table",
                      *tabular, "% --- table", r"\end{document}", ""])
