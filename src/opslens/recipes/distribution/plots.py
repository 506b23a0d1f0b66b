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
    "plot_cluster_profiles",
    "plot_confusion_matrix",
    "plot_initial_distributions",
    "plot_instance",
]

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
    for key in ("hdr_90", "hdr_50"):
        color, alpha, label = _HDR_STYLE[key]
        for i, (lo, hi) in enumerate(row.get(key) or []):
            ax.axvspan(lo, hi, color=color, alpha=alpha, label=label if i == 0 else None, lw=0)
    if row.get("median") is not None:
        ax.axvline(float(row["median"]), color=theme.REFERENCE, ls=":", lw=1, label="median")
    ax.set_ylabel("density")


def plot_initial_distributions(
    frame: pl.DataFrame, *, target: str, categorical: Sequence[str], max_levels: int = 20
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
    axes[0].hist(values, bins=50, color=theme.PRIMARY, edgecolor="white", linewidth=0.3)
    theme.style_axes(
        axes[0], title=f"{target} (n={values.size:,})", xlabel=target, ylabel="rows", grid="y"
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


def plot_cluster_profiles(profiles: pl.DataFrame, edges: np.ndarray) -> Figure:
    """One panel per cluster: its mean histogram with the 50% and 90% HDRs shaded.

    Example:
        >>> prof = pl.DataFrame({"cluster": [0], "n_combinations": [3], "n_rows": [90],
        ...     "mean_histogram": [[0.5, 0.5]], "median": [1.0], "hdr_50": [[[0.5, 1.5]]],
        ...     "hdr_90": [[[0.1, 1.9]]]})
        >>> len(plot_cluster_profiles(prof, np.array([0.0, 1.0, 2.0])).axes)
        1
    """
    n = profiles.height
    fig, grid = theme.new_figure(7.5, 2.4 * max(n, 1) + 0.4, rows=max(n, 1), sharex=True)
    axes = np.atleast_1d(grid).ravel()
    for ax, row in zip(axes, profiles.iter_rows(named=True), strict=False):
        _draw_profile(ax, row, edges)
        combos = row.get("n_combinations")
        about = f"{combos} combinations, " if combos is not None else ""
        theme.style_axes(
            ax, title=f"Cluster {row['cluster']} ({about}{row.get('n_rows', 0):,} rows)", grid="y"
        )
    theme.add_legend(axes[0], loc="upper right")
    # shared x: the value label once, under the bottom panel
    theme.style_axes(axes[-1], xlabel="value", grid="y")
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
    profile_row: Mapping[str, Any],
    edges: np.ndarray,
    probabilities: Sequence[float] | np.ndarray,
    classes: Sequence[Any],
    *,
    title: str,
) -> Figure:
    """An instance's value against its predicted cluster's distribution, and every cluster's probability.

    Example:
        >>> row = {"cluster": 1, "mean_histogram": [0.2, 0.8], "hdr_50": [[1.2, 1.8]], "hdr_90": [[0.5, 2.0]]}
        >>> fig = plot_instance(1.5, row, np.array([0.0, 1.0, 2.0]), [0.1, 0.9], [0, 1], title="trip 7")
        >>> [ax.get_title() for ax in fig.axes]
        ['trip 7: value 1.5 vs cluster 1', 'cluster probabilities']
    """
    fig, (ax, bars) = theme.new_figure(10, 3.8, cols=2, width_ratios=[2.2, 1])
    _draw_profile(ax, profile_row, np.asarray(edges, dtype=float))
    if value is not None and np.isfinite(value):
        ax.axvline(float(value), color=theme.SECONDARY, lw=2, label=f"instance ({value:.3g})")
        heading = f"{title}: value {value:.3g} vs cluster {profile_row['cluster']}"
    else:
        heading = f"{title}: no value, cluster {profile_row['cluster']}"
    theme.style_axes(ax, title=heading, xlabel="value", grid="y")
    theme.add_legend(ax, loc="upper right")
    p = np.asarray(probabilities, dtype=float)
    labels = [str(c) for c in classes]
    chosen = str(profile_row["cluster"])
    colors = [theme.SECONDARY if str(c) == chosen else theme.NEUTRAL for c in classes]
    bars.bar(labels, p, color=colors)
    bars.set_ylim(0, 1)
    for i, v in enumerate(p):
        bars.text(i, min(v + 0.02, 0.95), f"{v:.2f}", ha="center", fontsize=theme.TICK_SIZE)
    theme.style_axes(
        bars, title="cluster probabilities", xlabel="cluster", ylabel="probability", grid="y"
    )
    return fig
