"""The `report` stage: statistics, tables, workbook, figures and one self-contained HTML page."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from segbench import paths
from segbench.evaluation import statistics as st
from segbench.io import atomic_path, read_json, write_json
from segbench.paths import run_name
from segbench.report import figures, html, workbook
from segbench.report.collect import Results, load_results
from segbench.report.tables import (METRICS, comparison_table, dice_matrix, markdown, statistics_tables,
                                    strata_table)

log = logging.getLogger(__name__)


def analyse(results: Results) -> dict:
    """statistics.json: per-pair CIs, tests against the best, Friedman/Nemenyi, rank stability, loss rankings."""
    scores = results.image_scores("dice")
    ci = st.bootstrap_ci(scores)
    replicate_means = results.replicates.groupby("pair", sort=False)["dice"]
    versus = st.versus_best(scores)
    friedman = st.friedman_nemenyi(scores)
    ranks, kendall = st.loss_rankings(dice_matrix(results))
    return {
        "metric": "Dice per test image with a lesion, averaged over the pair's seeds",
        "n_images": int(len(scores)), "seeds": sorted(results.replicates["seed"].unique().tolist()),
        "per_pair": {p: {"mean": ci.loc[p, "mean"], "ci_low": ci.loc[p, "ci_low"], "ci_high": ci.loc[p, "ci_high"],
                         "sd_across_seeds": float(replicate_means.std().get(p, np.nan))} for p in scores.columns},
        "ci_method": "95% bootstrap CI of the mean (scipy.stats.bootstrap, BCa, 2,000 resamples, the same "
                     "resampled images for every pair)",
        "versus_best": {"best": versus.attrs["best"], "test": versus.attrs["test"],
                        "correction": versus.attrs["correction"], "alpha": versus.attrs["alpha"],
                        "pairs": {p: {"p_value": _num(r["p_value"]), "p_holm": _num(r["p_holm"]),
                                      "not_worse": bool(r["not_worse"])} for p, r in versus.iterrows()}},
        "friedman": friedman,
        "rank_stability": st.rank_stability(scores).to_dict(orient="index"),
        "rank_stability_method": "ranks by mean Dice on 1,000 bootstrap resamples of the test images",
        "loss_rankings": {"ranks": ranks.to_dict(orient="index"), "kendall_w": kendall},
    }


def _num(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)


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
    units = first.get("units", "px")
    return {
        "dataset": f"{params['dataset']['name']}; {first['n_images']} test images "
                   f"({first['n_lesion_images']} with a lesion)",
        "preprocessing": f"longest side to {params['preprocess']['size']} px, zero-padded to a square",
        "training": f"{train['epochs']} epochs max, batch {train['batch_size']}, {train['optimizer']} lr {train['lr']}, "
                    f"weight decay {train['weight_decay']}, {train['scheduler']} schedule, early stopping after "
                    f"{train['early_stopping_patience']} epochs without a better val Dice",
        "augmentation": ", ".join(f"{k} {v}" for k, v in sorted(train["augment"].items())),
        "replicates": f"seeds {params['sweep']['seeds']}, folds {params['sweep']['folds']} "
                      "(the test images are predicted by the mean of a seed's fold models)",
        "evaluation": f"at the {evaluate['resolution']} resolution; boundary metrics in {units}, NSD tolerance "
                      f"{evaluate['nsd_tolerance_px']} px; post-processing chosen on val images "
                      f"(candidates {['none', *evaluate['postprocessing']]})",
        "GFLOPs": f"one forward pass of one {params['preprocess']['size']}x{params['preprocess']['size']} image "
                  "(torch.utils.flop_counter; a multiply-add counts 2)",
        "latency": "median of 20 passes of one image (batch 1) after 3 warm-up passes, whole fold ensemble, "
                   "1 CPU thread; memory: peak resident increase during those passes",
        "Dice SD": "'Dice std' in metrics.json is the SD over test images; 'Dice SD (seeds)' the SD of the "
                   "seeds' means",
    }


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
            "MLflow runs": ", ".join(f"{p}/seed{s}/fold{f}: {r}" for (p, s, f), r in run_ids.items()) or "none"}


def verdict(statistics: dict, table: pd.DataFrame) -> str:
    versus = statistics["versus_best"]
    best = versus["best"]
    ci = statistics["per_pair"][best]
    same = [p for p, r in versus["pairs"].items() if r["not_worse"] and p != best]
    worse = [p for p, r in versus["pairs"].items() if not r["not_worse"]]
    text = (f"Best pair: {best}, mean test Dice {ci['mean']:.4f} (95% CI {ci['ci_low']:.4f}-{ci['ci_high']:.4f}, "
            f"{statistics['n_images']} images). ")
    text += (f"Not significantly worse ({versus['test'].split(',')[0]}, {versus['correction']}, alpha "
             f"{versus['alpha']}): {', '.join(same) if same else 'none'}. ")
    text += f"Significantly worse: {', '.join(worse) if worse else 'none'}."
    return text


def qualitative(results: Results, params: dict, table: pd.DataFrame, where: paths.Sweep,
                data) -> list[tuple[str, list[np.ndarray]]]:
    """The best, median and worst test image of the best pair and of the last-ranked pair:
    image, truth, probability, raw and post-processed prediction, on the un-padded canvas."""
    from PIL import Image

    from segbench.data.images import Geometry

    seed = params["sweep"]["seeds"][0]
    row_of = {sid: i for i, sid in enumerate(data.meta["sample_id"].astype(str))}
    rows = []
    ranked = list(dict.fromkeys([run_name(*table.iloc[0][["architecture", "loss"]]),
                                 run_name(*table.iloc[-1][["architecture", "loss"]])]))
    for pair in ranked:
        seed_dir = where.seed(*pair.split("__"), seed)
        scores = results.per_image[(results.per_image["pair"] == pair) & (results.per_image["seed"] == seed)
                                   & results.per_image["lesion"]].sort_values("dice")
        if scores.empty:
            continue
        picks = {"best": scores.iloc[-1], "median": scores.iloc[len(scores) // 2], "worst": scores.iloc[0]}
        with np.load(seed_dir / paths.TEST_PROBABILITIES) as probs, np.load(seed_dir / paths.TEST_PREDICTIONS) as final:
            for label, score in picks.items():
                sid, index = str(score["sample_id"]), row_of[str(score["sample_id"])]
                geometry = Geometry.of(data.meta.iloc[index], data.size)
                image = geometry.crop(np.moveaxis(data.images[index], -1, 0) if data.channels > 1
                                      else data.images[index])
                image = np.moveaxis(image, 0, -1) if data.channels > 1 else image
                probability = probs[sid]
                size = (probability.shape[1], probability.shape[0])
                truth = geometry.crop(data.masks[index])
                post = np.asarray(Image.fromarray(final[sid]).resize(size, Image.Resampling.NEAREST))
                rows.append((f"{pair}\n{label}: {sid}\nDice {score['dice']:.3f}",
                             [image, truth, probability, (probability > 127).astype(np.uint8), post]))
    return rows


def make_figures(results: Results, statistics: dict, table: pd.DataFrame, strata: pd.DataFrame,
                 params: dict, where: paths.Sweep, data) -> dict[str, "figures.Figure"]:
    ranked_pairs = [run_name(a, l) for a, l in zip(table["architecture"], table["loss"])]
    matrix = dice_matrix(results)
    ci = {(a, l): (statistics["per_pair"][run_name(a, l)]["ci_low"], statistics["per_pair"][run_name(a, l)]["ci_high"])
          for a in matrix.index for l in matrix.columns}
    costs = table.assign(pair=ranked_pairs)
    friedman = statistics["friedman"]
    nemenyi = pd.DataFrame(friedman["nemenyi_p"]) if friedman.get("nemenyi_p") else None
    available_costs = {c: label for c, label in (("parameters (M)", "parameters (millions)"),
                                                 ("GFLOPs", "GFLOPs per image"),
                                                 ("latency CPU (ms)", "CPU latency per image (ms)"))
                       if costs[c].notna().any()}
    return {
        "dice_matrix": figures.plot_dice_matrix(matrix, ci),
        "distributions": figures.plot_distributions(results.image_scores("dice")[ranked_pairs]),
        "pareto": figures.plot_pareto(costs, available_costs),
        "learning_curves": figures.plot_learning_curves(results.history),
        "critical_difference": figures.plot_critical_difference(pd.Series(friedman["mean_ranks"]), nemenyi),
        "rank_stability": figures.plot_rank_stability(pd.DataFrame(statistics["rank_stability"]).T),
        "strata": figures.plot_strata(strata, ranked_pairs),
        "cases": figures.plot_cases(qualitative(results, params, table, where, data)),
    }


def build_report(params: dict, where: paths.Sweep, tracker=None) -> Path:
    """Write the (dataset, sweep)'s report folder: comparison.md, comparison.xlsx, statistics.json,
    summary.json, report.html and figures/; mirror them on its MLflow parent run. Returns report.html's path.

    It reads only the files the pipeline declares as its inputs, and writes the same bytes from the same
    inputs (no dates, fixed SVG ids and workbook timestamps), so a rerun changes nothing.
    """
    from segbench.data.dataset import Processed

    out = where.report
    key = params["dataset"]["key"]
    data = Processed.load(paths.processed_dir(key), paths.split_csv(key))
    results = load_results(params, where)
    statistics = analyse(results)
    table = comparison_table(results, statistics)
    strata = strata_table(results)
    counts = pd.read_csv(paths.split_counts_csv(key))
    leakage = read_json(paths.split_leakage_json(key))
    described = setup(params, results)
    losses = {l: loss_definition(params["losses"][l]) for l in params["sweep"]["losses"]}
    meta = provenance(params, results, data.info)
    summary = verdict(statistics, table)

    write_json(out / paths.STATISTICS, statistics)
    best = statistics["versus_best"]["best"]
    write_json(out / paths.SUMMARY, {  # the headline numbers `dvc metrics show` and `dvc exp show` display
        "best_pair": best, "best_dice": statistics["per_pair"][best]["mean"],
        "best_dice_ci_low": statistics["per_pair"][best]["ci_low"],
        "best_dice_ci_high": statistics["per_pair"][best]["ci_high"], "pairs": len(results.pairs),
        "pairs_not_worse_than_best": sum(r["not_worse"] for r in statistics["versus_best"]["pairs"].values())})
    sections = statistics_tables(statistics)
    md = [f"# segbench comparison: sweep '{params['sweep']['name']}' on {key}", "", summary, "", markdown(table), "",
          "## Set-up", "", *[f"- **{k}**: {v}" for k, v in described.items()], "",
          "## Losses", "", *[f"- `{k}` = {v}" for k, v in losses.items()], "",
          "## Metrics", "", *[f"- **{title}**: {text}" for title, text, _ in METRICS.values()], "",
          "## Mean test Dice: architecture x loss", "", dice_matrix(results).to_markdown(floatfmt=".4f"), "",
          "## Statistics", ""]
    for title, frame in sections.items():
        md += [f"### {title}", "", markdown(frame), ""]
    md += ["## Strata", "", markdown(strata), "", "## Split counts", "", markdown(counts), "",
           "## Provenance", "", *[f"- **{k}**: {v}" for k, v in meta.items()], ""]
    with atomic_path(out / paths.MARKDOWN) as tmp:
        tmp.write_text("\n".join(md))
    workbook.write(out / paths.WORKBOOK, table=table, matrix=dice_matrix(results), strata=strata,
                   statistics=sections, per_image=results.per_image, counts=counts,
                   runs=results.training, setup={"verdict": summary, **described, **losses, **meta})
    drawn = make_figures(results, statistics, table, strata, params, where, data)
    figure_files = {}
    for name, figure in drawn.items():
        for suffix in paths.FIGURE_FORMATS:
            with atomic_path(where.figure(name, suffix)) as tmp:
                figures.save(figure, tmp, suffix)
        figure_files[name] = where.figure(name)
    page = html.page(title=f"segbench: sweep '{params['sweep']['name']}' on {key}", verdict=summary, table=table,
                     figures=figure_files, setup=described, losses=losses,
                     metrics={title: text for title, text, _ in METRICS.values()},
                     statistics=sections, strata=strata, counts=counts, leakage=leakage, provenance=meta)
    with atomic_path(out / paths.PAGE) as tmp:
        tmp.write_text(page)
    if tracker:
        headline = {"best_test_dice": statistics["per_pair"][best]["mean"],
                    "best_test_dice_ci_low": statistics["per_pair"][best]["ci_low"],
                    "best_test_dice_ci_high": statistics["per_pair"][best]["ci_high"],
                    "pairs_not_worse_than_best": sum(r["not_worse"] for r in statistics["versus_best"]["pairs"].values()),
                    **({"friedman_p": statistics["friedman"]["p_value"]} if statistics["friedman"].get("p_value")
                       is not None else {}),
                    **({"kendall_w": statistics["loss_rankings"]["kendall_w"]["W"]}
                       if statistics["loss_rankings"]["kendall_w"].get("W") is not None else {})}
        tracker.finish_sweep(headline, {"best_pair": best},
                             [out / paths.PAGE, out / paths.MARKDOWN, out / paths.WORKBOOK,
                              out / paths.STATISTICS, *figure_files.values()],
                             champion=f"{best}/seed{params['sweep']['seeds'][0]}")
    log.info("report: %s", out / paths.PAGE)
    return out / paths.PAGE
