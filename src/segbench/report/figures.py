"""The report's figures: one ``plot_<what>(tables..., ax=None) -> Figure`` each.

They take plain tables, never paths, and use matplotlib's object API (no pyplot), so they touch no global
state and a test can call them on a tiny table. Every figure lists pairs in rank order and gives each the
same colour (``Palette``); text is at least 8 pt at the figure's printed size (7 in, a page's width); at
scale a figure shows the best ``TOP`` pairs and says how many it leaves to the tables.
"""

from __future__ import annotations

import functools
from itertools import product

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

GREY, DARK = "#9a9a9a", "#303030"
# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
TOP = len(OKABE_ITO)  # pairs drawn in their own colour; the rest are grey
WIDTH = 7.0           # inches: a page's text width, at which the fonts below print at their size
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
         "legend.fontsize": 8, "figure.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False,
         "svg.hashsalt": "segbench"}
# No dates, a fixed software name and fixed SVG ids: the same figure is the same bytes on every run
METADATA = {"png": {"Software": "segbench"}, "svg": {"Date": None, "Creator": "segbench"},
            "pdf": {"CreationDate": None, "Creator": "segbench", "Producer": "segbench"}}


def styled(plot):
    """Build the figure under ``STYLE`` (text sizes are fixed when an artist is made)."""
    @functools.wraps(plot)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return plot(*args, **kwargs)
    return wrapper


def save(figure: Figure, path, fmt: str, dpi: int = 150) -> None:
    """Write ``figure`` as ``fmt`` (png, svg, pdf), byte-reproducibly."""
    with matplotlib.rc_context(STYLE):
        figure.savefig(path, format=fmt, dpi=dpi, metadata=METADATA[fmt])


class Palette:
    """One colour per pair for every figure: with at most ``TOP`` pairs, each pair's Okabe-Ito colour follows its
    place in the sweep's own order (``order``), so a pair keeps its colour on every page of a sweep, whatever its
    rank on a dataset; with more, the best ``TOP`` of ``ranking`` are coloured and the rest grey. A pair that failed to
    learn, or that sweep.budget pruned, is labelled so (``label``)."""

    def __init__(self, ranking: list[str], failed=(), order: list[str] | None = None, pruned=()):
        self.ranking, self.failed, self.pruned = list(ranking), set(failed), set(pruned)
        named = order if order is not None and len(order) <= TOP else self.ranking
        self.colours = {pair: OKABE_ITO[i] if i < TOP else GREY for i, pair in enumerate(named)}

    def label(self, pair: str) -> str:
        return f"{pair} (failed)" if pair in self.failed else f"{pair} (pruned)" if pair in self.pruned else pair

    def __call__(self, pair: str) -> str:
        return self.colours.get(pair, GREY)

    def shown(self, pairs=None) -> list[str]:
        """The pairs drawn in colour, rank order (of ``pairs``, if given)."""
        return [p for p in (pairs or self.ranking)[:TOP] if p in self.colours and self.colours[p] != GREY]


def _legend_below(figure: Figure, handles) -> None:
    """A legend under the axes, in as many columns as its longest label leaves room for at 8 pt."""
    longest = max(len(h.get_label()) for h in handles)
    columns = max(1, min(len(handles), int(WIDTH * 72 / (5.2 * longest + 30))))
    figure.legend(handles=handles, loc="outside lower center", ncol=columns, frameon=False)


def _axes(ax, size):
    if ax is not None:
        return ax.figure, ax
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


@styled
def plot_dice_matrix(means: pd.DataFrame, ci: dict[tuple[str, str], tuple[float, float]], ax=None) -> Figure:
    """Architectures x losses heatmap of mean test Dice: each cell with its 95% CI when there is room, its value
    up to 12 losses, colour alone beyond (the comparison table has the numbers)."""
    rows, cols = means.shape
    with_ci, with_values = rows * cols <= 48, cols <= 12
    figure, ax = _axes(ax, (min(WIDTH, 2.2 + 1.3 * cols), 1.2 + (0.55 if with_ci else 0.3) * rows))
    values = means.to_numpy(float)
    image = ax.imshow(values, cmap="viridis", vmin=np.nanmin(values), vmax=np.nanmax(values), aspect="auto")
    middle = (np.nanmin(values) + np.nanmax(values)) / 2
    for (i, arch), (j, loss) in product(enumerate(means.index), enumerate(means.columns) if with_values else []):
        value = values[i, j]
        text = f"{value:.3f}\n[{ci[(arch, loss)][0]:.3f}, {ci[(arch, loss)][1]:.3f}]" if with_ci else f"{value:.2f}"
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black" if value > middle else "white")
    ax.set_xticks(range(cols), means.columns, rotation=30 if cols > 3 else 0, ha="right" if cols > 3 else "center")
    ax.set_yticks(range(rows), means.index)
    ax.set_xlabel("loss")
    ax.set_ylabel("architecture")
    ax.spines[:].set_visible(False)
    ax.set_title("Mean test Dice" + (" [95% bootstrap CI]" if with_ci else "" if with_values
                                     else " (values in the comparison table)"))
    figure.colorbar(image, ax=ax, label="Dice", shrink=0.9)
    return figure


@styled
def plot_distributions(scores: pd.DataFrame, palette: Palette, ax=None) -> Figure:
    """Per-image Dice of the best pairs (box: quartiles; dots: images), rank order; the rest pooled."""
    shown = palette.shown(list(scores.columns))
    data = [scores[p].dropna().to_numpy(float) for p in shown]
    labels = [palette.label(p) for p in shown]
    rest = [p for p in scores.columns if p not in shown]
    if rest:
        data.append(scores[rest].to_numpy(float).ravel())
        labels.append(f"other {len(rest)} pairs")
    figure, ax = _axes(ax, (WIDTH, 3.4))
    ax.boxplot(data, showfliers=False, widths=0.6, medianprops={"color": DARK})
    jitter = np.random.default_rng(0)
    for k, (values, pair) in enumerate(zip(data, [*shown, None]), start=1):
        colour = palette(pair) if pair else GREY
        ax.scatter(k + jitter.uniform(-0.18, 0.18, len(values)), values, s=9, color=colour, alpha=0.6,
                   linewidths=0, zorder=3)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right")
    ax.set_ylabel("Dice per test image")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("Per-image test Dice, pairs in rank order")
    return figure


def pareto_front(cost: np.ndarray, quality: np.ndarray, spread: np.ndarray | None = None) -> np.ndarray:
    """Indices of the points no other point beats on both: cheaper and better. With ``spread`` (each cost's
    measurement spread, e.g. its interquartile range), a point is only cheaper than another when their costs
    differ by more than both spreads: differences within the noise are ties."""
    spread = np.zeros_like(cost) if spread is None else np.asarray(spread, float)
    front = []
    for i in range(len(cost)):
        cheaper = cost + spread < cost[i] - spread[i]
        tie = ~cheaper & (np.abs(cost - cost[i]) <= spread + spread[i])
        dominated = np.any((cheaper & (quality >= quality[i])) | (tie & (quality > quality[i])))
        if not dominated:
            front.append(i)
    return np.asarray(sorted(front, key=lambda i: cost[i]), int)


def _log_axis(axis) -> None:
    """A log axis labelled at whole decades only, as plain numbers (0.01, 1, 100): no crowded labels."""
    axis.set_major_locator(LogLocator(base=10, numticks=5))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


@styled
def plot_pareto(points: pd.DataFrame, costs: dict[str, str], palette: Palette, ax=None) -> Figure:
    """Mean test Dice against each cost (one panel each, log scale over wide ranges). ``points``: one row per
    pair with "pair", "Dice" and the cost columns; a column "<cost> IQR" gives that cost's spread, drawn as a
    bar and treated as a tie by the front. The front's pairs are ringed and joined in red; pairs are told
    apart by colour, named in the legend below."""
    figure = Figure(figsize=(WIDTH, 3.6), layout="constrained")
    axes = figure.subplots(1, len(costs), squeeze=False)[0]
    for panel, (column, label) in zip(axes, costs.items()):
        data = points.dropna(subset=[column])
        cost, quality = data[column].to_numpy(float), data["Dice"].to_numpy(float)
        spread = data[f"{column} IQR"].to_numpy(float) if f"{column} IQR" in data else None
        if spread is not None:
            panel.errorbar(cost, quality, xerr=spread / 2, fmt="none", ecolor=GREY, elinewidth=0.8, zorder=2)
        front = pareto_front(cost, quality, spread) if len(cost) else np.array([], int)
        panel.plot(cost[front], quality[front], color="#C0392B", lw=1, zorder=1)
        for i, pair in reversed(list(enumerate(data["pair"]))):  # the best drawn last, on top
            panel.scatter(cost[i], quality[i], color=palette(pair), s=30, zorder=3,
                          edgecolors=DARK if i in front else "white", linewidths=1.2 if i in front else 0.5)
        if len(cost) and (cost > 0).all() and cost.max() / cost.min() > 10:
            panel.set_xscale("log")
            _log_axis(panel.xaxis)
        panel.margins(x=0.15, y=0.1)
        panel.set_xlabel(label)
    axes[0].set_ylabel("mean test Dice")
    handles = [Line2D([], [], marker="o", ls="", color=palette(p), label=palette.label(p)) for p in palette.shown()]
    handles.append(Line2D([], [], color="#C0392B", label="Pareto front (ringed)"))
    if len(palette.ranking) > len(palette.shown()):
        handles.append(Line2D([], [], marker="o", ls="", color=GREY, label="other pairs"))
    _legend_below(figure, handles)
    figure.suptitle("Accuracy against cost")
    return figure


@styled
def plot_learning_curves(history: pd.DataFrame, palette: Palette, ax=None) -> Figure:
    """Train loss, val loss and val Dice per epoch: one line per pair (mean over its seeds and folds), the
    best pairs in colour, the rest thin and grey."""
    figure = Figure(figsize=(WIDTH, 2.9), layout="constrained")
    axes = figure.subplots(1, 3)
    curves = history.groupby(["pair", "epoch"], sort=False)[["train_loss", "val_loss", "val_dice"]].mean()
    order = [p for p in palette.ranking if p in curves.index.get_level_values("pair")]
    for pair in reversed(order):  # the best drawn last, on top
        frame = curves.loc[pair]
        coloured = palette(pair) != GREY
        for panel, column in zip(axes, ("train_loss", "val_loss", "val_dice")):
            panel.plot(frame.index, frame[column], color=palette(pair), lw=1.4 if coloured else 0.6,
                       alpha=1 if coloured else 0.5, label=palette.label(pair) if coloured else None)
    for panel, title in zip(axes, ("train loss", "val loss", "val Dice (images with a lesion)")):
        panel.set_title(title)
        panel.set_xlabel("epoch")
    _legend_below(figure, axes[2].get_legend_handles_labels()[0][::-1])
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


CD_PAIRS = 20  # a critical-difference diagram stays readable up to about this many labels


@styled
def plot_critical_difference(mean_ranks: pd.Series, nemenyi: pd.DataFrame | None, palette: Palette,
                             alpha: float = 0.05, friedman_p: float | None = None, over: str = "test images",
                             ax=None) -> Figure:
    """Demsar's (2006) critical-difference diagram: each pair at its mean rank over the blocks (``over``: test
    images, or datasets) on one axis (1 = best, left), a bar under the pairs Nemenyi's test does not separate.
    Bars only when Friedman's test rejects; without a post-hoc (fewer than 3 pairs), the mean ranks alone. At
    most ``CD_PAIRS`` best-ranked labels."""
    ranks = mean_ranks.sort_values(kind="stable")
    total = len(ranks)
    ranks = ranks.iloc[:CD_PAIRS]
    k = len(ranks)
    half = (k + 1) // 2
    lines = max(half, k - half)
    figure, ax = _axes(ax, (WIDTH, 1.3 + 0.22 * lines))
    low, high = 1, max(total, 2)
    ax.set_xlim(low - 0.5, high + 0.5)
    ax.hlines(0, low, high, color=DARK, lw=1)
    step = max(1, int(np.ceil((high - low) / 12)))
    for tick in range(low, high + 1, step):
        ax.vlines(tick, 0, 0.1, color=DARK, lw=1)
        ax.text(tick, 0.15, str(tick), ha="center", va="bottom", fontsize=8)
    for i, (pair, rank) in enumerate(ranks.items()):
        left = i < half
        row = -(0.45 + 0.25 * (i if left else k - 1 - i))
        end = low - 0.4 if left else high + 0.4
        ax.plot([rank, rank, end], [0, row, row], color=palette(pair), lw=1)
        ax.text(end + (-0.05 if left else 0.05), row, f"{palette.label(pair)} ({rank:.2f})",
                ha="right" if left else "left", va="center", fontsize=8)
    rejected = friedman_p is not None and friedman_p < alpha
    if nemenyi is not None and rejected:
        for level, group in enumerate(not_separated(ranks, nemenyi.loc[ranks.index, ranks.index], alpha)):
            ax.hlines(-0.18 - 0.09 * level, ranks[group[0]] - 0.03, ranks[group[-1]] + 0.03, color=DARK, lw=2.5)
    ax.set_ylim(-(0.7 + 0.25 * lines), 0.5)
    ax.axis("off")
    shown = f" (the best {k} of {total})" if total > k else ""
    if nemenyi is None:
        title = f"Mean rank over {over}{shown} (1 = best); no post-hoc test (too few pairs or {over})"
    elif rejected:
        title = f"Mean rank over {over}{shown}; a bar joins pairs Nemenyi's test does not separate"
    else:
        title = (f"Mean rank over {over}{shown}; Friedman's test does not reject equal ranks (p = "
                 f"{friedman_p:.3g}): no pair is separated")
    ax.set_title(title, fontsize=9)
    return figure


RANK_PAIRS = 25


@styled
def plot_rank_stability(stability: pd.DataFrame, palette: Palette, ax=None) -> Figure:
    """Median rank of each pair over bootstrap resamples of the test images, with its 95% interval, rank order
    (the best ``RANK_PAIRS``)."""
    shown = stability.loc[[p for p in palette.ranking if p in stability.index][:RANK_PAIRS]]
    figure, ax = _axes(ax, (WIDTH, max(2.0, 0.7 + 0.26 * len(shown))))
    y = np.arange(len(shown))
    for i, (pair, row) in enumerate(shown.iterrows()):
        ax.errorbar(row["median_rank"], i, xerr=[[row["median_rank"] - row["rank_low"]],
                                                 [row["rank_high"] - row["median_rank"]]],
                    fmt="o", color=palette(pair), capsize=3, ms=5)
    ax.set_yticks(y, [palette.label(p) for p in shown.index])
    ax.invert_yaxis()
    ax.set_xlabel("rank (1 = best) over bootstrap resamples of the test images:\nmedian and 95% interval")
    more = f" (the best {len(shown)} of {len(stability)})" if len(stability) > len(shown) else ""
    ax.set_title(f"Rank stability{more}")
    return figure


@styled
def plot_tuning(candidates: pd.DataFrame, palette: Palette, ax=None) -> Figure:
    """Equal tuning (``sweep.tune``): each pair's mean val Dice per candidate (``candidates``: one row per pair and
    candidate, with columns pair, candidate (its settings in words, the grid's order), val_dice, chosen, pruned),
    the chosen one ringed, one that sweep.budget pruned hollow (its val Dice at the rung that pruned it)."""
    labels = list(dict.fromkeys(candidates["candidate"]))
    order = [p for p in palette.ranking if p in set(candidates["pair"])]
    figure, ax = _axes(ax, (WIDTH, 3.2))
    at = {label: i for i, label in enumerate(labels)}
    for pair in reversed(order):  # the best drawn last, on top
        rows = candidates[candidates["pair"] == pair]
        x, colour = rows["candidate"].map(at).to_numpy(), palette(pair)
        ax.plot(x, rows["val_dice"], color=colour, lw=1, zorder=1)
        for xi, row in zip(x, rows.itertuples()):
            ax.plot(xi, row.val_dice, "o", ms=5, color=colour, mfc="white" if row.pruned else colour, zorder=2)
            if row.chosen:
                ax.plot(xi, row.val_dice, "o", ms=11, mfc="none", mec=colour, mew=1.5, zorder=3)
    handles = [Line2D([], [], color=palette(p), marker="o", ms=5, label=palette.label(p)) for p in palette.shown(order)]
    handles.append(Line2D([], [], ls="", marker="o", ms=11, mfc="none", mec=DARK, mew=1.5, label="chosen"))
    if candidates["pruned"].any():
        handles.append(Line2D([], [], ls="", marker="o", ms=5, color=DARK, mfc="white",
                              label="pruned early (sweep.budget)"))
    ax.set_xticks(range(len(labels)), labels, rotation=20 if len(labels) > 4 else 0,
                  ha="right" if len(labels) > 4 else "center")
    ax.set_xlabel("candidate configuration (sweep.tune)")
    ax.set_ylabel("mean val Dice\n(seeds and folds)")
    more = f"; the best {len(palette.shown(order))} of {len(order)} pairs in colour" \
        if len(order) > len(palette.shown(order)) else ""
    ax.set_title(f"Equal tuning: val Dice per candidate{more}")
    _legend_below(figure, handles)
    return figure


STRATA_PAIRS = 12


@styled
def plot_strata(strata: pd.DataFrame, palette: Palette, ax=None) -> Figure:
    """Mean test Dice per stratum value (rows, grouped by stratum, each with its n) of each pair (columns, rank
    order, the best ``STRATA_PAIRS``): a heatmap, every cell printed, a Dice of 0 as 0.00."""
    pairs = [p for p in palette.ranking if p in set(strata["pair"])][:STRATA_PAIRS]
    strata = strata[strata["pair"].isin(pairs)]
    rows = list(dict.fromkeys(zip(strata["stratum"], strata["value"])))
    counts = strata.drop_duplicates(["stratum", "value"]).set_index(["stratum", "value"])["n"]
    grid = strata.pivot_table(index=["stratum", "value"], columns="pair", values="dice", sort=False).reindex(
        index=pd.MultiIndex.from_tuples(rows), columns=pairs)
    figure, ax = _axes(ax, (WIDTH, 1.6 + 0.24 * len(rows)))
    values = grid.to_numpy(float)
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    if len(pairs) * len(rows) <= 600:
        for i in range(len(rows)):
            for j in range(len(pairs)):
                if not np.isnan(values[i, j]):
                    ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=8,
                            color="black" if values[i, j] > 0.5 else "white")
    ax.set_yticks(range(len(rows)), [f"{stratum}: {value} (n={int(counts[(stratum, value)])})"
                                     for stratum, value in rows], fontsize=8)
    ax.set_xticks(range(len(pairs)), [palette.label(p) for p in pairs], rotation=30, ha="right", fontsize=8)
    for boundary in [i - 0.5 for i in range(1, len(rows)) if rows[i][0] != rows[i - 1][0]]:
        ax.axhline(boundary, color="white", lw=2)
    ax.spines[:].set_visible(False)
    figure.colorbar(image, ax=ax, label="mean Dice", shrink=0.8)
    more = f" (the best {len(pairs)} pairs)" if len(palette.ranking) > len(pairs) else ""
    ax.set_title(f"Mean test Dice per stratum value{more}")
    return figure


LEAK_PAIRS = 12


@styled
def plot_leakage(pairs: list[tuple[str, np.ndarray, np.ndarray]], ax=None) -> Figure:
    """Flagged near-duplicate pairs side by side, closest first (at most ``LEAK_PAIRS``): per pair (title, image
    a, image b); or a note that none was found."""
    shown = pairs[:LEAK_PAIRS]
    if not shown:
        figure, ax = _axes(ax, (WIDTH, 1.0))
        ax.axis("off")
        ax.text(0.5, 0.5, "No near-duplicate images on both sides of a subset boundary", ha="center", va="center")
        return figure
    columns = 3  # pairs per row, each pair two images
    rows = -(-len(shown) // columns)
    figure = Figure(figsize=(WIDTH, 1.6 * rows + 0.3), layout="constrained")
    axes = figure.subplots(rows, 2 * columns, squeeze=False)
    for panel in axes.ravel():
        panel.axis("off")
    for k, (title, a, b) in enumerate(shown):
        left, right = axes[k // columns, 2 * (k % columns)], axes[k // columns, 2 * (k % columns) + 1]
        for panel, image in ((left, a), (right, b)):
            panel.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
        left.set_title(title, fontsize=8, loc="left")
    return figure


@styled
def plot_cases(rows: list[tuple[str, list[np.ndarray]]], ax=None) -> Figure:
    """The thesis's figure 4.1: per row (title, [image, truth, probability, raw, post-processed]); the
    probability with its colour scale."""
    titles = ("image", "ground truth", "probability", "raw prediction", "post-processed")
    figure = Figure(figsize=(WIDTH, 1.5 * len(rows) + 0.4), layout="constrained")
    axes = figure.subplots(len(rows), 5, squeeze=False)
    shown = None
    for r, (title, panels) in enumerate(rows):
        for c, (panel, image) in enumerate(zip(axes[r], panels)):
            drawn = panel.imshow(image, cmap="gray" if c != 2 else "magma", vmin=0,
                                 vmax=255 if c in (0, 2) and image.dtype == np.uint8 else None)
            shown = drawn if c == 2 else shown
            panel.set_xticks([])
            panel.set_yticks([])
            panel.spines[:].set_visible(False)
            if r == 0:
                panel.set_title(titles[c], fontsize=8)
        # horizontal, left of the row, long pair names broken at "__": constrained layout makes room for them
        label = "\n".join(line.replace("__", "__\n") if len(line) > 16 else line for line in title.split("\n"))
        axes[r][0].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center", labelpad=4)
    if shown is not None:
        bar = figure.colorbar(shown, ax=axes[:, 2], shrink=0.8, location="bottom", aspect=30)
        bar.set_ticks([0, 127.5, 255], labels=["0", "0.5", "1"])
        bar.set_label("foreground probability", fontsize=8)
    return figure
