"""The report's tables: the comparison of every pair, the architecture x loss matrix, strata, statistics."""

from __future__ import annotations

import pandas as pd

from segbench.report.collect import Results, pair_summary

# metric -> (column title, definition, higher is better)
METRICS = {
    "dice": ("Dice", "2TP / (2TP + FP + FN) per image, = F1; mean over test images with a lesion", True),
    "iou": ("IoU", "TP / (TP + FP + FN) per image (the thesis's tumour IoU)", True),
    "precision": ("Precision", "TP / (TP + FP) per image", True),
    "recall": ("Recall", "TP / (TP + FN) per image (sensitivity)", True),
    "specificity": ("Specificity", "TN / (TN + FP) per image", True),
    "accuracy": ("Pixel accuracy", "share of pixels whose class is right", True),
    "mean_iou": ("Mean IoU", "IoU averaged over every class, background included (the thesis's mean IoU)", True),
    "hd95": ("HD95", "max of the two directed 95th-percentile surface distances (Metrics Reloaded, MONAI)", False),
    "assd": ("ASSD", "mean of both directions' surface distances, pooled", False),
    "nsd": ("NSD", "share of both surfaces within the tolerance of the other (normalised surface Dice)", True),
}


def comparison_table(results: Results, statistics: dict) -> pd.DataFrame:
    """One row per pair, best mean test Dice first: every metric, the Dice CI and test against the
    best, and the efficiency figures."""
    per_class = [c for c in results.replicates.columns if c.startswith("dice ")]  # "dice <class>", K > 2 classes
    summary = pair_summary(results, [*METRICS, *per_class])
    ci, versus = statistics["per_pair"], statistics["versus_best"]["pairs"]
    rows = []
    for pair, row in summary.iterrows():
        rows.append({
            "architecture": row["architecture"], "loss": row["loss"], "Dice": row["dice"],
            "Dice 95% CI": f"{ci[pair]['ci_low']:.3f}-{ci[pair]['ci_high']:.3f}",
            "Dice SD (seeds)": row["dice_sd_seeds"],
            "not worse than best": "yes" if versus[pair]["not_worse"] else "no",
            "p vs best (Holm)": versus[pair]["p_holm"],
            **{f"Dice {c.removeprefix('dice ')}": row[c] for c in per_class},
            **{METRICS[m][0]: row[m] for m in METRICS if m != "dice"},
            "parameters (M)": row["parameters"] / 1e6, "GFLOPs": row["gflops"],
            "latency CPU (ms)": row.get("latency_ms_cpu"), "memory CPU (MB)": row.get("memory_mb_cpu"),
            "epochs": row["epochs"], "train s": row["train_seconds"],
        })
    table = pd.DataFrame(rows).sort_values("Dice", ascending=False, kind="stable").reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    if table["Dice SD (seeds)"].isna().all():
        table = table.drop(columns="Dice SD (seeds)")
    return table


def dice_matrix(results: Results, metric: str = "dice") -> pd.DataFrame:
    """Architectures (rows) x losses (columns): the pair's mean test ``metric``."""
    means = results.replicates.groupby(["architecture", "loss"], sort=False)[metric].mean().unstack("loss")
    architectures = list(dict.fromkeys(results.replicates["architecture"]))
    losses = list(dict.fromkeys(results.replicates["loss"]))
    return means.loc[architectures, losses]


def strata_table(results: Results) -> pd.DataFrame:
    """One row per (pair, stratum column, value): n and mean Dice, IoU, HD95 and NSD over seeds."""
    rows = []
    for (pair, seed), metrics in results.metrics.items():
        for column, values in metrics.get("strata", {}).items():
            for value, scores in values.items():
                rows.append({"pair": pair, "seed": seed, "stratum": column, "value": value, **scores})
    if not rows:
        return pd.DataFrame(columns=["pair", "stratum", "value", "n", "dice"])
    table = pd.DataFrame(rows)
    return table.groupby(["pair", "stratum", "value"], sort=False).mean(numeric_only=True).drop(
        columns="seed").reset_index()


def statistics_tables(statistics: dict) -> dict[str, pd.DataFrame]:
    """The statistics as titled tables."""
    versus = statistics["versus_best"]
    per_pair = pd.DataFrame(statistics["per_pair"]).T
    tests = pd.DataFrame(versus["pairs"]).T
    stability = pd.DataFrame(statistics["rank_stability"]).T
    friedman = statistics["friedman"]
    ranks = pd.DataFrame(statistics["loss_rankings"]["ranks"]).T
    combined = per_pair.join(tests).join(stability)
    combined.insert(0, "pair", combined.index)
    out = {f"pairs: bootstrap CI, {versus['test']} vs {versus['best']} ({versus['correction']}), "
           "rank over bootstrap resamples": combined.reset_index(drop=True)}
    mean_ranks = pd.Series(friedman["mean_ranks"], name="mean rank").rename_axis("pair").reset_index()
    text = (f"Friedman chi2 = {friedman['statistic']:.3f}, p = {friedman['p_value']:.4g}; Nemenyi critical "
            f"difference {friedman['critical_difference']:.3f} at alpha {friedman['alpha']}"
            if friedman.get("statistic") is not None else friedman.get("note", ""))
    out[f"mean ranks over images ({text})"] = mean_ranks
    kendall = statistics["loss_rankings"]["kendall_w"]
    w = (f"Kendall's W = {kendall['W']:.3f}, chi2 = {kendall['chi2']:.3f}, p = {kendall['p_value']:.4g}"
         if kendall.get("W") is not None else kendall.get("note", ""))
    out[f"loss rank per architecture ({w})"] = ranks.rename_axis("architecture").reset_index()
    return out


def markdown(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, floatfmt=".4f", missingval="")
