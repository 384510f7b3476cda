"""The report's figures: one ``plot_<what>(tables..., ax=None) -> Figure`` each.

They take plain tables, never paths, and use matplotlib's object API (no pyplot), so they
touch no global state and a test can call them on a tiny table.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

BLUE, GREY, RED = "#1f77b4", "#8c8c8c", "#d62728"


# No dates, a fixed software name and fixed SVG ids: the same figure is the same bytes on every run
METADATA = {"png": {"Software": "segbench"}, "svg": {"Date": None, "Creator": "segbench"},
            "pdf": {"CreationDate": None, "Creator": "segbench", "Producer": "segbench"}}


def save(figure: Figure, path, fmt: str, dpi: int = 110) -> None:
    """Write ``figure`` as ``fmt`` (png, svg, pdf), byte-reproducibly."""
    with matplotlib.rc_context({"svg.hashsalt": "segbench"}):
        figure.savefig(path, format=fmt, dpi=dpi, metadata=METADATA[fmt])


def _axes(ax, size=(6.4, 4.2)):
    if ax is not None:
        return ax.figure, ax
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


def plot_dice_matrix(means: pd.DataFrame, ci: dict[tuple[str, str], tuple[float, float]], ax=None) -> Figure:
    """Architectures x losses heatmap of mean test Dice, each cell with its 95% CI."""
    figure, ax = _axes(ax, (1.6 + 1.5 * means.shape[1], 1.2 + 0.6 * means.shape[0]))
    image = ax.imshow(means.to_numpy(float), cmap="viridis", vmin=np.nanmin(means.values), vmax=np.nanmax(means.values),
                      aspect="auto")
    for (i, arch), (j, loss) in ((a, b) for a in enumerate(means.index) for b in enumerate(means.columns)):
        low, high = ci[(arch, loss)]
        value = means.iloc[i, j]
        shade = "black" if value > np.nanmean(means.values) else "white"
        ax.text(j, i, f"{value:.3f}\n[{low:.3f}, {high:.3f}]", ha="center", va="center", fontsize=8, color=shade)
    ax.set_xticks(range(means.shape[1]), means.columns, rotation=20, ha="right")
    ax.set_yticks(range(means.shape[0]), means.index)
    ax.set_xlabel("loss")
    ax.set_ylabel("architecture")
    ax.set_title("Mean test Dice [95% bootstrap CI]")
    figure.colorbar(image, ax=ax, label="Dice")
    return figure


def plot_distributions(scores: pd.DataFrame, ax=None) -> Figure:
    """Per-image Dice of each pair (columns, already in rank order): box plots with the images as dots."""
    figure, ax = _axes(ax, (max(6.4, 0.9 * scores.shape[1] + 2), 4.2))
    data = [scores[c].dropna().to_numpy(float) for c in scores.columns]
    ax.boxplot(data, showfliers=False, widths=0.6)
    jitter = np.random.default_rng(0)
    for k, values in enumerate(data, start=1):
        ax.scatter(k + jitter.uniform(-0.15, 0.15, len(values)), values, s=8, color=BLUE, alpha=0.5, linewidths=0)
    ax.set_xticks(range(1, len(data) + 1), scores.columns, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("Dice per test image")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("Per-image Dice, pairs in rank order")
    return figure


def pareto_front(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats on both: lower cost and higher quality."""
    order = np.lexsort((-quality, cost))
    front, best = [], -np.inf
    for i in order:
        if quality[i] > best:
            front.append(i)
            best = quality[i]
    return np.asarray(front, int)


def plot_pareto(table: pd.DataFrame, costs: dict[str, str], ax=None) -> Figure:
    """Dice against each cost column of ``table`` (one panel per cost, log scale), Pareto front in red."""
    figure = ax.figure if ax is not None else Figure(figsize=(4.2 * len(costs), 4.0), layout="constrained")
    axes = [ax] if ax is not None else figure.subplots(1, len(costs), squeeze=False)[0]
    for panel, (column, label) in zip(axes, costs.items()):
        data = table.dropna(subset=[column])
        cost, quality = data[column].to_numpy(float), data["Dice"].to_numpy(float)
        panel.scatter(cost, quality, color=BLUE, zorder=3)
        for x, y, name in zip(cost, quality, data["pair"]):
            panel.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        front = pareto_front(cost, quality) if len(cost) else np.array([], int)
        panel.plot(cost[front], quality[front], color=RED, lw=1.2, label="Pareto front", zorder=2)
        if len(cost) and (cost > 0).all():
            panel.set_xscale("log")
        panel.set_xlabel(label)
        panel.set_ylabel("mean test Dice")
        panel.legend(loc="lower right", fontsize=8)
    figure.suptitle("Accuracy against cost")
    return figure


def plot_learning_curves(history: pd.DataFrame, ax=None) -> Figure:
    """Train and val loss, and val Dice, per epoch: one line per pair (mean over its seeds and folds)."""
    figure = Figure(figsize=(13, 3.8), layout="constrained")
    axes = figure.subplots(1, 3)
    curves = history.groupby(["pair", "epoch"], sort=False)[["train_loss", "val_loss", "val_dice"]].mean()
    for pair, frame in curves.groupby(level="pair", sort=False):
        epochs = frame.index.get_level_values("epoch")
        for panel, column in zip(axes, ("train_loss", "val_loss", "val_dice")):
            panel.plot(epochs, frame[column], label=pair, lw=1.2)
    for panel, title in zip(axes, ("train loss", "val loss", "val Dice")):
        panel.set_title(title)
        panel.set_xlabel("epoch")
    axes[2].legend(fontsize=7, loc="lower right")
    return figure


def not_separated(mean_ranks: pd.Series, nemenyi: pd.DataFrame, alpha: float = 0.05) -> list[tuple[str, ...]]:
    """The groups a critical-difference diagram joins with a bar: the maximal sets of pairs no two of which
    Nemenyi's test separates, as tuples in rank order, best-ranked group first.

    Written here rather than taken from scikit-posthocs: its diagram orders these groups by Python's
    per-process string hashing, so the same data drew a different figure on every run.
    """
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(mean_ranks.index)
    graph.add_edges_from((a, b) for a in mean_ranks.index for b in mean_ranks.index
                         if a < b and nemenyi.loc[a, b] >= alpha)
    groups = {tuple(sorted(clique, key=lambda p: (mean_ranks[p], p))) for clique in nx.find_cliques(graph)
              if len(clique) > 1}
    return sorted(groups, key=lambda g: (mean_ranks[g[0]], mean_ranks[g[-1]], g))


def plot_critical_difference(mean_ranks: pd.Series, nemenyi: pd.DataFrame | None, alpha: float = 0.05,
                             ax=None) -> Figure:
    """Demsar's (2006) critical-difference diagram: each pair at its mean rank on one axis (1 = best, left),
    a bar under the pairs Nemenyi's test does not separate. Without a post-hoc (fewer than 3 pairs), the
    mean ranks alone."""
    ranks = mean_ranks.sort_values(kind="stable")
    k = len(ranks)
    half = (k + 1) // 2
    figure, ax = _axes(ax, (8, 1.4 + 0.28 * max(half, k - half) + (0.15 * k if nemenyi is not None else 0)))
    ax.set_xlim(0.5, k + 0.5)
    ax.hlines(0, 1, k, color="black", lw=1)
    for tick in range(1, k + 1):
        ax.vlines(tick, 0, 0.12, color="black", lw=1)
        ax.text(tick, 0.18, str(tick), ha="center", va="bottom", fontsize=8)
    for i, (pair, rank) in enumerate(ranks.items()):
        left = i < half
        row = -(0.5 + 0.3 * (i if left else k - 1 - i))
        end = 0.6 if left else k + 0.4
        ax.plot([rank, rank, end], [0, row, row], color="black", lw=0.8)
        ax.text(end + (-0.05 if left else 0.05), row, f"{pair} ({rank:.2f})", ha="right" if left else "left",
                va="center", fontsize=8)
    if nemenyi is not None:
        for level, group in enumerate(not_separated(ranks, nemenyi.loc[ranks.index, ranks.index], alpha)):
            low, high = ranks[group[0]], ranks[group[-1]]
            ax.hlines(-0.2 - 0.12 * level, low - 0.03, high + 0.03, color=GREY, lw=3)
    ax.set_ylim(-(0.8 + 0.3 * max(half, k - half)), 0.6)
    ax.axis("off")
    ax.set_title("Mean rank over test images (1 = best); a bar joins pairs Nemenyi's test does not separate",
                 fontsize=9)
    return figure


def plot_rank_stability(stability: pd.DataFrame, ax=None) -> Figure:
    """Median rank of each pair over bootstrap resamples of the test images, with its 95% interval."""
    stability = stability.sort_values("median_rank")
    figure, ax = _axes(ax, (6.4, max(2.5, 0.8 + 0.4 * len(stability))))
    y = np.arange(len(stability))
    ax.errorbar(stability["median_rank"], y, xerr=[stability["median_rank"] - stability["rank_low"],
                                                    stability["rank_high"] - stability["median_rank"]],
                fmt="o", color=BLUE, capsize=3)
    ax.set_yticks(y, stability.index, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("rank (1 = best) over bootstrap resamples: median and 95% interval")
    ax.set_title("Rank stability")
    return figure


def plot_strata(strata: pd.DataFrame, pairs: list[str], ax=None) -> Figure:
    """Mean Dice per stratum value (grouped bars, one bar per pair), one panel per stratum column."""
    columns = list(dict.fromkeys(strata["stratum"]))
    figure = Figure(figsize=(max(6.4, 0.5 * strata["value"].nunique() + 4), 3.2 * max(1, len(columns))),
                    layout="constrained")
    axes = figure.subplots(max(1, len(columns)), 1, squeeze=False)[:, 0]
    width = 0.8 / max(1, len(pairs))
    for panel, column in zip(axes, columns):
        frame = strata[strata["stratum"] == column]
        values = list(dict.fromkeys(frame["value"]))
        for k, pair in enumerate(pairs):
            dice = frame[frame["pair"] == pair].set_index("value")["dice"].reindex(values)
            panel.bar(np.arange(len(values)) + k * width, dice, width, label=pair)
        counts = frame.drop_duplicates("value").set_index("value")["n"].reindex(values)
        panel.set_xticks(np.arange(len(values)) + width * (len(pairs) - 1) / 2,
                         [f"{v}\n(n={int(n)})" for v, n in zip(values, counts)], fontsize=7)
        panel.set_ylim(0, 1)
        panel.set_ylabel("mean Dice")
        panel.set_title(f"by {column}")
    axes[0].legend(fontsize=7, ncol=min(4, len(pairs)))
    return figure


def plot_cases(rows: list[tuple[str, list[np.ndarray]]], ax=None) -> Figure:
    """The thesis's figure 4.1: per row (title, [image, truth, probability, raw, post-processed])."""
    titles = ("image", "ground truth", "probability", "raw prediction", "post-processed")
    figure = Figure(figsize=(11, 2.3 * len(rows)), layout="constrained")
    axes = figure.subplots(len(rows), 5, squeeze=False)
    for r, (title, panels) in enumerate(rows):
        for c, (panel, image) in enumerate(zip(axes[r], panels)):
            panel.imshow(image, cmap="gray" if c != 2 else "magma", vmin=0,
                         vmax=255 if c in (0, 2) and image.dtype == np.uint8 else None)
            panel.set_xticks([])
            panel.set_yticks([])
            if r == 0:
                panel.set_title(titles[c], fontsize=9)
        axes[r][0].set_ylabel(title, fontsize=8)
    return figure
