"""Figures of the distribution recipe; each function returns a matplotlib Figure.

No pyplot and no global state: figures are built with
:class:`matplotlib.figure.Figure`, so they are safe in threads and servers; the
caller saves them (``fig.savefig(path)``).

Densities are drawn as probability over bin width, so unequal (quantile) bins
are shown honestly. HDR bands: 90% light, 50% darker.

Example:
    >>> fig = plot_confusion_matrix([[5, 1], [0, 4]], [0, 1])
    >>> type(fig).__name__
    'Figure'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from opslens.plots import theme

__all__ = [
    "axis_label",
    "plot_cluster_profiles",
    "plot_confusion_matrix",
    "plot_initial_distributions",
    "plot_instance",
    "plot_k_scores",
    "plot_scores",
]


def axis_label(target: str, unit: str = "") -> str:
    """The value axis label: the target and its unit.

    Example:
        >>> axis_label("duration_min", "min"), axis_label("load")
        ('duration_min (min)', 'load')
    """
    return f"{target} ({unit})" if unit else target


_HDR_STYLE = {
    "hdr_90": (theme.HIGHLIGHT_BAND, 0.35, "90% HDR"),
    "hdr_50": (theme.HIGHLIGHT_BAND_INNER, 0.35, "50% HDR"),
}


def _density(hist: Sequence[float], edges: np.ndarray) -> np.ndarray:
    p = np.asarray(hist, dtype=float)
    return p / np.diff(edges)


def _draw_profile(ax: Axes, row: Mapping[str, Any], edges: np.ndarray) -> None:
    """Bars of a profile's mean histogram (as density) with its HDRs shaded."""
    e = np.asarray(edges, dtype=float)
    ax.bar(
        e[:-1],
        _density(row["mean_histogram"], e),
        width=np.diff(e),
        align="edge",
        color=theme.NEUTRAL,
        edgecolor="white",
        linewidth=0.5,
    )
    _draw_bands(ax, row)
    ax.set_ylabel("density")


def _draw_bands(ax: Axes, row: Mapping[str, Any]) -> None:
    """The HDRs shaded (90% light, 50% darker) and the median dotted."""
    for key in ("hdr_90", "hdr_50"):
        color, alpha, label = _HDR_STYLE[key]
        for i, (lo, hi) in enumerate(row.get(key) or []):
            ax.axvspan(lo, hi, color=color, alpha=alpha, label=label if i == 0 else None, lw=0)
    if row.get("median") is not None:
        ax.axvline(float(row["median"]), color=theme.REFERENCE, ls=":", lw=1, label="median")


def plot_initial_distributions(
    frame: pl.DataFrame,
    *,
    target: str,
    categorical: Sequence[str],
    max_levels: int = 20,
    unit: str = "",
) -> Figure:
    """Histogram of the target and row counts per level of each categorical column.

    Example:
        >>> df = pl.DataFrame({"y": [1.0, 2.0, 2.5, 9.0], "route": ["A", "A", "B", "C"]})
        >>> len(plot_initial_distributions(df, target="y", categorical=["route"]).axes)
        2
    """
    n = 1 + len(categorical)
    ncols = min(n, 3)
    nrows = int(np.ceil(n / ncols))
    fig, grid = theme.new_figure(4.2 * ncols, 3.2 * nrows, rows=nrows, cols=ncols)
    axes = np.atleast_1d(grid).ravel()
    values = frame[target].cast(pl.Float64).drop_nulls().drop_nans().to_numpy()
    lo, hi = np.quantile(values, [0.001, 0.999]) if values.size else (0.0, 1.0)
    shown_values = values[(values >= lo) & (values <= hi)]
    axes[0].hist(shown_values, bins=50, color=theme.PRIMARY, edgecolor="white", linewidth=0.3)
    cut = values.size - shown_values.size
    theme.style_axes(
        axes[0],
        title=f"{target} (n={values.size:,}" + (f", {cut:,} extreme not drawn)" if cut else ")"),
        xlabel=axis_label(target, unit),
        ylabel="rows",
        grid="y",
    )
    for ax, col in zip(axes[1:], categorical, strict=False):
        counts = (
            frame.group_by(pl.col(col).cast(pl.String).fill_null("null"))
            .len("n")
            .sort(["n", col], descending=[True, False])
        )
        shown = counts.head(max_levels)
        ax.bar(shown[col].to_list(), shown["n"].to_list(), color=theme.SECONDARY)
        more = f", top {max_levels} of {counts.height}" if counts.height > max_levels else ""
        theme.style_axes(ax, title=f"{col}{more}", xlabel=col, ylabel="rows", grid="y")
        ax.tick_params(axis="x", labelrotation=45, labelsize=theme.TICK_SIZE - 1)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig


def _own_range(
    row: Mapping[str, Any], values: np.ndarray | None, edges: np.ndarray | None
) -> tuple[float, float]:
    """The x range of one pattern: its inlier values (or the bins holding its central 99% of
    mass) and its HDRs, padded."""
    bounds = [x for key in ("hdr_90", "hdr_50") for pair in (row.get(key) or []) for x in pair]
    if values is not None and values.size:
        lo, hi = float(values.min()), float(values.max())
    elif edges is not None:
        p = np.asarray(row["mean_histogram"], dtype=float)
        cum = np.cumsum(p) / p.sum() if p.sum() > 0 else np.zeros(0)
        mass = np.flatnonzero((cum > 0.005) & (np.r_[0.0, cum[:-1]] < 0.995))
        lo, hi = (float(edges[mass[0]]), float(edges[mass[-1] + 1])) if mass.size else (0.0, 1.0)
    else:
        lo, hi = (min(bounds), max(bounds)) if bounds else (0.0, 1.0)
    if bounds:
        lo, hi = min(lo, *bounds), max(hi, *bounds)
    pad = 0.04 * (hi - lo) if hi > lo else max(abs(lo) * 0.05, 0.5)
    return lo - pad, hi + pad


def plot_cluster_profiles(
    profiles: pl.DataFrame,
    edges: np.ndarray | None = None,
    *,
    values: Mapping[int, np.ndarray] | None = None,
    xlabel: str = "value",
) -> Figure:
    """One panel per cluster: its distribution with the 50% and 90% HDRs shaded.

    With ``values`` (the cluster's raw target values) the panel is a density
    histogram of them in the target's unit, outliers (beyond ``outlier_max``'s
    fence, i.e. outside the profile's inlier range) left out and counted in the
    title, so segments with their own bin edges are drawn truthfully; else the
    mean histogram over ``edges``. Each panel has an x axis of its own pattern's
    range (a tight pattern is not one bar wide on an axis shared with a wide one),
    labelled under every panel.

    Example:
        >>> prof = pl.DataFrame({"cluster": [0, 1], "n_combinations": [3, 2], "n_rows": [90, 60],
        ...     "mean_histogram": [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], "median": [1.0, 25.0],
        ...     "hdr_50": [[[0.5, 1.5]], [[20.0, 30.0]]], "hdr_90": [[[0.1, 1.9]], [[5.0, 45.0]]]})
        >>> fig = plot_cluster_profiles(prof, np.array([0.0, 1.0, 2.0, 50.0]))
        >>> [tuple(round(x) for x in ax.get_xlim()) for ax in fig.axes]
        [(0, 2), (0, 52)]
    """
    n = profiles.height
    fig, grid = theme.new_figure(7.5, 2.6 * max(n, 1) + 0.4, rows=max(n, 1))
    axes = np.atleast_1d(grid).ravel()
    for ax, row in zip(axes, profiles.iter_rows(named=True), strict=False):
        extra = ""
        v: np.ndarray | None = None
        if values is not None:
            v = np.asarray(values[int(row["cluster"])], dtype=float)
            bounds = [x for pair in (row.get("hdr_90") or []) for x in pair]
            q1, q3 = np.quantile(v, [0.25, 0.75])
            keep = (v >= q1 - 3 * (q3 - q1)) & (v <= q3 + 3 * (q3 - q1))
            if bounds and (q3 - q1) > 0:
                v = v[keep]
            ax.hist(v, bins=40, density=True, color=theme.NEUTRAL, edgecolor="white", lw=0.5)
            _draw_bands(ax, row)
            ax.set_ylabel("density")
            if row.get("n_outliers"):
                extra = f", {row['n_outliers']:,} outliers not drawn"
        else:
            _draw_profile(ax, row, np.asarray(edges, dtype=float))
        ax.set_xlim(*_own_range(row, v, None if edges is None else np.asarray(edges, dtype=float)))
        combos = row.get("n_combinations")
        about = f"{combos} combinations, " if combos is not None else ""
        theme.style_axes(
            ax,
            title=f"Cluster {row['cluster']} ({about}{row.get('n_rows', 0):,} rows{extra})",
            xlabel=xlabel,
            grid="y",
        )
    theme.add_legend(axes[0], loc="upper right")
    return fig


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]] | np.ndarray, classes: Sequence[Any]
) -> Figure:
    """Held-out confusion matrix with counts written in each cell.

    Example:
        >>> plot_confusion_matrix(np.eye(3, dtype=int), ["a", "b", "c"]).axes[0].get_ylabel()
        'true cluster'
    """
    m = np.asarray(matrix)
    fig, ax = theme.new_figure(1.2 * len(classes) + 2.5, 1.1 * len(classes) + 1.8)
    image = ax.imshow(m, cmap=theme.SEQUENTIAL_CMAP)
    bar = fig.colorbar(image, ax=ax, shrink=0.8)
    bar.set_label("rows", fontsize=theme.LABEL_SIZE)
    bar.ax.tick_params(labelsize=theme.TICK_SIZE)
    labels = [str(c) for c in classes]
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    theme.style_axes(
        ax,
        title="Confusion matrix (held-out rows)",
        xlabel="predicted cluster",
        ylabel="true cluster",
        grid=None,
    )
    for (i, j), v in np.ndenumerate(m):
        # dark text on the light end of the colormap, white on the dark end
        r, g, b, _ = image.cmap(image.norm(v))
        light = 0.299 * r + 0.587 * g + 0.114 * b > 0.5
        ax.text(j, i, f"{v}", ha="center", va="center", color=theme.REFERENCE if light else "white")
    return fig


def plot_instance(
    value: float | None,
    answer: Mapping[str, Any],
    probabilities: Sequence[float] | np.ndarray,
    classes: Sequence[Any],
    *,
    title: str,
    attributes: Mapping[str, Any] | None = None,
    target: str = "value",
    unit: str = "",
) -> Figure:
    """An instance's value against its predicted distribution (``answer["prediction"]``), and each pattern's probability.

    The subtitle lists the instance's attributes (unknown levels marked); a
    value outside the 90% HDR is flagged in the legend.

    Example:
        >>> pred = {"edges": [0.0, 1.0, 2.0], "probabilities": [0.2, 0.8],
        ...         "hdr_50": [[1.2, 1.8]], "hdr_90": [[0.5, 2.0]]}
        >>> answer = {"cluster": 1, "prediction": pred, "unknown": ["route"]}
        >>> fig = plot_instance(1.5, answer, [0.1, 0.9], [0, 1], title="trip 7",
        ...                     attributes={"route": "R9"}, target="minutes", unit="min")
        >>> fig.axes[0].get_xlabel(), "unknown" in fig.axes[0].get_title()
        ('minutes (min)', True)
        >>> wide = {**pred, "edges": [0.0, 1.0, 2.0, 10.0, 50.0], "probabilities": [0.2, 0.8, 0, 0]}
        >>> fig = plot_instance(1.5, {**answer, "prediction": wide}, [0.1, 0.9], [0, 1], title="t")
        >>> [round(float(x), 2) for x in fig.axes[0].get_xlim()]  # its own bins, not up to 50
        [-0.08, 2.08]
    """
    fig, (ax, bars) = theme.new_figure(10, 4.2, cols=2, width_ratios=[2.2, 1])
    pred = answer["prediction"]
    row = {**pred, "mean_histogram": pred["probabilities"]}
    edges = np.asarray(pred["edges"], dtype=float)
    _draw_profile(ax, row, edges)
    # the axis spans this prediction's bins with mass, its HDRs and the instance, not every
    # bin the model shares with the other patterns (a tight pattern is not one bar wide)
    lo, hi = _own_range(row, None, edges)
    if value is not None and np.isfinite(value):
        lo, hi = min(lo, float(value)), max(hi, float(value))
    ax.set_xlim(lo, hi)
    unknown = set(answer.get("unknown") or [])
    attrs = ", ".join(
        f"{k}={v}" + (" (unknown)" if k in unknown else "") for k, v in (attributes or {}).items()
    )
    if value is not None and np.isfinite(value):
        outside = not any(lo <= value <= hi for lo, hi in pred.get("hdr_90") or [])
        label = f"instance ({value:.3g})" + (": outside the 90% HDR" if outside else "")
        color = theme.ALERT if outside else theme.SECONDARY
        ax.axvline(float(value), color=color, lw=2, label=label)
        heading = f"{title}: {value:.3g} vs predicted (pattern {answer['cluster']})"
    else:
        heading = f"{title}: predicted distribution (pattern {answer['cluster']})"
    if attrs:
        heading += "\n" + attrs
    if unknown:
        heading += (
            f"\nunknown level(s): {', '.join(sorted(unknown))}: answered from similar combinations"
        )
    theme.style_axes(ax, title=heading, xlabel=axis_label(target, unit), grid="y")
    theme.add_legend(ax, loc="upper right")
    p = np.asarray(probabilities, dtype=float)
    labels = [str(c) for c in classes]
    chosen = str(answer["cluster"])
    colors = [theme.SECONDARY if str(c) == chosen else theme.NEUTRAL for c in classes]
    bars.bar(labels, p, color=colors)
    bars.set_ylim(0, 1)
    for i, v in enumerate(p):
        bars.text(i, min(v + 0.02, 0.95), f"{v:.2f}", ha="center", fontsize=theme.TICK_SIZE)
    theme.style_axes(
        bars, title="pattern probabilities", xlabel="pattern", ylabel="probability", grid="y"
    )
    return fig


def plot_scores(facts: Mapping[str, Any]) -> Figure:
    """Held-out log score and HDR coverage of the prediction and the two baselines.

    Example:
        >>> s = {"log_score": -2.0, "crps": 1.0, "coverage_50": 0.5, "coverage_90": 0.9}
        >>> f = {"blended": s, "own_histogram": s, "global_histogram": s, "coverages": [50, 90]}
        >>> [a.get_title() for a in plot_scores(f).axes]
        ['mean log score (higher is better)', 'HDR coverage (nominal dashed)']
    """
    fig, (left, right) = theme.new_figure(10, 3.6, cols=2)
    names = ["blended", "own_histogram", "global_histogram"]
    labels = ["prediction", "own histogram", "global histogram"]
    colors = [theme.PRIMARY, theme.NEUTRAL, theme.SECONDARY]
    scores = [facts[n]["log_score"] for n in names]
    left.bar(labels, scores, color=colors)
    for i, v in enumerate(scores):
        left.text(i, v / 2, f"{v:.3f}", ha="center", color="white", fontsize=theme.TICK_SIZE)
    theme.style_axes(
        left,
        title="mean log score (higher is better)",
        xlabel="predicted distribution",
        ylabel="log probability of the observed bin",
        grid="y",
    )
    cov = list(facts.get("coverages", [50, 90]))
    x = np.arange(len(cov))
    for i, (n, lab, col) in enumerate(zip(names, labels, colors, strict=True)):
        right.bar(
            x + (i - 1) * 0.27, [facts[n][f"coverage_{c}"] for c in cov], 0.27, color=col, label=lab
        )
    for j, c in enumerate(cov):
        right.hlines(c / 100, j - 0.45, j + 0.45, colors=theme.REFERENCE, linestyles="--", lw=1)
    right.set_xticks(x, [f"{c}% HDR" for c in cov])
    right.set_ylim(0, 1)
    theme.style_axes(
        right,
        title="HDR coverage (nominal dashed)",
        xlabel="region",
        ylabel="share of held-out rows inside",
        grid="y",
    )
    theme.add_legend(right, loc="upper left")
    return fig


def plot_k_scores(
    curve: Sequence[Mapping[str, Any]], chosen_k: int, k_one_se: int | None = None
) -> Figure:
    """Held-out log score (± one standard error) against K, silhouette on a second axis.

    With ``k_one_se`` below ``chosen_k``, the one-SE candidate is marked too and the title
    says the shape check moved K.

    Example:
        >>> curve = [{"k": 2, "log_score": -2.0, "log_score_se": 0.1, "silhouette": 0.5},
        ...          {"k": 3, "log_score": -1.5, "log_score_se": 0.1, "silhouette": 0.6}]
        >>> plot_k_scores(curve, 3).axes[0].get_ylabel()
        'held-out log score'
        >>> plot_k_scores(curve, 3, k_one_se=2).axes[0].get_title()
        'Choosing K: K=3 (one-SE candidate K=2 merged distinct shapes)'
    """
    ks = [int(c["k"]) for c in curve]
    fig, ax = theme.new_figure(6.5, 3.8)
    ax.errorbar(
        ks,
        [c["log_score"] for c in curve],
        yerr=[c["log_score_se"] for c in curve],
        fmt="o-",
        color=theme.PRIMARY,
        capsize=3,
        label="held-out log score",
    )
    ax.set_xticks(ks)
    ax.axvline(chosen_k, color=theme.REFERENCE, lw=1.2, ls=":")
    title = f"Choosing K: K={chosen_k} (smallest within one SE of the best)"
    if k_one_se is not None and k_one_se != chosen_k:
        ax.axvline(k_one_se, color=theme.NEUTRAL, lw=1.0, ls="--")
        title = f"Choosing K: K={chosen_k} (one-SE candidate K={k_one_se} merged distinct shapes)"
    theme.style_axes(
        ax,
        title=title,
        xlabel="K (number of patterns)",
        ylabel="held-out log score",
        grid="y",
    )
    ax.yaxis.label.set_color(theme.PRIMARY)
    if all("silhouette" in c for c in curve):
        ax2 = ax.twinx()
        ax2.plot(ks, [c["silhouette"] for c in curve], "s--", color=theme.SECONDARY)
        ax2.set_ylabel(
            "silhouette (second opinion)", color=theme.SECONDARY, fontsize=theme.LABEL_SIZE
        )
        ax2.tick_params(labelsize=theme.TICK_SIZE)
        ax2.spines["top"].set_visible(False)
    return fig
