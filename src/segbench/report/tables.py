"""The report's tables, pairs in rank order: numbers here; ``display`` turns them into the text people read
(integers as integers, p-values as "< 0.0001", one mark for "none", units in the headers)."""

from __future__ import annotations

import math

import pandas as pd

from segbench.report.collect import Results, pair_summary
from segbench.tuning import describe

MISSING = "–"
P_FLOOR = 1e-4
# metric -> (column title, definition, higher is better); {units}: px or mm
METRIC_COLUMNS = {
    "dice": ("Dice", "2TP / (2TP + FP + FN) per image, = F1; mean over test images with a lesion", True),
    "iou": ("IoU", "TP / (TP + FP + FN) per image (the thesis's tumour IoU)", True),
    "precision": ("Precision", "TP / (TP + FP) per image", True),
    "recall": ("Recall", "TP / (TP + FN) per image (sensitivity)", True),
    "specificity": ("Specificity", "TN / (TN + FP) per image", True),
    "accuracy": ("Pixel accuracy", "share of pixels whose class is right", True),
    "mean_iou": ("Mean IoU", "IoU averaged over every class, background included (the thesis's mean IoU)", True),
    "hd95": ("HD95 ({units})", "max of the two directed 95th-percentile surface distances (Metrics Reloaded's and "
                               "MONAI's definition; medpy pools both directions); a missed lesion or a lesion "
                               "predicted where there is none scores the penalty, {penalty}", False),
    "hd95_matched": ("HD95 matched ({units})", "HD95's mean over the images where both masks are non-empty: no "
                                               "penalty in it", False),
    "assd": ("ASSD ({units})", "mean of both directions' surface distances, pooled; the same penalty as HD95",
             False),
    "nsd": ("NSD", "share of both surfaces within the tolerance of the other (normalised surface Dice)", True),
}
DETECTION = {
    "detection_lesion_sensitivity": ("Lesion sensitivity", "true lesions matched by a predicted one"),
    "detection_image_sensitivity": ("Image sensitivity", "images with a lesion where at least one is matched"),
    "detection_false_positives_per_image": ("FP / image", "predicted lesions that match no true one, per test image"),
    "detection_image_specificity": ("Image specificity", "images without a lesion where nothing is predicted"),
    "detection_false_positives_per_normal_image": ("FP / normal image", "predicted lesions per image without a "
                                                                         "lesion"),
}
INTEGERS = {"rank", "n", "seed", "fold", "epochs", "best epoch", "epoch", "penalised", "images", "true lesions",
            "matched", "false positives", "train", "val", "test", "total", "near-duplicate pairs",
            "hamming distance", "wins", "within best's ci", "not significantly lower", "test images"}


def metric_title(name: str, units: str) -> str:
    return METRIC_COLUMNS[name][0].format(units=units)


def dice_matrix(results: Results, metric: str = "dice") -> pd.DataFrame:
    """Architectures (rows) x losses (columns): the pair's mean test ``metric`` (baselines left out)."""
    pairs = results.replicates[~results.replicates["pair"].isin(results.baselines)]
    means = pairs.groupby(["architecture", "loss"], sort=False)[metric].mean().unstack("loss")
    architectures = list(dict.fromkeys(pairs["architecture"]))
    losses = list(dict.fromkeys(pairs["loss"]))
    return means.loc[architectures, losses]


def _status(statistics: dict, pair: str) -> str:
    row = statistics["per_pair"][pair]
    return "failed: " + "; ".join(row["failed"]) if row["failed"] else row.get("pruned") or "ok"


def _ranks(statistics: dict) -> dict[str, int | None]:
    ranked = [p for p in statistics["ranking"] if not (statistics["per_pair"][p]["failed"]
                                                       or statistics["per_pair"][p].get("pruned"))]
    return {p: ranked.index(p) + 1 if p in ranked else None for p in statistics["ranking"]}


BUDGET = "budget: epochs × it. × batch; device-s"
TUNING = ("Equal tuning (sweep.tune): every pair's candidates by mean val Dice over its seeds and folds (a pruned "
          "one's at its rung); the chosen one (the best on val, test images unread) is the pair's in every other table")


def budget(row: pd.Series) -> str:
    """A pair's training budget (``pair_summary``'s row): epochs x iterations per epoch x batch of one run, and the
    device-seconds of all its runs: "10 × 100 × 9; 527 CPU-s"."""
    steps = " × ".join("?" if pd.isna(row[c]) else f"{row[c]:g}" for c in ("epochs", "iterations_per_epoch",
                                                                            "batch_size"))
    return f"{steps}; {row['train_seconds']:,.0f} {'GPU' if row['on_gpu'] else 'CPU'}-s"


def comparison_table(results: Results, statistics: dict) -> pd.DataFrame:
    """The headline: one row per pair in rank order: mean test Dice with its CI, the paired effect against
    the best with its interval and Holm-adjusted p, the verdict in words, and the training budget. A baseline's
    row is named by its label (its schedule)."""
    versus, per_pair, ranks = statistics["versus_best"]["pairs"], statistics["per_pair"], _ranks(statistics)
    names = dict(zip(results.replicates["pair"], zip(results.replicates["architecture"], results.replicates["loss"])))
    labels, summary = statistics.get("labels", {}), pair_summary(results, [])
    rows = []
    for pair in statistics["ranking"]:
        v, ci = versus[pair], per_pair[pair]
        architecture = labels.get(pair) or names[pair][0]
        rows.append({"rank": ranks[pair], "architecture": architecture + (" (baseline)" if pair in
                                                                          results.baselines else ""),
                     "loss": names[pair][1], "Dice": ci["mean"], "95% CI": (ci["ci_low"], ci["ci_high"]),
                     "Δ Dice vs best (median)": v["median_difference"],
                     "Δ 95% CI": (v["difference_low"], v["difference_high"]) if v["difference_low"] is not None
                     else None,
                     "p (Holm)": v["p_holm"], "verdict": v["verdict"],
                     **{column: value for b, tests in statistics.get("versus_baselines", {}).items()
                        for column, value in ((f"Δ vs {b} (median)", tests["pairs"][pair]["median_difference"]),
                                              (f"vs {b}", tests["pairs"][pair]["verdict"]))},
                     **({"tuned": describe(statistics["tuning"][pair]["settings"]) if pair in statistics["tuning"]
                         else None} if statistics.get("tuning") else {}),
                     BUDGET: budget(summary.loc[pair]), "status": _status(statistics, pair)})
    return pd.DataFrame(rows)


def metrics_table(results: Results, statistics: dict) -> pd.DataFrame:
    """Every segmentation metric of every pair (means over seeds of the test means), in rank order."""
    units = results.replicates["units"].iloc[0]
    names = [*METRIC_COLUMNS, *[c for c in results.replicates.columns if c.startswith("dice ")]]
    summary = pair_summary(results, [*names, "boundary_penalised"])
    ranks = _ranks(statistics)
    rows = []
    for pair in statistics["ranking"]:
        row = summary.loc[pair]
        rows.append({"rank": ranks[pair], "pair": pair,
                     **{metric_title(m, units) if m in METRIC_COLUMNS else m.replace("dice ", "Dice "): row[m]
                        for m in names if m in row},
                     "penalised": row.get("boundary_penalised")})
    return pd.DataFrame(rows)


def detection_table(results: Results, statistics: dict) -> pd.DataFrame:
    """Lesion-level and image-level detection of every pair, in rank order."""
    summary = pair_summary(results, list(DETECTION))
    ranks = _ranks(statistics)
    return pd.DataFrame([{"rank": ranks[p], "pair": p, **{title: summary.loc[p].get(c) for c, (title, _)
                                                          in DETECTION.items()}} for p in statistics["ranking"]])


def efficiency_table(results: Results, statistics: dict) -> pd.DataFrame:
    """What each pair costs: parameters, GFLOPs, latency and memory, epochs, training time."""
    summary = pair_summary(results, [])
    ranks = _ranks(statistics)
    rows = []
    for pair in statistics["ranking"]:
        row = summary.loc[pair]
        rows.append({"rank": ranks[pair], "pair": pair, "parameters (M)": row["parameters"] / 1e6,
                     "GFLOPs": row["gflops"], "CPU latency (ms)": row.get("latency_ms_cpu"),
                     "CPU latency IQR (ms)": row.get("latency_ms_cpu_iqr"),
                     "CPU memory (MB)": row.get("memory_mb_cpu"), "GPU latency (ms)": row.get("latency_ms_gpu"),
                     "GPU latency IQR (ms)": row.get("latency_ms_gpu_iqr"), "GPU weights (MB)":
                     row.get("weights_mb_gpu"), "GPU activations (MB)": row.get("activations_mb_gpu"),
                     "epochs": row["epochs"],
                     "training (s)": row["train_seconds"]})
    table = pd.DataFrame(rows)
    return table.dropna(axis=1, how="all")


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
    """The statistics as titled tables, pairs in rank order."""
    versus, friedman = statistics["versus_best"], statistics["friedman"]
    order = statistics["ranking"]
    rows = []
    for pair in order:
        ci, test = statistics["per_pair"][pair], versus["pairs"][pair]
        interval = (test["difference_low"], test["difference_high"]) if test["difference_low"] is not None else None
        rows.append({"pair": pair, "Dice": ci["mean"], "95% CI": (ci["ci_low"], ci["ci_high"]),
                     "CI method": ci["ci_method"], "Δ median": test["median_difference"], "Δ 95% CI": interval,
                     "p": test["p"], "p (Holm)": test["p_holm"],
                     **({"p non-inferior (Holm)": test["p_noninferior_holm"]} if versus["margin"] else {}),
                     "verdict": test["verdict"], "note": test.get("note") or None})
    out = {f"Every pair against the best ({versus['best']}): {versus['test']}; {versus['correction']}; Δ: "
           f"{versus['effect']}": pd.DataFrame(rows)}
    for name, baseline in statistics.get("versus_baselines", {}).items():  # "better than nnU-Net?"
        out[f"Every pair against the baseline {name}: the same tests"] = pd.DataFrame([
            {"pair": pair, "Δ median": test["median_difference"],
             "Δ 95% CI": (test["difference_low"], test["difference_high"]) if test["difference_low"] is not None
             else None, "p (Holm)": test["p_holm"], "verdict": test["verdict"],
             "note": test.get("note") or None} for pair, test in baseline["pairs"].items()])
    ranked = statistics.get("ranked", order)
    stability = pd.DataFrame(statistics["rank_stability"]).T.loc[ranked]
    ranks = pd.Series(friedman["mean_ranks"]).loc[ranked]
    text = (f"Friedman chi² = {friedman['statistic']:.3f}, {p_text(friedman['p_value'])}; Nemenyi critical "
            f"difference {friedman['critical_difference']:.3f} at alpha {friedman['alpha']}"
            if friedman.get("statistic") is not None else friedman.get("note", ""))
    if friedman.get("significant") is False:
        text += ": not significant, the post-hoc is not read"
    out[f"Ranks: the mean rank over images ({text}), and the rank by mean Dice over bootstrap resamples of the "
        "test images"] = pd.DataFrame({"pair": ranked, "mean rank over images": ranks.to_numpy(),
                                       "bootstrap rank (median)": stability["median_rank"].to_numpy(),
                                       "bootstrap rank 95%": list(zip(stability["rank_low"], stability["rank_high"]))})
    kendall = statistics["loss_rankings"]["kendall_w"]
    w = (f"Kendall's W = {kendall['W']:.3f}, {p_text(kendall['p_value'])} ({kendall['p_method']})"
         if kendall.get("W") is not None else kendall.get("note", ""))
    if kendall.get("left_out"):
        w += f"; left out, as they hold a pair that did not learn: {', '.join(kendall['left_out'])}"
    loss_ranks = pd.DataFrame(statistics["loss_rankings"]["ranks"]).T
    out[f"Loss rank per architecture ({w})"] = loss_ranks.rename_axis("architecture").reset_index()
    failed = statistics.get("failed", {})
    if failed:
        out["Left out of every test and ranking: did not learn the task"] = pd.DataFrame(
            [{"pair": p, "why": "; ".join(reasons)} for p, reasons in failed.items()])
    tuning = statistics.get("tuning", {})
    if tuning:
        halved = any(c.get("pruned") for d in tuning.values() for c in d["candidates"])
        out[TUNING] = pd.DataFrame([_tuning_row(p, d, halved) for p, d in tuning.items()])
    pruned = statistics.get("pruned", {})
    if pruned:
        out["Left out of every test and ranking: pruned early (sweep.budget)"] = pd.DataFrame(
            [{"pair": p, "why": why} for p, why in pruned.items()])
    return out


def _tuning_row(pair: str, decision: dict, halved: bool) -> dict:
    """A pair's row of the tuning table: its choice, each candidate's val Dice and, when sweep.budget raced
    the candidates (``halved``), those it pruned."""
    row = {"pair": pair, "chosen": describe(decision["settings"]),
           **{describe(c["settings"]): c["val_dice"] for c in decision["candidates"]}}
    if halved:
        row["pruned (sweep.budget)"] = "; ".join(f"{describe(c['settings'])}: {pruned_at(c['pruned'])}"
                                                 for c in decision["candidates"] if c.get("pruned")) or "none"
    return row


def leakage_tables(leakage: dict, statistics: dict) -> dict[str, pd.DataFrame]:
    """The leakage audit (``split`` stage) as tables: near-duplicate pairs per pair of subsets, the flagged pairs,
    and every pair's test Dice with and without the test images that leaked."""
    crossing = leakage["pairs_across_subsets"]
    counts = pd.DataFrame({"subsets": list(crossing), "near-duplicate pairs": list(crossing.values())})
    flagged = pd.DataFrame(leakage["pairs"], columns=["a", "subset_a", "b", "subset_b", "distance"]).rename(
        columns={"subset_a": "subset a", "subset_b": "subset b", "distance": "Hamming distance"})
    effect = statistics["leakage"]
    dice = pd.DataFrame([{"pair": pair, "Dice": row["dice"], "Dice without leaked": row["dice_without_leaked"],
                          "Δ": (row["dice"] - row["dice_without_leaked"])
                          if row["dice_without_leaked"] is not None else None,
                          "n without leaked": row["n_without_leaked"]}
                         for pair, row in effect["per_pair"].items()])
    return {"Near-duplicate pairs per pair of subsets": counts,
            "Flagged pairs, closest first": flagged.sort_values("Hamming distance", kind="stable"),
            f"Mean test Dice with and without the {effect['leaked_test_images']} leaked test images "
            "(Δ: with minus without; above 0, the leak inflates the score)": dice}


EQUAL_SIZE = "Held-out group: the gap at equal training size"  # its table's title, as benchmarks/domains.py finds it


def generalisation_tables(statistics: dict) -> dict[str, pd.DataFrame]:
    """Per other test set (a held-out group, an external dataset): every pair's Dice there and on the reference
    set, and the gap with its 95% bootstrap CI, in the report's ranking."""
    tables = {}
    if equal := statistics.get("equal_size"):
        sizes = {side: f"{n['train']} + {n['val']}" for side, n in equal["sizes"].items()}
        rows = [{"pair": pair, "Dice, trained in the held-out group": g["in"],
                 "Dice, trained on the other groups, as many images": g["out"], "gap at equal size": g["gap"],
                 "gap at equal size 95% CI": None if g["gap_low"] is None else (g["gap_low"], g["gap_high"]),
                 "Dice, the sweep's models": g["sweep"], "raw gap": g["raw_gap"],
                 "raw gap 95% CI": None if g["raw_gap_low"] is None else (g["raw_gap_low"], g["raw_gap_high"]),
                 "images": g["n"]}
                for pair in statistics["ranking"] if (g := equal["pairs"].get(pair))]
        left_out = len(equal["left_out"])
        tables[f"{EQUAL_SIZE} ({sizes['in']} train + val images each) beside the raw gap (the sweep's models: "
               f"{sizes['sweep']})"
               + (f" ({count(left_out, 'image')} with a near-duplicate or group mate in the in-domain training left "
                  "out)" if left_out else "")
               + "".join(f"; {pair} left out, a reference did not learn ({', '.join(why)})"
                         for pair, why in equal["failed"].items())
               ] = pd.DataFrame(rows)
    for found in statistics["generalisation"].values():
        rows = [{"pair": pair, f"Dice, {found['reference']}": g["reference"], f"Dice, {found['other']}": g["other"],
                 "gap": g["gap"], "gap 95% CI": None if g["gap_low"] is None else
                 (g["gap_low"], g["gap_high"]), "images": f"{g['n_reference']} / {g['n_other']}",
                 "paired": "yes" if g["paired"] else "no"}
                for pair in statistics["ranking"] if (g := found["pairs"].get(pair))]
        left_out = len(found.get("left_out", []))
        tables[f"{found['reference'].capitalize()} against {found['other']}" + (
            f" ({count(left_out, 'in-group image')} with a near-duplicate or group mate in train or val left out)"
            if left_out else "")] = pd.DataFrame(rows)
    return tables


def count(n: int, noun: str) -> str:
    """"1 test image", "2 test images": ``noun`` singular, pluralised with an s."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def pruned_at(pruned: dict) -> str:
    """train.json's ``pruned`` in words: "pruned at rung 0 (1 epoch, val Dice 0.312)"; a race's adds its test:
    "(..., worse than the leader: Holm p = 0.003)"."""
    race = "" if "p_holm" not in pruned else (", no epoch validated" if pruned["p_holm"] is None else
                                              f", worse than the leader: Holm {p_text(pruned['p_holm'])}")
    return (f"pruned at rung {pruned['rung']} ({count(pruned['epochs'], 'epoch')}, val Dice "
            f"{pruned['val_dice']:.3f}{race})")


def p_text(value) -> str:
    """"p = 0.0123", or "p < 0.0001" below the floor."""
    shown = format_p(value)
    return f"p {shown}" if shown.startswith("<") else f"p = {shown}"


def format_p(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"< {P_FLOOR:g}" if value < P_FLOOR else f"{value:.4f}"


def _cell(column: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, tuple):
        if "rank" in column:
            return f"{value[0]:g}–{value[1]:g}"
        low, high = (_unsigned_zero(v) for v in value)
        return f"{low:.3f} to {high:.3f}" if low < 0 or high < 0 else f"{low:.3f}–{high:.3f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if column.lower() in INTEGERS or column.startswith("n "):
        return f"{int(round(value)):,}"
    if "rank" in column:
        return f"{round(value, 2):g}"
    if column.startswith("p ") or column.startswith("p_"):
        return format_p(value)
    if column.startswith("Δ"):
        return f"{value:+.3f}" if round(value, 3) else "0.000"
    return f"{_unsigned_zero(value):,.3f}" if abs(value) < 1000 else f"{value:,.0f}"


def _unsigned_zero(value: float) -> float:
    """0.0 for a value that rounds to zero at 3 decimals, so it never shows as "-0.000"."""
    return value if round(value, 3) else 0.0


def display(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as strings people read: integers as integers, p-values as "< 0.0001" below that, intervals
    as "low–high", words for booleans, one mark (–) for a missing value."""
    return pd.DataFrame({c: [_cell(str(c), v) for v in frame[c]] for c in frame.columns}, index=frame.index)


def markdown(frame: pd.DataFrame) -> str:
    """A GitHub table of ``display(frame)``, numbers right-aligned (and not re-parsed: "-0.000" stays)."""
    if not len(frame):
        return "(none)"
    align = ["left" if frame[c].map(lambda v: isinstance(v, str)).all() else "right" for c in frame.columns]
    return display(frame).to_markdown(index=False, disable_numparse=True, colalign=align)
