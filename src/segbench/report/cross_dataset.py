"""The cross-dataset summary of a sweep run on several datasets (``results/_all/<sweep>/``): does the winner
generalise?

Each dataset's report leaves its statistics in ``results/_all/<sweep>/datasets/<dataset>.json``; from those
alone this writes the pair x dataset table of mean test Dice (with each dataset's 95% CI), each pair's mean rank
over the datasets, its wins, and how often it is within the best pair's CI or not significantly lower than it;
the per-dataset winners; and Friedman's test over the datasets with its critical-difference diagram, Demsar's
(2006) original setting: the datasets are the blocks, the pairs the treatments.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from segbench import SegbenchError, paths
from segbench.evaluation.statistics import friedman_nemenyi, mean_ranks
from segbench.io import atomic_path, read_json, write_json
from segbench.report import figures, html, workbook
from segbench.report.tables import markdown

log = logging.getLogger(__name__)
WITHIN = "within best's CI"
FEW_DATASETS = 5  # below this Friedman's test over datasets has little power (Demsar, 2006, sec. 3.2.2)


def load(sweep: dict) -> dict[str, dict]:
    """Each dataset's statistics, from the files its report left for this summary."""
    out = {}
    for dataset in sweep["datasets"]:
        path = paths.at(paths.CROSS_INPUT, sweep=sweep["name"], dataset=dataset)
        if not path.exists():
            raise SegbenchError(f"{path}: missing; run `segbench report --dataset {dataset}` first")
        out[dataset] = read_json(path)
    return out


def dice_by_dataset(statistics: dict[str, dict]) -> pd.DataFrame:
    """(datasets x pairs) mean test Dice, the pairs every dataset has, in the first dataset's order."""
    common = [p for p in next(iter(statistics.values()))["ranking"]
              if all(p in s["per_pair"] for s in statistics.values())]
    return pd.DataFrame({p: {d: s["per_pair"][p]["mean"] for d, s in statistics.items()} for p in common})


def table(statistics: dict[str, dict], scores: pd.DataFrame) -> pd.DataFrame:
    """One row per pair, by mean rank over the datasets: its Dice per dataset (with CI), mean rank, wins, and in
    how many datasets it is within the best's CI and not significantly lower than the best."""
    ranks = mean_ranks(scores).sort_values(kind="stable")
    rows = []
    for pair in ranks.index:
        row = {"pair": pair}
        within = not_lower = 0
        for dataset, s in statistics.items():
            mine, best = s["per_pair"][pair], s["per_pair"][s["best"]]
            row[f"{dataset} Dice"] = mine["mean"]
            row[f"{dataset} 95% CI"] = f"{mine['ci_low']:.3f}–{mine['ci_high']:.3f}"
            within += best["ci_low"] <= mine["mean"] <= best["ci_high"]
            verdict = s["versus_best"]["pairs"].get(pair, {}).get("verdict", "")
            not_lower += not verdict.startswith("significantly lower")
        row.update({"mean rank": ranks[pair], "wins": sum(s["best"] == pair for s in statistics.values()),
                    WITHIN: within, "not significantly lower": not_lower})
        rows.append(row)
    return pd.DataFrame(rows)


def winners(statistics: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for dataset, s in statistics.items():
        best = s["per_pair"][s["best"]]
        rows.append({"dataset": dataset, "best pair": s["best"], "Dice": best["mean"],
                     "95% CI": f"{best['ci_low']:.3f}–{best['ci_high']:.3f}", "test images": s["n_images"]})
    return pd.DataFrame(rows)


def verdict(friedman: dict, ranking: pd.DataFrame, n: int) -> str:
    top = ranking[ranking["mean rank"] == ranking["mean rank"].iloc[0]]
    rank = f"{top['mean rank'].iloc[0]:.2f}"
    if len(top) == 1:
        row = top.iloc[0]
        text = (f"Over {n} datasets, {row['pair']} has the best mean rank ({rank}): the best pair on {row['wins']} "
                f"of them, within the best's CI on {row[WITHIN]}.")
    else:
        text = (f"Over {n} datasets, {' and '.join(top['pair'])} share the best mean rank ({rank}): "
                + "; ".join(f"{row['pair']} the best pair on {row['wins']}, within the best's CI on {row[WITHIN]}"
                            for _, row in top.iterrows()) + ".")
    if friedman["p_value"] is None:
        return text + f" Friedman's test over datasets: not computed ({friedman.get('note', '')})."
    word = "rejects" if friedman["significant"] else "does not reject"
    return text + (f" Friedman's test over datasets {word} equal ranks (p = {friedman['p_value']:.3g}, "
                   f"alpha {friedman['alpha']}).")


def build_summary(sweep: dict, alpha: float = 0.05) -> Path:
    """Write ``results/_all/<sweep>/``: cross_dataset.json, .md, .xlsx, .html and the CD diagram. Returns the
    page's path."""
    out = paths.cross_dataset(sweep["name"])
    statistics = load(sweep)
    scores = dice_by_dataset(statistics)
    friedman = friedman_nemenyi(scores, alpha, blocks="datasets")
    ranking, best = table(statistics, scores), winners(statistics)
    n = len(statistics)
    caveats = [f"{n} dataset(s): Friedman's test over datasets has little power below {FEW_DATASETS} (Demsar, "
               "2006); read the per-dataset reports' paired tests."] if n < FEW_DATASETS else []
    summary = verdict(friedman, ranking, n)
    write_json(out / paths.CROSS_JSON, {"datasets": list(statistics), "verdict": summary, "caveats": caveats,
                                         "friedman": friedman, "table": ranking.to_dict("records"),
                                         "winners": best.to_dict("records")})
    with atomic_path(out / paths.CROSS_MARKDOWN) as tmp:
        tmp.write_text("\n".join([f"# segbench: sweep '{sweep['name']}' across datasets", "", summary, "",
                                  *[f"> {c}" for c in caveats], "", markdown(ranking), "", "## Winners", "",
                                  markdown(best), ""]))
    matrix = scores.T.rename_axis("pair")
    workbook.write(out / paths.CROSS_WORKBOOK, {"across datasets": (ranking, summary),
                                                "winners": (best, "The best pair of each dataset.")},
                   matrix, {"verdict": summary, **{f"caveat {i + 1}": c for i, c in enumerate(caveats)}},
                   "Mean test Dice: pairs (rows) x datasets (columns).")
    palette = figures.Palette(list(ranking["pair"]))
    nemenyi = pd.DataFrame(friedman["nemenyi_p"]) if friedman.get("nemenyi_p") else None
    figure = figures.plot_critical_difference(pd.Series(friedman["mean_ranks"]), nemenyi, palette, alpha,
                                              friedman["p_value"], over="datasets")
    for suffix in paths.FIGURE_FORMATS:
        with atomic_path(out / "figures" / f"{paths.CROSS_FIGURE}.{suffix}") as tmp:
            figures.save(figure, tmp, suffix)
    page = html.page(f"segbench: sweep '{sweep['name']}' across datasets", summary, caveats, [
        ("table", "Pairs across datasets", html.table(ranking)
         + html.figure(paths.CROSS_FIGURE, out / "figures" / f"{paths.CROSS_FIGURE}.png")),
        ("winners", "Per-dataset winners", html.table(best)),
    ])
    with atomic_path(out / paths.CROSS_PAGE) as tmp:
        tmp.write_text(page)
    log.info("cross-dataset summary: %s", out / paths.CROSS_PAGE)
    return out / paths.CROSS_PAGE
