"""The cross-dataset summary of a sweep run on several datasets (``results/_all/<sweep>/<first dataset>/``): does
the winner generalise?

Each dataset's report leaves its statistics in ``<that folder>/datasets/<dataset>.json``; from those
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
        path = paths.cross_input(sweep, dataset)
        if not path.exists():
            raise SegbenchError(f"{path}: missing; run `segbench report --dataset {dataset}` first")
        out[dataset] = read_json(path)
    return out


def failures(statistics: dict[str, dict]) -> pd.DataFrame:
    """One row per (pair, dataset) where the pair did not learn the task or was pruned (sweep.budget), with why."""
    rows = [{"pair": p, "dataset": d, "why": "; ".join(r["failed"]) or r["pruned"]}
            for d, s in statistics.items() for p, r in s["per_pair"].items() if r["failed"] or r.get("pruned")]
    return pd.DataFrame(rows, columns=["pair", "dataset", "why"])


def dice_by_dataset(statistics: dict[str, dict], left_out: set[str] = frozenset()) -> pd.DataFrame:
    """(datasets x pairs) mean test Dice, the pairs every dataset has and none of ``left_out``, in the first
    dataset's order."""
    common = [p for p in next(iter(statistics.values()))["ranking"]
              if all(p in s["per_pair"] for s in statistics.values()) and p not in left_out]
    return pd.DataFrame({p: {d: s["per_pair"][p]["mean"] for d, s in statistics.items()} for p in common})


def table(statistics: dict[str, dict], scores: pd.DataFrame) -> pd.DataFrame:
    """One row per pair, by mean rank over the datasets: its Dice per dataset (with CI), mean rank, wins (ties for
    the best count for each), and in how many datasets it is within the best's CI and not significantly lower
    than the best."""
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
        row.update({"mean rank": ranks[pair], "wins": sum(pair in _best(s) for s in statistics.values()),
                    WITHIN: within, "not significantly lower": not_lower})
        rows.append(row)
    return pd.DataFrame(rows)


def _best(s: dict) -> list[str]:
    return s.get("tied_best") or [s["best"]]


def winners(statistics: dict[str, dict]) -> pd.DataFrame:
    rows = []
    for dataset, s in statistics.items():
        best = s["per_pair"][s["best"]]
        rows.append({"dataset": dataset, "best pair": " = ".join(_best(s)), "Dice": best["mean"],
                     "95% CI": f"{best['ci_low']:.3f}–{best['ci_high']:.3f}", "test images": s["n_images"]})
    return pd.DataFrame(rows)


def verdict(friedman: dict, ranking: pd.DataFrame, n: int, failed: pd.DataFrame) -> str:
    out = ""
    if not len(ranking):
        out = f"Over {n} datasets, no pair learned the task on every one of them: nothing to rank."
    else:
        top = ranking[ranking["mean rank"] == ranking["mean rank"].iloc[0]]
        rank = f"{top['mean rank'].iloc[0]:.2f}"

        def record(row) -> str:
            return (f"the best pair on {row['wins']} of the {n} datasets, within the best's CI on {row[WITHIN]} of "
                    f"{n}")

        if len(top) == 1:
            out = f"Over {n} datasets, {top.iloc[0]['pair']} has the best mean rank ({rank}): {record(top.iloc[0])}."
        else:
            out = (f"Over {n} datasets, {' and '.join(top['pair'])} share the best mean rank ({rank}): "
                   + "; ".join(f"{row['pair']} {record(row)}" for _, row in top.iterrows()) + ".")
        if friedman["p_value"] is None:
            out += f" Friedman's test over datasets: not computed ({friedman.get('note', '')})."
        else:
            word = "rejects" if friedman["significant"] else "does not reject"
            out += (f" Friedman's test over datasets {word} equal ranks (p = {friedman['p_value']:.3g}, "
                    f"{friedman['p_method']}, alpha {friedman['alpha']}).")
    if len(failed) and set(failed["pair"]) & set(ranking["pair"]):
        out = "No pair learned the task on every dataset, so all are ranked: the ranks compare failed runs. " + out
    elif len(failed):
        out += (f" Left out of the ranking, as they did not learn the task (or were pruned) on some dataset: "
                f"{', '.join(dict.fromkeys(failed['pair']))}.")
    return out


def caveats(statistics: dict[str, dict], friedman: dict) -> list[str]:
    """What to keep in mind: few datasets, datasets from one generator, an omnibus test without a post-hoc."""
    n, out = len(statistics), []
    if n < FEW_DATASETS:
        out.append(f"{n} dataset(s): Friedman's test over datasets has little power below {FEW_DATASETS} (Demsar, "
                   "2006); read the per-dataset reports' paired tests.")
    kinds = {s.get("dataset_kind") for s in statistics.values()}
    if n > 1 and len(kinds) == 1 and None not in kinds:
        out.append(f"All {n} datasets come from one source ({kinds.pop()}): they are related, not independent "
                   "samples of datasets, so the test over them says little about data beyond it.")
    if friedman.get("significant") and "note" in friedman:
        out.append(friedman["note"])
    return out


def build_summary(sweep: dict, alpha: float = 0.05) -> Path:
    """Write ``results/_all/<sweep>/<first dataset>/``: cross_dataset.json, .md, .xlsx, .html and the CD diagram.
    Returns the page's path."""
    out = paths.cross_dataset(sweep)
    statistics = load(sweep)
    failed = failures(statistics)
    everyone = set(dice_by_dataset(statistics).columns)
    scores = dice_by_dataset(statistics, set(failed["pair"]) if everyone - set(failed["pair"]) else set())
    friedman = friedman_nemenyi(scores, alpha, blocks="datasets")
    ranking, best = table(statistics, scores), winners(statistics)
    n = len(statistics)
    notes = caveats(statistics, friedman)
    summary = verdict(friedman, ranking, n, failed)
    palette = figures.Palette(list(ranking["pair"]), (), [paths.run_name(a, l) for a, l, _ in paths.members(sweep)])
    write_json(out / paths.CROSS_JSON, {"datasets": list(statistics), "verdict": summary, "caveats": notes,
                                         "friedman": friedman, "table": ranking.to_dict("records"),
                                         "failed": failed.to_dict("records"), "winners": best.to_dict("records"),
                                         "colours": palette.colours})
    with atomic_path(out / paths.CROSS_MARKDOWN) as tmp:
        tmp.write_text("\n".join([f"# segbench: sweep '{sweep['name']}' across datasets", "", summary, "",
                                  *[f"> {c}" for c in notes], "", markdown(ranking), "", "## Winners", "",
                                  markdown(best), "", "## Left out: did not learn the task", "", markdown(failed),
                                  ""]))
    matrix = scores.T.rename_axis("pair")
    workbook.write(out / paths.CROSS_WORKBOOK, {"across datasets": (ranking, summary),
                                                "winners": (best, "The best pair of each dataset."),
                                                "left out": (failed, "Pairs that did not learn the task, per "
                                                                     "dataset: out of the ranking.")},
                   matrix, {"verdict": summary, **{f"caveat {i + 1}": c for i, c in enumerate(notes)}},
                   "Mean test Dice: pairs (rows) x datasets (columns).")
    nemenyi = pd.DataFrame(friedman["nemenyi_p"]) if friedman.get("nemenyi_p") else None
    figure = figures.plot_critical_difference(pd.Series(friedman["mean_ranks"]), nemenyi, palette, alpha,
                                              friedman["p_value"], over="datasets")
    for suffix in paths.FIGURE_FORMATS:
        with atomic_path(out / "figures" / f"{paths.CROSS_FIGURE}.{suffix}") as tmp:
            figures.save(figure, tmp, suffix)
    page = html.page(f"segbench: sweep '{sweep['name']}' across datasets", summary, notes, [
        ("table", "Pairs across datasets", html.table(ranking)
         + html.figure(paths.CROSS_FIGURE, out / "figures" / f"{paths.CROSS_FIGURE}.png")),
        ("winners", "Per-dataset winners", html.table(best)),
        *([("failed", "Left out: did not learn the task", html.table(failed))] if len(failed) else []),
    ])
    with atomic_path(out / paths.CROSS_PAGE) as tmp:
        tmp.write_text(page)
    log.info("cross-dataset summary: %s", out / paths.CROSS_PAGE)
    return out / paths.CROSS_PAGE
