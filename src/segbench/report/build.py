"""The `report` stage: statistics, tables, workbook, LaTeX table, figures and one self-contained HTML page."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from segbench import paths
from segbench.budget import rungs
from segbench.io import atomic_path, write_json
from segbench.paths import run_name
from segbench.report import figures, html, latex, workbook
from segbench.report.analysis import analyse, left_out, verdict
from segbench.report.collect import Inputs, Results, load_results
from segbench.report.tables import (
    DETECTION,
    METRIC_COLUMNS,
    comparison_table,
    count,
    detection_table,
    dice_matrix,
    efficiency_table,
    generalisation_tables,
    leakage_tables,
    markdown,
    metric_title,
    metrics_table,
    statistics_tables,
    strata_table,
)
from segbench.tuning import describe

log = logging.getLogger(__name__)


GENERALISATION = ("Zero-shot scores of the same models (each seed's fold ensemble, its post-processing) on other "
                  "test sets: with split.holdout, the in-group test images against the held-out group's (the test "
                  "images); with evaluate.external, the test images of another dataset. The gap is the reference "
                  "set's mean Dice (images with a lesion) minus the other's; its 95% percentile bootstrap CI "
                  "resamples the images, paired where both sets hold the same images. With "
                  "sweep.references, two more models per pair and seed, one trained in the held-out group "
                  "and one on as many of the other groups' images, score the held-out images the first never saw: "
                  "their gap is the domain shift at equal training size, paired, beside the raw gap of the sweep's "
                  "own models, which trained on more images (all three scored without post-processing).")


def loss_definition(spec: list[dict]) -> str:
    """``losses.<name>`` as a formula, e.g. 0.7·dice + 0.3·focal(gamma=2.0)."""
    terms = []
    for item in spec:
        options = {k: v for k, v in item.items() if k not in ("term", "weight", "ramp", "max_weight")}
        weight = item.get("weight", 1.0)
        ramp = f" (+{item['ramp']}/epoch, max {item.get('max_weight')})" if item.get("ramp") else ""
        args = f"({', '.join(f'{k}={v}' for k, v in options.items())})" if options else ""
        terms.append(f"{'' if weight == 1 else f'{weight}·'}{item['term']}{args}{ramp}")
    return " + ".join(terms)


def setup(params: dict, results: Results) -> dict[str, str]:
    """What the numbers are: the training set-up and the evaluation protocol, in words."""
    train, evaluate = params["train"], params["evaluate"]
    first = results.replicates.iloc[0]
    detection = evaluate["detection"]
    match = (f"IoU above {detection['iou_threshold']}" if detection["match"] == "iou" else "any overlap")
    return {
        "dataset": f"{params['dataset']['key']} ({params['dataset']['name']}); "
                   f"{count(int(first['n_images']), 'test image')} ({first['n_lesion_images']} with a lesion)",
        "preprocessing": f"longest side to {params['preprocess']['size']} px, zero-padded to a square",
        "training": f"{train['epochs']} epochs max, batch {train['batch_size']}, {train['optimizer']} "
                    f"lr {train['lr']}, weight decay {train['weight_decay']}, {train['scheduler']} schedule, "
                    f"early stopping after {train['early_stopping_patience']} epochs without a better val Dice"
                    + (f"; {', '.join(k.removeprefix('train.') for k in params['sweep']['tune'])} tuned per pair "
                       "(sweep.tune: the comparison's 'tuned' column)" if params["sweep"]["tune"] else ""),
        "augmentation": ", ".join(f"{k} {v}" for k, v in sorted(train["augment"].items())),
        "replicates": f"seeds {params['sweep']['seeds']}, folds {params['sweep']['folds']} "
                      "(the test images are predicted by the mean of a seed's fold models)",
        "evaluation": f"at the {evaluate['resolution']} resolution; boundary metrics in {first['units']}, NSD "
                      f"tolerance {evaluate['nsd_tolerance_px']} px; post-processing chosen on val images "
                      f"(candidates {['none', *evaluate['postprocessing']]}) by the mean Dice of the images "
                      "with a lesion, never raising false positives on normal val images",
        "boundary penalty": "a missed lesion, or a lesion predicted where there is none, scores HD95 = ASSD = "
                            + ("the image's diagonal" if evaluate["boundary_penalty"] == "diagonal"
                               else f"{evaluate['boundary_penalty']} {first['units']}")
                            + "; 'matched' columns average the images without it, 'penalised' counts them",
        "detection": f"connected components (8-connected, at least {evaluate['min_component_fraction']:g} of the "
                     f"image) matched one-to-one to true lesions by {match} (Hungarian matching)",
        "GFLOPs": f"one forward pass of one {params['preprocess']['size']}x{params['preprocess']['size']} image "
                  "(torch.utils.flop_counter; a multiply-add counts 2)",
        "latency": "per architecture, not per pair: median (and interquartile range) of 30 passes of one image "
                   "(batch 1) after 5 warm-up passes, one model with random weights, 1 CPU thread; a k-fold "
                   "ensemble takes k times as long. Memory: peak resident increase during those passes"
                   + (f". GPU columns: on {', '.join(sorted(set(results.replicates['gpu'].dropna())))}, the "
                      "latency job alone on its device; weights and activations (peak above the weights) apart"
                      if "gpu" in results.replicates and results.replicates["gpu"].notna().any() else ""),
        **({"baseline": _baseline(results)} if results.baselines else {}),
        "compute": compute(params, results),
    }


def compute(params: dict, results: Results) -> str:
    """What the sweep's trainings spent (every row's, baselines included; under sweep.tune, every candidate's) and,
    under sweep.budget, what pruning (halving or a race) saved against training every pair's runs to train.epochs."""
    runs = results.training
    steps = (runs["epochs"] * runs["iterations_per_epoch"]).sum()
    devices = "GPU" if runs["device"].astype(str).str.startswith("cuda").all() else "device"
    text = (f"{runs['epochs'].sum():,} epochs ({steps:,.0f} optimiser steps) in {runs['train_seconds'].sum():,.0f} "
            f"{devices}-s over {count(len(runs), 'training run')}")
    if results.tuning:
        tried = [c for decision in results.tuning.values() for c in decision["candidates"]]
        grid = next(iter(results.tuning.values()))["candidates"]
        text += (f". Equal tuning: every pair tried the same {count(len(grid), 'candidate')} "
                 f"({'; '.join(describe(c['settings']) for c in grid)}); all candidates' runs took "
                 f"{sum(c['epochs'] for c in tried):,} epochs in {sum(c['train_seconds'] for c in tried):,.0f} "
                 f"{devices}-s, the chosen ones' included (the runs above are the chosen ones)")
    budget = params["sweep"]["budget"]
    if not budget:
        return text
    epochs, sweep = params["train"]["epochs"], params["sweep"]
    if results.tuning:  # the race is among each pair's candidates: each row of tuning.json, all its seeds and folds
        racers, who = pd.DataFrame([{**c, "runs": len(sweep["seeds"]) * len(sweep["folds"])}
                                    for decision in results.tuning.values() for c in decision["candidates"]]), \
            "the pairs' candidates"
    else:
        racers, who = runs[~runs["pair"].isin(results.baselines)].assign(runs=1), "the pairs"
    full = racers["runs"].sum() * epochs
    pruned = racers[racers["pruned"].notna()] if "pruned" in racers else racers.iloc[:0]
    pace = pruned["train_seconds"] / pruned["epochs"].clip(lower=1)
    saved = ((pruned["runs"] * epochs - pruned["epochs"]) * pace).sum()
    how = (f"Successive halving (eta {budget['eta']}" if budget["strategy"] == "successive_halving" else
           f"A race (dropped when worse than the leader at Holm p < {budget['alpha']:g}")
    return (text + f". {how}; rungs at {rungs(params)} epochs, then "
            f"{epochs}) trained {who} {racers['epochs'].sum():,} of the {full:,} epochs training each in full "
            f"takes ({racers['epochs'].sum() / full:.0%}); the pruned runs' missing epochs would have taken about "
            f"{saved:,.0f} device-s more at each run's own pace")


def _baseline(results: Results) -> str:
    """Each baseline row in words, as its training wrote them (train.json's ``baseline_settings.setup``), with its
    own post-processing choice per fold where it made one."""
    rows = results.training[results.training["pair"].isin(results.baselines)]
    texts = []
    for pair, runs in rows.groupby("pair", sort=False):
        first = runs["baseline_settings"].iloc[0]
        own = "; ".join(f"fold {f}: {', '.join(n['own_postprocessing']) or 'none'}"
                        for f, n in zip(runs["fold"], runs["baseline_settings"]) if "own_postprocessing" in n)
        texts.append(f"{pair} ({first.get('label', pair)}): {first.get('setup', 'a reference method')}"
                     + (f" Its own post-processing choice, per fold: {own}." if own else ""))
    return " ".join(texts)


def provenance(params: dict, results: Results, info: dict) -> dict[str, str]:
    """Where the numbers come from, read from the report's inputs only (so a rerun writes the same page)."""
    training = results.training.set_index(["pair", "seed", "fold"])
    run_ids = training["mlflow_run_id"].dropna() if "mlflow_run_id" in training else pd.Series(dtype=str)
    commits = sorted(set(training["git_commit"].dropna())) if "git_commit" in training else []
    return {"dataset": params["dataset"]["key"],
            "git commit of the training code": ", ".join(commits) or "not a git checkout",
            "data checksum": info.get("source_checksum") or "unknown",
            "params hash": "sha256:" + hashlib.sha256(json.dumps(
                {k: v for k, v in params.items() if k != "tracking"}, sort_keys=True, default=str).encode())
            .hexdigest()[:16],
            "MLflow runs": ", ".join(f"{replace(paths.RunId.parse(p), seed=s, fold=f)}: {r}"
                                     for (p, s, f), r in run_ids.items()) or "none"}


def _canvas(data, index: int) -> np.ndarray:
    """Image ``index`` of the processed set without its padding: (h, w) or (h, w, 3)."""
    geometry, image = data.geometry(index), data.images[index]
    return np.moveaxis(geometry.crop(np.moveaxis(image, -1, 0)), 0, -1) if data.channels > 1 else geometry.crop(image)


def leaked_pairs(leakage: dict, data) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The flagged near-duplicate pairs, closest first, as (title, image a, image b) for ``plot_leakage``."""
    row_of = {sid: i for i, sid in enumerate(data.meta["sample_id"].astype(str))}
    flagged = sorted(leakage["pairs"], key=lambda r: r["distance"])[:figures.LEAK_PAIRS]
    return [(f"{r['a']} ({r['subset_a']})\n{r['b']} ({r['subset_b']})\n{r['distance']} bits",
             _canvas(data, row_of[r["a"]]), _canvas(data, row_of[r["b"]])) for r in flagged]


def _leaks(report: dict) -> str:
    sides = report.get("leaked_test_images_by_side", {})
    where = f" ({', '.join(f'{side}: {n}' for side, n in sides.items())})" if sides else ""
    text = (f"near-duplicate pairs across subsets: {sum(report['pairs_across_subsets'].values())}; test images "
            f"with a near-duplicate or group mate a model learns from: {len(report['leaked_test_images'])}{where}")
    return text + (f"; metadata groups spanning subsets: {report['groups_across_subsets']}"
                   if "groups_across_subsets" in report else "")


def audit_summary(leakage: dict) -> dict[str, str]:
    """The leakage audit in words: what was checked, how the split was made, what it leaks."""
    group_by = leakage["group_by"]
    return {"checked": "; ".join(leakage["checked"]), "split": leakage["stratified"],
            "grouping (split.group_by)": "none" if group_by is None else "near-duplicate clusters and the dataset's "
            "own groups (auto)" if group_by == "auto" else ", ".join(group_by),
            "near-duplicate pairs in the dataset": str(leakage["near_duplicate_pairs"]),
            "this split": _leaks(leakage),
            **({"the same split without grouping": _leaks(leakage["without_grouping"])}
               if "without_grouping" in leakage else {}),
            **({"images with a blank group field": f"{leakage['unknown_group_fields']}: each is in no metadata group "
                "(a blank is unknown, never equal to another blank); its near-duplicates are still found"}
               if "unknown_group_fields" in leakage else {}),
            "images skipped in preprocessing": "; ".join(f"{s['file']}: {s['reason']}"
                                                        for s in leakage["skipped_images"]) or "none"}


def qualitative(results: Results, statistics: dict, params: dict, where: paths.Sweep,
                data, inputs: Inputs) -> list[tuple[str, list[np.ndarray]]]:
    """The best, median and worst test image of the best pair and of the last-ranked pair: image, truth,
    probability, raw and post-processed prediction, on the un-padded canvas."""
    from PIL import Image

    seed = params["sweep"]["seeds"][0]
    row_of = {sid: i for i, sid in enumerate(data.meta["sample_id"].astype(str))}
    rows = []
    for pair in dict.fromkeys([statistics["best"], statistics["ranking"][-1]]):
        run = paths.RunId.parse(pair)
        seed_dir = where.seed(run.arch, run.loss, seed)
        scores = results.per_image[(results.per_image["pair"] == pair) & (results.per_image["seed"] == seed)
                                   & results.per_image["lesion"]].sort_values("dice", kind="stable")
        if scores.empty:
            continue
        picks = {"best": scores.iloc[-1], "median": scores.iloc[len(scores) // 2], "worst": scores.iloc[0]}
        with np.load(inputs.check(seed_dir / paths.TEST_PROBABILITIES)) as probs, \
                np.load(inputs.check(seed_dir / paths.TEST_PREDICTIONS)) as final:
            for label, score in picks.items():
                sid, index = str(score["sample_id"]), row_of[str(score["sample_id"])]
                geometry = data.geometry(index)
                image = _canvas(data, index)
                probability = probs[sid]
                size = (probability.shape[1], probability.shape[0])
                post = np.asarray(Image.fromarray(final[sid]).resize(size, Image.Resampling.NEAREST))
                rows.append((f"{pair}\n{label}: {sid}\nDice {score['dice']:.3f}",
                             [image, geometry.crop(data.masks[index]), probability,
                              (probability > 127).astype(np.uint8), post]))
    return rows


def make_figures(results: Results, statistics: dict, efficiency: pd.DataFrame, strata: pd.DataFrame,
                 params: dict, where: paths.Sweep, data, leakage: dict, inputs: Inputs) -> dict[str, figures.Figure]:
    palette = figures.Palette(statistics["ranking"], [p for p, r in statistics["per_pair"].items() if r["failed"]],
                              results.pairs, [p for p, r in statistics["per_pair"].items() if r.get("pruned")])
    matrix = dice_matrix(results)
    per_pair = statistics["per_pair"]
    ci = {(a, l): (per_pair[run_name(a, l)]["ci_low"], per_pair[run_name(a, l)]["ci_high"])
          for a in matrix.index for l in matrix.columns}
    points = efficiency.assign(Dice=[per_pair[p]["mean"] for p in efficiency["pair"]])
    points = points.rename(columns={"CPU latency IQR (ms)": "CPU latency (ms) IQR"})
    costs = {c: label for c, label in (("parameters (M)", "parameters (millions)"), ("GFLOPs", "GFLOPs per image"),
                                       ("CPU latency (ms)", "CPU latency per image (ms)")) if c in points}
    friedman = statistics["friedman"]
    nemenyi = pd.DataFrame(friedman["nemenyi_p"]) if friedman.get("nemenyi_p") else None
    built = {
        "dice_matrix": figures.plot_dice_matrix(matrix, ci),
        "distributions": figures.plot_distributions(results.image_scores("dice")[statistics["ranking"]], palette),
        "pareto": figures.plot_pareto(points, costs, palette),
        "learning_curves": figures.plot_learning_curves(results.history, palette),
        "critical_difference": figures.plot_critical_difference(pd.Series(friedman["mean_ranks"]), nemenyi, palette,
                                                                friedman["alpha"], friedman.get("p_value")),
        "rank_stability": figures.plot_rank_stability(pd.DataFrame(statistics["rank_stability"]).T, palette),
        "strata": figures.plot_strata(strata, palette),
        "cases": figures.plot_cases(qualitative(results, statistics, params, where, data, inputs)),
        "leakage": figures.plot_leakage(leaked_pairs(leakage, data)),
    }
    if results.tuning:
        built["tuning"] = figures.plot_tuning(tuning_candidates(results.tuning), palette)
    return {name: built[name] for name in paths.FIGURES if name in built}  # the contract's figures, in its order


def tuning_candidates(tuning: dict[str, dict]) -> pd.DataFrame:
    """Every pair's candidates (``Results.tuning``) in one table: pair, candidate (its settings in words), val_dice,
    chosen, pruned."""
    return pd.DataFrame([{"pair": pair, "candidate": describe(c["settings"]), "val_dice": c["val_dice"],
                          "chosen": c["candidate"] == decision["chosen"], "pruned": bool(c.get("pruned"))}
                         for pair, decision in tuning.items() for c in decision["candidates"]])


def run_columns(results: Results, statistics: dict, efficiency: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per MLflow training run: its pair's test Dice CI and its architecture's cost, so the MLflow table view
    shows them beside the run's own test metrics."""
    cost = efficiency.set_index("pair")
    out = {}
    if "mlflow_run_id" not in results.training:
        return out
    for row in results.training.dropna(subset=["mlflow_run_id"]).itertuples():
        pair = statistics["per_pair"][row.pair]
        values = {"test_dice_ci_low": pair["ci_low"], "test_dice_ci_high": pair["ci_high"]}
        for column, metric in (("CPU latency (ms)", "latency_ms_cpu"), ("parameters (M)", "parameters_m")):
            if column in cost and pd.notna(cost.loc[row.pair, column]):
                values[metric] = float(cost.loc[row.pair, column])
        out[row.mlflow_run_id] = values
    return out


def definitions(units: str, penalty: str) -> dict[str, str]:
    return {**{metric_title(m, units): text.format(penalty=penalty) for m, (_, text, _) in METRIC_COLUMNS.items()},
            **{title: text for title, text in DETECTION.values()}}


@dataclass
class Contents:
    """What the report shows, computed once from the stage's inputs; each format (Markdown, workbook, LaTeX,
    HTML) writes it."""

    title: str
    statistics: dict
    results: Results
    units: str
    penalty: str                      # how a missed lesion counts in HD95 / ASSD
    verdict: str
    comparison: pd.DataFrame
    metrics: pd.DataFrame
    detection: pd.DataFrame
    efficiency: pd.DataFrame
    strata: pd.DataFrame
    counts: pd.DataFrame
    sections: dict[str, pd.DataFrame]  # the statistics tables
    leaks: dict[str, pd.DataFrame]
    shifts: dict[str, pd.DataFrame]    # generalisation
    setup: dict[str, str]
    losses: dict[str, str]
    provenance: dict[str, str]
    audited: dict[str, str]
    failed: list[bool]

    @classmethod
    def gather(cls, params: dict, results: Results, statistics: dict, leakage: dict, info: dict,
               counts: pd.DataFrame) -> Contents:
        key, units = params["dataset"]["key"], results.replicates["units"].iloc[0]
        penalty = "the image's diagonal" if params["evaluate"]["boundary_penalty"] == "diagonal" \
            else f"{params['evaluate']['boundary_penalty']} {units}"
        return cls(f"sweep '{params['sweep']['name']}' on {key}", statistics, results, units, penalty,
                   verdict(statistics), comparison_table(results, statistics), metrics_table(results, statistics),
                   detection_table(results, statistics), efficiency_table(results, statistics), strata_table(results),
                   counts, statistics_tables(statistics),
                   leakage_tables(leakage, statistics), generalisation_tables(statistics), setup(params, results),
                   {l: loss_definition(params["losses"][l]) for l in params["sweep"]["losses"]},
                   provenance(params, results, info), audit_summary(leakage),
                   [left_out(statistics["per_pair"][p]) for p in statistics["ranking"]])

    def definitions(self) -> dict[str, str]:
        return definitions(self.units, self.penalty)


def headline(c: Contents) -> dict:
    """summary.json: the numbers `dvc metrics show` and `dvc exp show` display."""
    best, per_pair = c.statistics["best"], c.statistics["per_pair"]
    verdicts = [r["verdict"] for r in c.statistics["versus_best"]["pairs"].values()]
    return {"best_pair": best, "best_dice": per_pair[best]["mean"], "best_dice_ci_low": per_pair[best]["ci_low"],
            "best_dice_ci_high": per_pair[best]["ci_high"], "pairs": len(c.results.pairs),
            "pairs_significantly_lower": sum(v.startswith("significantly lower") for v in verdicts),
            "pairs_failed": len(c.statistics["failed"]), "pairs_pruned": len(c.statistics.get("pruned", {}))}


def markdown_text(c: Contents) -> str:
    """comparison.md: the verdict, then every table."""
    md = [f"# segbench comparison: {c.title}", "", c.verdict, "", *[f"> {x}" for x in c.statistics["caveats"]], "",
          markdown(c.comparison), "",
          "## Metrics", "", markdown(c.metrics), "", "## Detection", "", markdown(c.detection), "",
          "## Cost", "", markdown(c.efficiency), "",
          "## Set-up", "", *[f"- **{k}**: {v}" for k, v in c.setup.items()], "",
          "## Losses", "", *[f"- `{k}` = {v}" for k, v in c.losses.items()], "",
          "## Definitions", "", *[f"- **{k}**: {v}" for k, v in c.definitions().items()], "",
          "## Mean test Dice: architecture x loss", "", dice_matrix(c.results).to_markdown(floatfmt=".3f"), "",
          "## Statistics", "", c.statistics["friedman"]["versus_wilcoxon"], ""]
    for title, frame in c.sections.items():
        md += [f"### {title}", "", markdown(frame), ""]
    if c.shifts:
        md += ["## Generalisation", "", GENERALISATION, ""]
        for title, frame in c.shifts.items():
            md += [f"### {title}", "", markdown(frame), ""]
    md += ["## Leakage", "", *[f"- **{k}**: {v}" for k, v in c.audited.items()], ""]
    for title, frame in c.leaks.items():
        md += [f"### {title}", "", markdown(frame), ""]
    md += ["## Strata", "", markdown(c.strata), "", "## Split counts", "", markdown(c.counts), "",
           "## Provenance", "", *[f"- **{k}**: {v}" for k, v in c.provenance.items()], ""]
    return "\n".join(md)


def write_workbook(c: Contents, path: Path) -> None:
    """comparison.xlsx: one sheet per table, then the set-up."""
    training = c.results.training
    runs = [col for col in ("pair", "seed", "fold", "epochs", "best_epoch", "best_val_dice", "trivial_val_dice",
                            "train_seconds", "device", "mlflow_run_id") if col in training]
    workbook.write(path, {
        "comparison": (c.comparison, "One row per pair in rank order; pairs that did not learn last."),
        "metrics": (c.metrics, f"Means over the test images with a lesion; boundary metrics in {c.units}."),
        "detection": (c.detection, "Lesion-level and image-level detection."),
        "cost": (c.efficiency, "Parameters, GFLOPs, latency per architecture, training time."),
        **{f"statistics {i + 1}": (frame, title) for i, (title, frame) in enumerate(c.sections.items())},
        "strata": (c.strata, "Mean test metrics per stratum value (images with a lesion)."),
        "per image": (c.results.per_image, "Every test image of every pair and seed."),
        "split counts": (c.counts, "Images per class and subset."),
        **{f"leakage {i + 1}": (frame, title) for i, (title, frame) in enumerate(c.leaks.items())},
        **{f"generalisation {i + 1}": (frame, title) for i, (title, frame) in enumerate(c.shifts.items())},
        "runs": (training[runs], "Training runs and their MLflow run ids.")},
        dice_matrix(c.results), {"verdict": c.verdict,
                                 **{f"caveat {i + 1}": x for i, x in enumerate(c.statistics["caveats"])},
                                 **c.setup, **c.losses, **{f"leakage: {k}": v for k, v in c.audited.items()},
                                 **c.provenance})


def page_html(c: Contents, figure_files: dict[str, Path], stratified: str) -> str:
    """report.html: the verdict and caveats, then a section per part, each ending with its figures
    (``paths.FIGURES`` says which)."""
    statistics, failed = c.statistics, c.failed

    def figures_of(section: str) -> str:
        return "".join(html.figure(name, figure_files[name]) for name, where in paths.FIGURES.items()
                       if where == section and name in figure_files)

    sections = [
        ("comparison", "Comparison", html.table(c.comparison, failed)),
        ("metrics", "Metrics", html.note(f"Means over the {count(statistics['n_images'], 'test image')} with a lesion; "
                                         f"HD95 and ASSD in {c.units}, a missed lesion counting as {c.penalty}.")
         + html.table(c.metrics, failed)),
        ("detection", "Detection", html.note(c.setup["detection"]) + html.table(c.detection, failed)),
        ("distributions", "Per-image results", ""),
        ("statistics", "Statistics", html.note(statistics["friedman"]["versus_wilcoxon"]) + "".join(
            f"<h3>{title}</h3>{html.table(frame)}" for title, frame in c.sections.items())),
        *([("generalisation", "Generalisation", html.note(GENERALISATION) + "".join(
            f"<h3>{title}</h3>{html.table(frame)}" for title, frame in c.shifts.items()))] if c.shifts else []),
        ("cost", "Accuracy against cost", html.table(c.efficiency, failed)),
        ("training", "Training", ""),
        ("cases", "Cases", ""),
        ("setup", "Set-up and definitions", "<h3>Set-up</h3>" + html.definitions(c.setup) + "<h3>Losses</h3>"
         + html.definitions(c.losses) + "<h3>Metrics</h3>" + html.definitions(c.definitions())),
        ("split", "Split", html.note(stratified) + html.table(c.counts)),
        ("leakage", "Leakage", html.definitions(c.audited) + "".join(f"<h3>{title}</h3>{html.table(frame)}"
                                                                    for title, frame in c.leaks.items())),
        ("provenance", "Provenance", html.definitions(c.provenance)),
    ]
    return html.page(f"segbench: {c.title}", c.verdict, statistics["caveats"],
                     [(key, title, body + figures_of(key)) for key, title, body in sections])


def build_report(params: dict, where: paths.Sweep, tracker=None, declared: list[str] | None = None) -> Path:
    """Write the (dataset, sweep)'s report folder: statistics.json, summary.json, comparison.md/.tex/.xlsx,
    report.html and figures/; mirror them on its MLflow parent run. Returns report.html's path.

    It reads only the files the pipeline declares as its inputs (``declared``: reading another is an error), and
    writes the same bytes from the same inputs (no dates, fixed SVG ids and workbook timestamps), so a rerun changes
    nothing.
    """
    from segbench.data.processed import Processed

    out, key = where.report, params["dataset"]["key"]
    inputs = Inputs(declared)  # every file read below is one the report stage declares
    for name in paths.PROCESSED_FILES:
        inputs.check(paths.processed_dir(key) / name)
    data = Processed.load(paths.processed_dir(key), inputs.check(paths.split_csv(key)))
    results = load_results(params, where, inputs)
    leakage = inputs.read(paths.split_leakage_json(key), "split")
    counts = inputs.read(paths.split_counts_csv(key), "split", pd.read_csv)
    statistics = analyse(results, params["statistics"], leakage["leaked_test_images"],
                         leakage.get("leaked_in_group_images", []), leakage.get("reference_leaked_images", []))
    statistics["colours"] = figures.Palette(statistics["ranking"], (), results.pairs).colours  # every figure's
    c = Contents.gather(params, results, statistics, leakage, data.info, counts)

    write_json(out / paths.STATISTICS, statistics)
    write_json(paths.cross_input(params["sweep"], key),  # the summary's
               {**statistics, "dataset_kind": params["dataset"]["name"]})
    summary = headline(c)
    write_json(out / paths.SUMMARY, summary)
    with atomic_path(out / paths.MARKDOWN) as tmp:
        tmp.write_text(markdown_text(c))
    with atomic_path(out / paths.LATEX) as tmp:
        tmp.write_text(latex.table(c.comparison, c.metrics, c.units, statistics, key))
    write_workbook(c, out / paths.WORKBOOK)
    figure_files = {}
    for name, figure in make_figures(results, statistics, c.efficiency, c.strata, params, where, data,
                                     leakage, inputs).items():
        for suffix in paths.FIGURE_FORMATS:
            with atomic_path(where.figure(name, suffix)) as tmp:
                figures.save(figure, tmp, suffix)
        figure_files[name] = where.figure(name)
    with atomic_path(out / paths.PAGE) as tmp:
        tmp.write_text(page_html(c, figure_files, leakage["stratified"]))
    if tracker:
        best = statistics["best"]
        tracker.finish_sweep({k: float(v) for k, v in summary.items() if k != "best_pair"}, {"best_pair": best},
                             [out / name for name in paths.REPORT_FILES if name != paths.STATISTICS]
                             + [out / paths.STATISTICS, *figure_files.values()],
                             champion=str(replace(paths.RunId.parse(best), seed=params["sweep"]["seeds"][0])),
                             per_run=run_columns(results, statistics, c.efficiency))
    log.info("report: %s", out / paths.PAGE)
    return out / paths.PAGE
